/**
 * The actor system: the registry of kinds and live activations on this node.
 * Its layer is scoped: closing the scope drains every actor within the
 * shutdown deadline and runs their stop hooks.
 */
import { Context, Duration, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { ActorDefinition, ActorRef, Message } from "./Actor.ts"
import type { ActorAddress } from "./ActorAddress.ts"
import type { ActorAlreadyExists, ActorNotFound, SystemStopping } from "./ActorError.ts"
import { SystemImpl, type DeadLetter, type KindStats } from "./internal/system.ts"
import type { TerminationReason } from "./Termination.ts"

export type { DeadLetter, KindStats }

export interface ActorSystemService {
  readonly name: string
  /** A handle on `kind/key`; sending through it reaches whatever activation lives there. */
  readonly ref: <Kind extends string, M extends Message>(definition: ActorDefinition<Kind, M>, key: string) => ActorRef<M>
  /** Activates `kind/key` now (the only way for kinds with `explicit` activation). */
  readonly spawn: <Kind extends string, M extends Message>(
    definition: ActorDefinition<Kind, M>,
    key: string
  ) => Effect.Effect<ActorRef<M>, ActorAlreadyExists | ActorNotFound | SystemStopping>
  /** Stops the activation at `address` (if any) after its current message and waits until it has terminated. */
  readonly stop: (address: ActorAddress) => Effect.Effect<void>
  /** Completes when the current activation at `address` terminates, with the reason (`NotRunning` if none). */
  readonly awaitTermination: (address: ActorAddress) => Effect.Effect<TerminationReason>
  /** Whether `address` has a live activation. */
  readonly isAlive: (address: ActorAddress) => boolean
  /** Live activations and queued messages per kind. */
  readonly stats: Effect.Effect<ReadonlyArray<KindStats>>
  /** Stops new activations, drains every mailbox within the deadline, runs stop hooks. Idempotent. */
  readonly shutdown: Effect.Effect<void>
  /** @internal used by `Actor.toLayer` */
  readonly impl: SystemImpl
}


export interface Config {
  /** Names the system in logs. Default `weft`. */
  readonly name?: string
  /** Default `ask` timeout. Default 5 seconds. */
  readonly askTimeout?: Duration.DurationInput
  /** How long shutdown waits for mailboxes to drain before interrupting. Default 10 seconds. */
  readonly shutdownDeadline?: Duration.DurationInput
  /** Upper bound of the housekeeping tick (passivation sweep, mailbox depth gauge). Default 1 second. */
  readonly housekeepingInterval?: Duration.DurationInput
  /** Called for every message that reaches no handler (dropped, or queued for an actor that stopped). */
  readonly onDeadLetter?: (letter: DeadLetter) => void
}

/** Builds a system in the current scope; closing the scope shuts it down. */
export const make = (config: Config = {}): Effect.Effect<ActorSystemService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const impl = new SystemImpl({
      name: config.name ?? "weft",
      askTimeout: Duration.decode(config.askTimeout ?? "5 seconds"),
      shutdownDeadline: Duration.decode(config.shutdownDeadline ?? "10 seconds"),
      housekeepingInterval: Duration.decode(config.housekeepingInterval ?? "1 second"),
      onDeadLetter: config.onDeadLetter
    })
    yield* Effect.forkScoped(impl.housekeeping())
    yield* Effect.forkScoped(impl.askTimers.run())
    // Added last so it runs first: the timers keep expiring asks while actors drain.
    yield* Effect.addFinalizer(() => impl.shutdown())
    return {
      name: impl.config.name,
      ref: (definition, key) => impl.ref(definition, key),
      spawn: (definition, key) => impl.spawn(definition, key, undefined),
      stop: (address) => impl.stop(address),
      awaitTermination: (address) => impl.awaitTermination(address),
      isAlive: (address) => impl.lookup(address) !== undefined,
      stats: Effect.sync(() => impl.stats()),
      shutdown: impl.shutdown(),
      impl
    }
  })

export class ActorSystem extends Context.Tag("@weft/actor/ActorSystem")<ActorSystem, ActorSystemService>() {
  /**
   * The system as a layer.
   *
   * @example
   * const program = Effect.gen(function*() {
   *   const system = yield* ActorSystem
   *   yield* system.ref(Counter, "a").tell(new Increment({ by: 1 }))
   * }).pipe(Effect.provide(CounterLive), Effect.provide(ActorSystem.layer()))
   */
  static readonly layer = (config?: Config): Layer.Layer<ActorSystem> => Layer.scoped(ActorSystem, make(config))
}
