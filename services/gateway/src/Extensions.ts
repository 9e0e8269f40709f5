/**
 * How roles plug into the gateway without the gateway knowing them: a role
 * registers channel handlers (by channel prefix, e.g. `room:`) and RPC
 * methods (e.g. `room.history`). Channels no handler claims are plain
 * pub/sub. The gateway keeps the protocol (ids, answers, catch-up ordering);
 * handlers keep the meaning.
 */
import type { Grant } from "@weft/auth"
import { ErrorCodes, type ErrorName, type Frame } from "@weft/protocol"
import { Context, Effect, Layer, Schema } from "effect"
import type { Scope } from "effect"

/** The connection making a request, as a role sees it. */
export interface Caller {
  /** `conn/<node>/<incarnation>-<n>`. */
  readonly conn: string
  readonly node: string
  readonly grant: Grant
  readonly canSubscribe: (channel: string) => boolean
  readonly canPublish: (channel: string) => boolean
  readonly canModerate: (channel: string) => boolean
}

/** A refusal with a catalogue name; becomes an `error` frame with the request's id. */
export class RequestError extends Schema.TaggedError<RequestError>()("RequestError", {
  name: Schema.Literal(...(Object.keys(ErrorCodes) as [ErrorName, ...Array<ErrorName>])),
  message: Schema.String
}) {}

export const refuse = (name: ErrorName, message: string): RequestError => new RequestError({ name, message })

export type Position = typeof Frame.Position.Type
export type MessageFrame = typeof Frame.Message.Type

export interface SubscribeResult {
  readonly position?: Position
  readonly recovery?: "ok" | "failed"
  /** Messages to deliver before live ones, oldest first; each carries its position. */
  readonly catchUp: ReadonlyArray<MessageFrame>
}

/** An answer on its way. */
export type Pending<A> = Effect.Effect<A, RequestError>

export interface ChannelHandler {
  /** Channels that start with this prefix go to this handler. */
  readonly prefix: string
  /**
   * Called after the connection listens to the channel (live messages are buffered) and
   * before its socket joins the channel's fan-out: what it returns is delivered first, then
   * buffered and live messages after `position`, so nothing is missed or repeated.
   */
  readonly subscribe: (caller: Caller, channel: string, since: Position | undefined) => Effect.Effect<SubscribeResult, RequestError>
  readonly unsubscribe: (caller: Caller, channel: string) => Effect.Effect<void>
  /**
   * A publish, in two steps so that a connection need not wait for each answer before the next:
   * the Effect runs in the connection's turn, in the order of its frames, and must put the
   * message in line there (a connection's messages keep their order); the Effect it succeeds
   * with waits for the answer while the connection goes on with its next frames.
   */
  readonly publish: (caller: Caller, channel: string, data: unknown) => Effect.Effect<Pending<{ readonly position?: Position }>, RequestError>
  /**
   * Whether `caller` may still be subscribed to `channel`: asked for every subscription when the
   * connection's credentials change (a `refresh`), and a subscription it says `false` for ends
   * (`unsubscribed`). Must agree with the permission `subscribe` checks. Default:
   * `caller.canSubscribe(channel)`.
   */
  readonly allows?: (caller: Caller, channel: string) => boolean
}

export interface RpcMethod {
  readonly name: string
  readonly handle: (caller: Caller, params: unknown) => Effect.Effect<unknown, RequestError>
}

/**
 * An RPC method whose params are decoded with `params` (a mismatch is `invalid_params`).
 *
 * @example
 * Extensions.method("room.history", HistoryParams, (caller, params) => ...)
 */
export const method = <P, I>(
  name: string,
  params: Schema.Schema<P, I>,
  handle: (caller: Caller, params: P) => Effect.Effect<unknown, RequestError>
): RpcMethod => {
  const decode = Schema.decodeUnknown(params, { onExcessProperty: "error" })
  return {
    name,
    handle: (caller, raw) =>
      Effect.flatMap(
        Effect.mapError(decode(raw), (error) => refuse("invalid_params", error.message)),
        (decoded) => handle(caller, decoded)
      )
  }
}

/** A connection being admitted or gone, as lifecycle hooks see it. */
export interface ConnectionInfo {
  readonly conn: string
  readonly node: string
  readonly grant: Grant
}

/** A refusal of a connection before its upgrade: a plain HTTP status and message. */
export interface Refused {
  readonly status: number
  readonly message: string
}

export interface ConnectionHooks {
  /** Before the upgrade: `undefined` admits, a `Refused` refuses (e.g. too many connections). */
  readonly admit: (connection: ConnectionInfo) => Effect.Effect<Refused | undefined>
  /** After the connection is gone (or an admitted upgrade failed). */
  readonly closed: (connection: ConnectionInfo) => Effect.Effect<void>
}

export interface ExtensionsService {
  readonly addChannel: (handler: ChannelHandler) => Effect.Effect<void, never, Scope.Scope>
  readonly addMethod: (method: RpcMethod) => Effect.Effect<void, never, Scope.Scope>
  readonly addHooks: (hooks: ConnectionHooks) => Effect.Effect<void, never, Scope.Scope>
  /** Runs every `admit` in registration order; the first refusal wins (earlier admits are undone with `closed`). */
  readonly admit: (connection: ConnectionInfo) => Effect.Effect<Refused | undefined>
  readonly closed: (connection: ConnectionInfo) => Effect.Effect<void>
  /** The handler of the longest matching prefix, if any. */
  readonly channel: (channel: string) => ChannelHandler | undefined
  readonly method: (name: string) => RpcMethod | undefined
}

export class Extensions extends Context.Tag("@weft/gateway/Extensions")<Extensions, ExtensionsService>() {}

export const make = (): ExtensionsService => {
  const channels: Array<ChannelHandler> = []
  const methods = new Map<string, RpcMethod>()
  const hooks: Array<ConnectionHooks> = []
  const closed = (connection: ConnectionInfo, of: ReadonlyArray<ConnectionHooks>) =>
    Effect.forEach(of, (hook) => hook.closed(connection), { discard: true })
  return {
    addHooks: (added) =>
      Effect.acquireRelease(
        Effect.sync(() => void hooks.push(added)),
        () => Effect.sync(() => void hooks.splice(hooks.indexOf(added), 1))
      ),
    admit: (connection) =>
      Effect.gen(function*() {
        const admitted: Array<ConnectionHooks> = []
        for (const hook of hooks.slice()) {
          const refused = yield* hook.admit(connection)
          if (refused !== undefined) {
            yield* closed(connection, admitted)
            return refused
          }
          admitted.push(hook)
        }
        return undefined
      }),
    closed: (connection) => Effect.suspend(() => closed(connection, hooks.slice())),
    addChannel: (handler) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          if (channels.some((existing) => existing.prefix === handler.prefix)) {
            throw new Error(`a channel handler for ${handler.prefix} is already registered`)
          }
          channels.push(handler)
          channels.sort((a, b) => b.prefix.length - a.prefix.length)
        }),
        () => Effect.sync(() => void channels.splice(channels.indexOf(handler), 1))
      ),
    addMethod: (method) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          if (methods.has(method.name)) throw new Error(`rpc method ${method.name} is already registered`)
          methods.set(method.name, method)
        }),
        () => Effect.sync(() => void methods.delete(method.name))
      ),
    channel: (channel) => channels.find((handler) => channel.startsWith(handler.prefix)),
    method: (name) => methods.get(name)
  }
}

export const layer: Layer.Layer<Extensions> = Layer.sync(Extensions, make)

/** A role's gateway extension as a layer: registers while the layer lives. */
export const register = <R>(
  add: (extensions: ExtensionsService) => Effect.Effect<void, never, R | Scope.Scope>
): Layer.Layer<never, never, Extensions | Exclude<R, Scope.Scope>> =>
  Layer.scopedDiscard(Effect.flatMap(Extensions, add))
