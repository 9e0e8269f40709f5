/**
 * The consumer loop, the same for every bus: subscribe, take at most
 * `maxInFlight` messages that are not settled yet, run each through the
 * `Pipeline`, and settle it by its outcome (ack, retry later, dead-letter).
 *
 * Backpressure: the loop asks the bus only for as many messages as it has
 * free slots, and a slot frees when its message is settled; when the delivery
 * path is slow or down, consumption slows down with it and the events wait in
 * the bus, never in memory. A bus that fails ends the subscription; the loop
 * reconnects with capped, jittered backoff. When the scope closes, it stops
 * taking messages and gives those in flight a few seconds to settle; what is
 * left the bus gives again to another consumer.
 */
import { Chunk, Duration, Effect, FiberSet, Queue, Schedule } from "effect"
import type { Scope } from "effect"
import * as IngestMetrics from "./IngestMetrics.ts"
import { type Outcome, Pipeline } from "./Pipeline.ts"
import type { Message, Source } from "./Source.ts"

export interface Options {
  /** Messages taken from this source and not yet settled, at most. */
  readonly maxInFlight: number
  /** How long the bus waits before it gives an unsettled message to another consumer; `working` is signalled thrice per period. */
  readonly holdMs: number
  /** On shutdown, how long the messages in flight get to settle. Default 5 s. */
  readonly drainMs?: number
  /** How often the bus's lag is sampled. Default 5 s. */
  readonly lagEveryMs?: number
}

/** How long a message waits before the bus gives it again, by how often it was given: 0.5 s, 1 s, 2 s, ... 30 s. */
export const retryDelay = (deliveries: number): Duration.Duration =>
  Duration.millis(Math.min(30_000, 500 * 2 ** Math.min(Math.max(deliveries, 1) - 1, 10)))

/** Settles one message by the pipeline's outcome; a bus failure while settling is logged (the bus gives it again). */
const settle = (source: Source, message: Message, outcome: Outcome): Effect.Effect<void> => {
  const { event } = message
  const annotations = { source: source.name, subject: event.subject, id: event.busId ?? "" }
  const settled = (() => {
    switch (outcome._tag) {
      case "Delivered":
        IngestMetrics.recordDelivered(source.name, outcome.duplicate)
        return Effect.zipRight(
          Effect.clockWith((clock) =>
            clock.currentTimeMillis.pipe(Effect.map((now) => {
              if (event.publishedAt !== undefined && !outcome.duplicate) IngestMetrics.recordAge(source.name, event.publishedAt, now)
            }))
          ),
          message.ack
        )
      case "Expired":
        IngestMetrics.recordExpired(source.name)
        return message.ack
      case "DeadLetter":
        IngestMetrics.recordDeadLettered(source.name, outcome.reason)
        return Effect.zipRight(
          Effect.logWarning("ingest: event dead-lettered").pipe(Effect.annotateLogs({ ...annotations, reason: outcome.reason, problem: outcome.message })),
          message.deadLetter(outcome.reason, outcome.message)
        )
      case "Retry":
        IngestMetrics.recordRetried(source.name)
        return Effect.zipRight(
          Effect.logWarning("ingest: event not delivered yet; the bus gives it again").pipe(
            Effect.annotateLogs({ ...annotations, deliveries: event.deliveries, problem: outcome.message })
          ),
          message.retry(retryDelay(event.deliveries))
        )
    }
  })()
  return settled.pipe(
    Effect.catchAll((error) =>
      Effect.logWarning("ingest: could not settle an event; the bus gives it again").pipe(Effect.annotateLogs({ ...annotations, error: error.message }))
    )
  )
}

/** Runs `effect` while signalling `working` every third of `holdMs`. */
const keepingAlive = <A>(effect: Effect.Effect<A>, working: Effect.Effect<void> | undefined, holdMs: number): Effect.Effect<A> => {
  if (working === undefined) return effect
  const every = Duration.millis(Math.max(100, Math.floor(holdMs / 3)))
  return Effect.scoped(Effect.zipRight(Effect.forkScoped(Effect.repeat(Effect.delay(working, every), Schedule.forever)), effect))
}

/** One subscription's life: until the bus fails (the error) or the scope is interrupted. */
const session = (source: Source, options: Options) =>
  Effect.scoped(Effect.gen(function*() {
    const pipeline = yield* Pipeline
    const subscription = yield* source.subscribe
    yield* Effect.logInfo("ingest: consuming").pipe(Effect.annotateLogs({ source: source.name, from: source.describe }))

    const max = options.maxInFlight
    const slots = yield* Queue.bounded<true>(max)
    yield* Queue.offerAll(slots, Array.from({ length: max }, () => true as const))
    const release = (count: number) => count <= 0 ? Effect.void : Queue.offerAll(slots, Array.from({ length: count }, () => true as const))
    // Messages taken and not settled (slots reserved for a pull still waiting on the bus are not).
    let inFlight = 0
    const track = (delta: number) => Effect.sync(() => IngestMetrics.setInFlight(source.name, inFlight += delta))

    // Closed last-but-one: in-flight messages settle (or are interrupted) before the bus connection closes.
    const fibers = yield* FiberSet.make<void, never>()
    yield* Effect.addFinalizer(() =>
      // Finalizers run uninterruptibly: the wait must be made interruptible for its timeout to end it.
      Effect.interruptible(FiberSet.awaitEmpty(fibers)).pipe(
        Effect.timeout(Duration.millis(options.drainMs ?? 5000)),
        Effect.catchAll(() => Effect.logWarning("ingest: events still in flight at shutdown; the bus gives them again").pipe(Effect.annotateLogs({ source: source.name }))),
        Effect.zipRight(Effect.sync(() => IngestMetrics.setInFlight(source.name, 0)))
      )
    )

    yield* Effect.forkScoped(
      Effect.repeat(
        subscription.lag.pipe(
          Effect.tap((events) => Effect.sync(() => IngestMetrics.setLag(source.name, events))),
          Effect.catchAll((error) => Effect.logDebug("ingest: lag not read").pipe(Effect.annotateLogs({ source: source.name, error: error.message })))
        ),
        Schedule.spaced(Duration.millis(options.lagEveryMs ?? 5000))
      )
    )

    const handle = (message: Message): Effect.Effect<void> => {
      IngestMetrics.recordConsumed(source.name, message.event.deliveries > 1)
      // Kept alive until settled: a dead letter's publish is part of its handling too.
      return keepingAlive(Effect.flatMap(pipeline.handle(message.event), (outcome) => settle(source, message, outcome)), message.working, options.holdMs).pipe(
        Effect.ensuring(Effect.zipRight(track(-1), release(1)))
      )
    }

    return yield* Effect.forever(Effect.gen(function*() {
      // Wait for one free slot, then take every free one: that many messages are asked for.
      yield* Queue.take(slots)
      const batch = 1 + Chunk.size(yield* Queue.takeAll(slots))
      let taken = 0
      yield* subscription.pull(batch, (message) =>
        Effect.suspend(() => {
          taken++
          return Effect.zipRight(track(1), Effect.asVoid(FiberSet.run(fibers, handle(message))))
        })).pipe(Effect.ensuring(Effect.suspend(() => release(batch - taken))))
    }))
  }))

/**
 * Consumes `source` until the scope closes, reconnecting after failures (0.2 s, doubling, at
 * most 10 s apart, jittered).
 */
export const run = (source: Source, options: Options): Effect.Effect<never, never, Pipeline> =>
  session(source, options).pipe(
    Effect.tapError((error) =>
      Effect.logWarning("ingest: source failed; reconnecting").pipe(
        Effect.annotateLogs({ source: source.name, from: source.describe, error: error.message })
      )
    ),
    Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")), Schedule.jittered)),
    Effect.orDie
  )

/** `run` in the background of the scope. */
export const start = (source: Source, options: Options): Effect.Effect<void, never, Pipeline | Scope.Scope> =>
  Effect.asVoid(Effect.forkScoped(run(source, options)))
