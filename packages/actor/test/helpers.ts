/**
 * Shared fixtures for the @weft/actor test suite: message classes, a
 * configurable "probe" kind whose behavior records what happens to it, and
 * small Effect helpers (bounded polling on the real timer, system start-up).
 */
import { Cause, Context, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Schema, Scope } from "effect"
import { Actor, ActorAddress, ActorSystem, Terminated } from "@weft/actor"
import type { ActorDefinition, ActorSystemConfig, Behavior, DeadLetter, TerminationReason } from "@weft/actor"

export type System = Context.Tag.Service<typeof ActorSystem>

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

export class Increment extends Schema.TaggedRequest<Increment>()("Increment", {
  payload: { by: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

export class Get extends Schema.TaggedRequest<Get>()("Get", {
  payload: {},
  success: Schema.Number,
  failure: Schema.Never
}) {}

export class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", {
  balance: Schema.Number,
  requested: Schema.Number
}) {}

/** Declared failure: `Overdrawn` when the amount exceeds the count. */
export class Withdraw extends Schema.TaggedRequest<Withdraw>()("Withdraw", {
  payload: { amount: Schema.Number },
  success: Schema.Number,
  failure: Overdrawn
}) {}

/**
 * A defect in the handler:
 * - `die`: `Effect.die`
 * - `throw-in-effect`: `Effect.sync(() => { throw })`
 * - `throw-sync`: the handler function itself throws before returning an Effect
 * - `die-after-gate`: blocks on the probe's gate (counting `entered`), then dies
 */
export class Crash extends Schema.TaggedRequest<Crash>()("Crash", {
  payload: { how: Schema.Literal("die", "throw-in-effect", "throw-sync", "die-after-gate") },
  success: Schema.Void,
  failure: Schema.Never
}) {}

/** Blocks the handler on the probe's gate until the test opens it. */
export class Hold extends Schema.TaggedRequest<Hold>()("Hold", {
  payload: {},
  success: Schema.Void,
  failure: Schema.Never
}) {}

/** A recorded note; `important` notes are not droppable in the dropOldest tests. */
export class Note extends Schema.TaggedRequest<Note>()("Note", {
  payload: { id: Schema.Number, important: Schema.Boolean },
  success: Schema.Number,
  failure: Schema.Never
}) {}

/** Stops the actor from inside its handler (`ctx.stop`). */
export class StopSelf extends Schema.TaggedRequest<StopSelf>()("StopSelf", {
  payload: {},
  success: Schema.Void,
  failure: Schema.Never
}) {}

export const probeMessages = [Increment, Get, Withdraw, Crash, Hold, Note, StopSelf] as const

export type ProbeMsg = Increment | Get | Withdraw | Crash | Hold | Note | StopSelf

// ---------------------------------------------------------------------------
// Unique kind names (metrics are global per process)
// ---------------------------------------------------------------------------

let kindSeq = 0
export const uniqueKind = (prefix: string): string =>
  `${prefix}-${++kindSeq}-${Math.random().toString(36).slice(2, 8)}`

/** `Actor.make` for the suite's kinds, whose names are made unique per test. */
export const makeKind = <const Classes extends ReadonlyArray<Actor.MessageClass>>(kind: string, messages: Classes) =>
  Actor.make(kind, messages)

export const probeDefinition = (prefix: string): ActorDefinition<string, ProbeMsg> =>
  makeKind(uniqueKind(prefix), probeMessages)

// ---------------------------------------------------------------------------
// The probe: a behavior that records its lifecycle and the messages it handles
// ---------------------------------------------------------------------------

export interface Probe {
  /** Lifecycle events in order: `build`, `started`, `restarted`, `stopping:<Tag>`, `finalizer`. */
  readonly events: Array<string>
  /** `Note` ids, in the order handled (by every activation). */
  readonly notes: Array<number>
  /** Increments handled (by every activation), in order. */
  readonly increments: Array<number>
  readonly restartCauses: Array<Cause.Cause<unknown>>
  readonly stoppingReasons: Array<TerminationReason>
  /** Number of `Hold` handlers that have entered (and are blocked on the gate). */
  entered: number
  /** Open to release every blocked (and future) `Hold`. */
  readonly gate: Effect.Latch
  /** Counts of lifecycle events. */
  readonly count: (event: string) => number
}

/**
 * Every gate made by the suite. A system started with `startSystem` opens
 * them all before its scope shuts it down, so a test that fails while an
 * actor is blocked ends with its own failure instead of hanging in the drain
 * (under TestClock the shutdown deadline never passes).
 */
const gates = new Set<Effect.Latch>()

/** A closed latch that the system's teardown opens. */
export const makeGate: Effect.Effect<Effect.Latch> = Effect.tap(Effect.makeLatch(false), (gate) =>
  Effect.sync(() => {
    gates.add(gate)
  }))

const openAllGates: Effect.Effect<void> = Effect.suspend(() => Effect.forEach(gates, (gate) => gate.open, { discard: true }))

export const makeProbe: Effect.Effect<Probe> = Effect.map(makeGate, (gate) => {
  const events: Array<string> = []
  return {
    events,
    notes: [],
    increments: [],
    restartCauses: [],
    stoppingReasons: [],
    entered: 0,
    gate,
    count: (event) => events.filter((e) => e === event).length
  }
})

export interface ProbeBehaviorOptions {
  /** Fail the `build` of the n-th activation (1-based) with a defect. */
  readonly failBuild?: (buildNumber: number) => boolean
  /** Fail the `started` hook of the n-th activation with a defect. */
  readonly failStarted?: (buildNumber: number) => boolean
  /** Every build waits for this latch to open first. */
  readonly buildGate?: Effect.Latch
}

/** The probe's behavior: a counter with private state, lifecycle hooks and an activation-scope finalizer. */
export const probeBehavior = (
  probe: Probe,
  ctx: { readonly stop: Effect.Effect<void> },
  options: ProbeBehaviorOptions = {}
): Effect.Effect<Behavior<ProbeMsg, never>, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (options.buildGate !== undefined) yield* options.buildGate.await
    probe.events.push("build")
    const buildNumber = probe.count("build")
    if (options.failBuild?.(buildNumber) === true) {
      return yield* Effect.die(new Error(`build boom #${buildNumber}`))
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => probe.events.push("finalizer")))
    let count = 0
    const started = options.failStarted?.(buildNumber) === true
      ? Effect.sync(() => probe.events.push("started")).pipe(Effect.zipRight(Effect.die(new Error("started boom"))))
      : Effect.sync(() => {
        probe.events.push("started")
      })
    const behavior: Behavior<ProbeMsg, never> = {
      receive: {
        Increment: ({ by }) =>
          Effect.sync(() => {
            probe.increments.push(by)
            count += by
            return count
          }),
        Get: () => Effect.sync(() => count),
        Withdraw: ({ amount }) =>
          amount > count
            ? Effect.fail(new Overdrawn({ balance: count, requested: amount }))
            : Effect.sync(() => (count -= amount)),
        Crash: ({ how }) => {
          if (how === "throw-sync") throw new Error("sync boom")
          if (how === "throw-in-effect") {
            return Effect.sync(() => {
              throw new Error("effect boom")
            })
          }
          if (how === "die-after-gate") {
            return Effect.sync(() => {
              probe.entered++
            }).pipe(Effect.zipRight(probe.gate.await), Effect.zipRight(Effect.die(new Error("late boom"))))
          }
          return Effect.die(new Error("die boom"))
        },
        Hold: () =>
          Effect.sync(() => {
            probe.entered++
          }).pipe(Effect.zipRight(probe.gate.await)),
        Note: ({ id }) =>
          Effect.sync(() => {
            probe.notes.push(id)
            return id
          }),
        StopSelf: () => ctx.stop
      },
      started,
      restarted: (cause) =>
        Effect.sync(() => {
          probe.events.push("restarted")
          probe.restartCauses.push(cause)
        }),
      stopping: (reason) =>
        Effect.sync(() => {
          probe.events.push(`stopping:${reason._tag}`)
          probe.stoppingReasons.push(reason)
        })
    }
    return behavior
  })

/** The probe kind's build. */
export const probeBuild = (probe: Probe, options: ProbeBehaviorOptions = {}) =>
(ctx: { readonly stop: Effect.Effect<void> }): Effect.Effect<Behavior<ProbeMsg, never>, never, Scope.Scope> =>
  probeBehavior(probe, ctx, options)

// ---------------------------------------------------------------------------
// Systems
// ---------------------------------------------------------------------------

/**
 * The runtime logs crashes as warnings; the suite crashes actors on purpose.
 * Actors run with the runtime captured when their kind's layer is built, so
 * the log level is set around the build.
 */
const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  process.env["WEFT_TEST_LOGS"] === undefined ? Logger.withMinimumLogLevel(effect, LogLevel.None) : effect

/** The kinds' layers on top of a fresh system, built in the current scope. */
export const startSystem = (
  kinds: Layer.Layer<never, never, ActorSystem>,
  config: ActorSystemConfig = {}
): Effect.Effect<System, never, Scope.Scope> =>
  Layer.build(kinds.pipe(Layer.provideMerge(ActorSystem.layer(config)))).pipe(
    Effect.map((context) => Context.get(context, ActorSystem)),
    Effect.tap(() => Effect.addFinalizer(() => openAllGates)),
    quiet
  )

/**
 * Same as `startSystem` but in a scope the test closes itself (its closing is
 * what the test observes, so no gates are opened for it).
 */
export const startSystemIn = (
  scope: Scope.Scope,
  kinds: Layer.Layer<never, never, ActorSystem>,
  config: ActorSystemConfig = {}
): Effect.Effect<System> =>
  Layer.buildWithScope(kinds.pipe(Layer.provideMerge(ActorSystem.layer(config))), scope).pipe(
    Effect.map((context) => Context.get(context, ActorSystem)),
    quiet
  )

/** Collects dead letters reported through the system's `onDeadLetter`. */
export const deadLetterSink = (): { readonly letters: Array<DeadLetter>; readonly onDeadLetter: (letter: DeadLetter) => void } => {
  const letters: Array<DeadLetter> = []
  return { letters, onDeadLetter: (letter) => letters.push(letter) }
}

// ---------------------------------------------------------------------------
// Waiting without relying on any clock service (works under TestClock too)
// ---------------------------------------------------------------------------

/** One real macrotask turn (about a millisecond), independent of the Clock service. */
export const realTick: Effect.Effect<void> = Effect.async<void>((resume) => {
  const timer = setTimeout(() => resume(Effect.void), 1)
  return Effect.sync(() => clearTimeout(timer))
})

/** Lets other fibers run for a few real milliseconds (for "nothing happens" assertions). */
export const settle = (ticks = 15): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < ticks; i++) yield* realTick
  })

/** Polls `condition` on the real timer, at most `attempts` times; dies with `what` if it never holds. */
export const waitFor = (what: string, condition: () => boolean, attempts = 2000): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < attempts; i++) {
      if (condition()) return
      yield* realTick
    }
    if (condition()) return
    return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
  })

/** Polls an effectful condition on the real timer, bounded. */
export const waitForEffect = <E, R>(
  what: string,
  condition: Effect.Effect<boolean, E, R>,
  attempts = 2000
): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < attempts; i++) {
      if (yield* condition) return
      yield* realTick
    }
    if (yield* condition) return
    return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
  })

/** Waits (bounded, real timer) for a fiber to finish and returns its exit. */
export const awaitFiber = <A, E>(what: string, fiber: Fiber.Fiber<A, E>, attempts = 2000): Effect.Effect<Exit.Exit<A, E>> =>
  Effect.gen(function*() {
    for (let i = 0; i <= attempts; i++) {
      const polled = yield* Fiber.poll(fiber)
      if (Option.isSome(polled)) return polled.value
      yield* realTick
    }
    return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
  })

/** Whether the fiber has finished, without waiting. */
export const isDone = <A, E>(fiber: Fiber.Fiber<A, E>): Effect.Effect<boolean> =>
  Effect.map(Fiber.poll(fiber), Option.isSome)

/** The failure of an exit, if it failed with one (`undefined` for success, defects or interruption). */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/**
 * Forks `effect` and waits until the forked fiber has begun running it (a
 * forked fiber starts asynchronously; `awaitTermination` and `watch` look the
 * address up when they start).
 */
export const forkStarted = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<Fiber.RuntimeFiber<A, E>, never, R> =>
  Effect.gen(function*() {
    let started = false
    const fiber = yield* Effect.fork(Effect.zipRight(Effect.sync(() => {
      started = true
    }), effect))
    yield* waitFor("the forked fiber to start", () => started)
    yield* realTick
    return fiber
  })

/** Messages queued for `kind` right now (from the public `stats`). */
export const queuedFor = (system: System, kind: string): Effect.Effect<number> =>
  Effect.map(system.stats, (stats) => stats.find((s) => s.kind === kind)?.mailboxDepth ?? 0)

// ---------------------------------------------------------------------------
// A watcher kind: watches addresses and records the notices it is told
// ---------------------------------------------------------------------------

export class WatchTarget extends Schema.TaggedRequest<WatchTarget>()("WatchTarget", {
  payload: { target: ActorAddress },
  success: Schema.Void,
  failure: Schema.Never
}) {}

export class UnwatchTarget extends Schema.TaggedRequest<UnwatchTarget>()("UnwatchTarget", {
  payload: { target: ActorAddress },
  success: Schema.Void,
  failure: Schema.Never
}) {}

/** The watcher's own message, mapped from a `Terminated` notice. */
export class TargetDown extends Schema.TaggedRequest<TargetDown>()("TargetDown", {
  payload: { notice: Terminated },
  success: Schema.Void,
  failure: Schema.Never
}) {}

export type WatcherMsg = WatchTarget | UnwatchTarget | TargetDown

export const watcherDefinition = (): ActorDefinition<string, WatcherMsg> =>
  makeKind(uniqueKind("watcher"), [WatchTarget, UnwatchTarget, TargetDown])

/** A watcher kind's layer (explicit activation); notices land in `notices`. */
export const watcherLayer = (
  definition: ActorDefinition<string, WatcherMsg>,
  notices: Array<Terminated>
): Layer.Layer<never, never, ActorSystem> =>
  Actor.toLayer(definition, (ctx) =>
    Effect.succeed({
      receive: {
        WatchTarget: ({ target }) => ctx.watch(target, (notice) => new TargetDown({ notice })),
        UnwatchTarget: ({ target }) => ctx.unwatch(target),
        TargetDown: ({ notice }) =>
          Effect.sync(() => {
            notices.push(notice)
          })
      }
    }))

/** Joins a fiber, waiting a bounded (real) time: a property that breaks fails the test instead of hanging it. */
export const joinWithin = <A, E>(what: string, fiber: Fiber.Fiber<A, E>, attempts = 2000): Effect.Effect<A, E> =>
  Effect.flatMap(awaitFiber(what, fiber, attempts), (exit) => exit)
