/**
 * Actor kinds: a definition (the kind's name and the Schema of its messages,
 * importable by any sender) and a behavior (state and handlers, registered on
 * an `ActorSystem` with `toLayer`). The split mirrors @effect/cluster's
 * `Entity.make` / `Entity.toLayer`.
 */
import type { Cause, Duration, Runtime, Scope } from "effect"
import { Effect, Layer, Schema } from "effect"
import { ActorSystem } from "./ActorSystem.ts"
import type { ActorAddress } from "./ActorAddress.ts"
import type { AskError, ActorAlreadyExists, ActorNotFound, SystemStopping, TellError } from "./ActorError.ts"
import type { MailboxConfig } from "./Mailbox.ts"
import type { Strategy } from "./Supervision.ts"
import type { Terminated, TerminationReason } from "./Termination.ts"

/** A message: an instance of a `Schema.TaggedRequest` class, whose `success` and `failure` type `ask`. */
export type Message = Schema.TaggedRequest.All

/** A message class, as made by `Schema.TaggedRequest`. */
export type MessageClass = Schema.Schema.AnyNoContext & { readonly _tag: string }

/** The kind's name and the Schema of its messages. */
export interface ActorDefinition<Kind extends string, Msg extends Message> {
  readonly kind: Kind
  readonly messages: ReadonlyArray<MessageClass>
  /** The type-side Schema of every message: validates what `tell`/`ask` get. */
  readonly schema: Schema.Schema<Msg>
  readonly is: (input: unknown) => input is Msg
}

export declare namespace ActorDefinition {
  export type Any = ActorDefinition<string, any>
  export type Msg<D> = D extends ActorDefinition<string, infer M> ? M : never
}

/**
 * Declares an actor kind and its messages.
 *
 * @example
 * class Increment extends Schema.TaggedRequest<Increment>()("Increment", {
 *   payload: { by: Schema.Number }, success: Schema.Number, failure: Schema.Never
 * }) {}
 * const Counter = Actor.make("counter", [Increment])
 */
export const make = <const Kind extends string, const Classes extends ReadonlyArray<MessageClass>>(
  kind: Kind,
  messages: Classes
): ActorDefinition<Kind, Schema.Schema.Type<Classes[number]>> => {
  if (kind.length === 0 || kind.includes("/")) {
    throw new Error(`actor kind must be non-empty and contain no "/": ${JSON.stringify(kind)}`)
  }
  const schema = Schema.typeSchema(Schema.Union(...messages)) as unknown as Schema.Schema<
    Schema.Schema.Type<Classes[number]>
  >
  return { kind, messages, schema, is: Schema.is(schema) }
}

type Of<Msg, Tag> = Extract<Msg, { readonly _tag: Tag }>

/** One handler per message tag; its success and failure are the message's declared result. */
export type Handlers<Msg extends Message, R> = {
  readonly [Tag in Msg["_tag"]]: (
    message: Of<Msg, Tag>
  ) => Effect.Effect<Schema.WithResult.Success<Of<Msg, Tag>>, Schema.WithResult.Failure<Of<Msg, Tag>>, R>
}

/**
 * What `build` returns for each activation: the handlers, closing over the
 * activation's private state, and the lifecycle hooks.
 */
export interface Behavior<Msg extends Message, R> {
  readonly receive: Handlers<Msg, R>
  /** Runs after `build` on every activation, before the first message. */
  readonly started?: Effect.Effect<void, never, R>
  /** Runs after `build` when the activation replaces one that crashed, before `started`. */
  readonly restarted?: (cause: Cause.Cause<unknown>) => Effect.Effect<void, never, R>
  /** Runs once when the actor terminates (not on restarts), before the activation scope closes. */
  readonly stopping?: (reason: TerminationReason) => Effect.Effect<void, never, R>
}

/** What a behavior can reach while it runs. */
export interface ActorContext<Msg extends Message> {
  readonly address: ActorAddress
  readonly self: ActorRef<Msg>
  /** How many times this actor has been restarted since it was first activated. */
  readonly restarts: number
  /** Spawns a child: stopped when this actor stops or restarts, escalates to it. */
  readonly spawn: <Kind extends string, M extends Message>(
    definition: ActorDefinition<Kind, M>,
    key: string
  ) => Effect.Effect<ActorRef<M>, ActorAlreadyExists | ActorNotFound | SystemStopping>
  /** When `target`'s current activation terminates, `onTerminated(notice)` is told to this actor. */
  readonly watch: (target: ActorAddress, onTerminated: (notice: Terminated) => Msg) => Effect.Effect<void>
  readonly unwatch: (target: ActorAddress) => Effect.Effect<void>
  /** Stops this actor after the current message. */
  readonly stop: Effect.Effect<void>
}

/** Options of a kind's behavior. */
export interface Options<Msg> {
  readonly mailbox?: MailboxConfig<Msg>
  readonly supervision?: Strategy
  /** Stop an activation idle this long; its next message re-activates it. Default: never. */
  readonly passivateAfter?: Duration.DurationInput
  /**
   * `onMessage`: a message to an address with no live actor activates one.
   * `explicit`: only `spawn` activates; messages to absent actors fail with `ActorNotFound`.
   * Default: `onMessage` when `passivateAfter` is set, else `explicit`.
   */
  readonly activation?: "onMessage" | "explicit"
}

/** A handle on an address. It stays valid across restarts, passivation and re-activation. */
export interface ActorRef<Msg extends Message> {
  readonly address: ActorAddress
  /** Fire-and-forget: fails only if the message cannot be enqueued. */
  readonly tell: (message: Msg) => Effect.Effect<void, TellError>
  /** Request and reply, always bounded by a timeout (the system's default unless given). */
  readonly ask: <M extends Msg>(
    message: M,
    options?: { readonly timeout?: Duration.DurationInput }
  ) => Effect.Effect<Schema.WithResult.Success<M>, Schema.WithResult.Failure<M> | AskError>
  /** Stops the current activation after its current message; resolves when it has terminated. */
  readonly stop: Effect.Effect<void>
}

/** How a kind's behavior is built for each activation; the build runs in the activation's scope. */
export type Build<Msg extends Message, R> = (
  ctx: ActorContext<Msg>
) => Effect.Effect<Behavior<Msg, R>, unknown, R | Scope.Scope>

/**
 * Registers a kind's behavior on the `ActorSystem` for the life of the layer.
 * Releasing the layer drains that kind's actors.
 *
 * @example
 * const CounterLive = Actor.toLayer(Counter, () => Effect.sync(() => {
 *   let count = 0
 *   return { receive: { Increment: ({ by }) => Effect.sync(() => (count += by)) } }
 * }), { passivateAfter: "30 seconds" })
 */
export const toLayer = <Kind extends string, Msg extends Message, R>(
  definition: ActorDefinition<Kind, Msg>,
  build: Build<Msg, R>,
  options: Options<Msg> = {}
): Layer.Layer<never, never, ActorSystem | Exclude<R, Scope.Scope>> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const system = yield* ActorSystem
      const runtime = yield* Effect.runtime<R>()
      // Kinds are stored untyped in the registry; `ActorRef` restores the types at the edges.
      system.impl.register(
        definition as unknown as ActorDefinition<string, Message>,
        build as unknown as Build<Message, never>,
        runtime as Runtime.Runtime<never>,
        options as Options<Message>
      )
      yield* Effect.addFinalizer(() => system.impl.releaseKind(definition.kind))
    })
  )
