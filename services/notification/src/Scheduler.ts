/**
 * Durable scheduled delivery: items due at a UTC instant, delivered once each
 * by one of the nodes sharing the store, behind one interface with a Redis
 * adapter (`RedisScheduler`) and an in-memory twin (`MemoryScheduler`, the
 * embedded default).
 *
 * How an item travels: `schedule` stores it pending until `due`. A runner
 * (`run`, forked by every node) claims due items atomically: the store moves
 * them to in flight under a lease (`leaseMs`) owned by that claim, so no other
 * runner can take them. The runner calls `deliver`, extends the lease while
 * delivery is in progress, and acks each item once `deliver` succeeded, which
 * removes it. If the node dies (or `deliver` fails), the lease lapses and any
 * runner claims the item again; an item is dropped, with an error logged,
 * after `maxAttempts` claims without an ack.
 *
 * So "delivered once" means once per successful ack. A node that dies after
 * `deliver` succeeded but before its ack reached the store leaves the item to
 * be delivered again after the lease; so does a node cut off from the store
 * for longer than the lease while delivering. The delivery path must
 * therefore treat the item id as an idempotency key (the user's inbox keeps
 * the ids it has seen and drops a repeat), so that the user still sees the
 * notification once.
 *
 * `schedule` is idempotent by id while the item is pending or in flight: a
 * second call with the same id changes nothing and returns false. Once acked
 * or cancelled the id is forgotten. `cancel` stops any delivery not already
 * under way; a delivery in progress finishes, and its ack then finds nothing.
 */
import { Cause, Context, Duration, Effect, Exit, FiberSet, Queue, Schedule, Schema } from "effect"

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/** What is scheduled. `due` is UTC ms; `payload` is opaque to the scheduler (JSON, usually). */
export interface ScheduledItem {
  readonly id: string
  readonly due: number
  readonly payload: string
}

/** An item handed to `deliver`. `attempt` counts claims, from 1: more than 1 means an earlier claim was not acked. */
export interface DueItem extends ScheduledItem {
  readonly attempt: number
}

/** An item given up on at a claim, reported in the logs. */
export interface DroppedItem {
  readonly id: string
  readonly attempts: number
  /** `attempts`: claimed `maxAttempts` times without an ack. `missing`, `invalid-data`: the store lost or garbled it. */
  readonly reason: "attempts" | "missing" | "invalid-data"
}

export class SchedulerError extends Schema.TaggedError<SchedulerError>()("SchedulerError", {
  /**
   * `unavailable`: the store could not be reached. `invalid-item`: the item breaks the limits
   * of `ScheduledItem` below. `too-far`: due beyond the horizon. `invalid-data`: the store
   * replied with something this code did not write.
   */
  reason: Schema.Literal("unavailable", "invalid-item", "too-far", "invalid-data"),
  message: Schema.String
}) {}

/** Ids and payloads within these limits are accepted (ids are Redis set members and hash fields as they are). */
export const maxIdLength = 256
export const maxPayloadLength = 65_536

export const ScheduledItem = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(maxIdLength)),
  due: Schema.Number.pipe(Schema.int(), Schema.nonNegative(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER)),
  payload: Schema.String.pipe(Schema.maxLength(maxPayloadLength))
})

export interface SchedulerService {
  /**
   * Stores `item` until it is due. True if stored; false if an item with this id is already
   * pending or in flight (that one is kept, unchanged). Fails with `too-far` when `due` is more
   * than `horizonMs` past the store's clock. A due time in the past means "as soon as possible".
   */
  readonly schedule: (item: ScheduledItem) => Effect.Effect<boolean, SchedulerError>
  /** Removes the item, pending or in flight. True if there was one. */
  readonly cancel: (id: string) => Effect.Effect<boolean, SchedulerError>
  /**
   * Delivers due items with `deliver` until interrupted; never fails (store errors are
   * logged and retried with backoff). Run it once per node, forked in the node's scope; every
   * node sharing the store may run it, and each item is claimed by one of them at a time.
   */
  readonly run: <E, R>(deliver: (item: DueItem) => Effect.Effect<void, E, R>) => Effect.Effect<never, never, R>
}

export class Scheduler extends Context.Tag("@weft/notification/Scheduler")<Scheduler, SchedulerService>() {}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

export interface SchedulerOptions {
  /** How long a claim holds an item before another runner may take it. Default 30 s. */
  readonly leaseMs?: number | undefined
  /** The furthest ahead an item may be due; Redis keys live a day longer. Default 30 days. */
  readonly horizonMs?: number | undefined
  /** Deliveries in progress at once per runner; a claim takes at most as many as are free. Default 16. */
  readonly concurrency?: number | undefined
  /** Claims without an ack before an item is dropped. Default 10. */
  readonly maxAttempts?: number | undefined
}

export interface SchedulerSettings {
  readonly leaseMs: number
  readonly horizonMs: number
  readonly concurrency: number
  readonly maxAttempts: number
}

const day = 86_400_000

/** Whole numbers in range, so Redis (PX, scores, LIMIT) and the memory twin read them alike. */
export const validateOptions = (
  options: SchedulerOptions
): Effect.Effect<SchedulerSettings, Cause.IllegalArgumentException> => {
  const settings: SchedulerSettings = {
    leaseMs: options.leaseMs ?? 30_000,
    horizonMs: options.horizonMs ?? 30 * day,
    concurrency: options.concurrency ?? 16,
    maxAttempts: options.maxAttempts ?? 10
  }
  // The lease is extended every third of it, so it needs a few ms to divide.
  const ranges: ReadonlyArray<readonly [keyof SchedulerSettings, number, number]> = [
    ["leaseMs", 30, day],
    ["horizonMs", 1, 366 * day],
    ["concurrency", 1, 1000],
    ["maxAttempts", 1, 1000]
  ]
  for (const [name, min, max] of ranges) {
    const value = settings[name]
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      return Effect.fail(
        new Cause.IllegalArgumentException(`Scheduler: ${name} must be an integer in [${min}, ${max}], got ${value}`)
      )
    }
  }
  return Effect.succeed(settings)
}

// ---------------------------------------------------------------------------
// What an adapter implements
// ---------------------------------------------------------------------------

export interface Claim {
  readonly items: ReadonlyArray<DueItem>
  readonly dropped: ReadonlyArray<DroppedItem>
}

/**
 * The store-level interface an adapter implements (as `RunnerStorage.Encoded` is for
 * @effect/cluster); `make` builds the service, with its runner loop, on top of it. Each method
 * is atomic in the store and reads the store's clock.
 */
export interface SchedulerStore {
  /** Adds a validated item unless its id is pending or in flight; `too-far` past the horizon. */
  readonly schedule: (item: ScheduledItem) => Effect.Effect<boolean, SchedulerError>
  readonly cancel: (id: string) => Effect.Effect<boolean, SchedulerError>
  /**
   * Takes up to `limit` items whose lease lapsed or that are due (lapsed leases first, then by
   * due time), counts an attempt on each, and leases them to `owner` for `leaseMs`; drops those
   * past `maxAttempts`.
   */
  readonly claim: (owner: string, limit: number) => Effect.Effect<Claim, SchedulerError>
  /** Removes the item if `owner` still holds it. False if it was cancelled or claimed again since. */
  readonly ack: (id: string, owner: string) => Effect.Effect<boolean, SchedulerError>
  /** Renews the lease on each item still held by the owner given with it; returns their ids. */
  readonly extend: (
    held: ReadonlyArray<readonly [id: string, owner: string]>
  ) => Effect.Effect<ReadonlyArray<string>, SchedulerError>
  /**
   * Waits until there may be something to claim after a claim found nothing: a poll interval
   * for a store shared with other processes, or until the next due time or lease deadline (or a
   * new item) for one that sees every write.
   */
  readonly idle: Effect.Effect<void>
}

// ---------------------------------------------------------------------------
// The service and its runner loop
// ---------------------------------------------------------------------------

const decodeItem = Schema.decodeUnknown(ScheduledItem)

/** Claim failures back off to this, so an outage is neither hammered nor logged 4 times a second. */
const maxBackoffMs = 5_000

/** An ack is retried a little before the lease is left to lapse, which would deliver the item again. */
const ackRetry = Schedule.intersect(Schedule.exponential(Duration.millis(50)), Schedule.recurs(3))

export const make = (store: SchedulerStore, settings: SchedulerSettings): SchedulerService => {
  const { concurrency, leaseMs } = settings
  // A third of the lease: two renewals may fail in a row before another runner can take an item.
  const renewEvery = Duration.millis(Math.floor(leaseMs / 3))

  const schedule = (item: ScheduledItem) =>
    decodeItem(item).pipe(
      Effect.mapError((error) => new SchedulerError({ reason: "invalid-item", message: error.message })),
      Effect.flatMap(store.schedule)
    )

  const run = <E, R>(deliver: (item: DueItem) => Effect.Effect<void, E, R>): Effect.Effect<never, never, R> => {
    // Each claim's owner is `<runner>/<n>`, new for every claim, so a late ack from an earlier claim
    // of an id (cancelled and scheduled again meanwhile) can never remove a later one.
    const runner = crypto.randomUUID()
    let claims = 0
    return Effect.scoped(Effect.gen(function*() {
      // Items being delivered now, id → the claim holding it: what the renewals hold on to.
      const held = new Map<string, string>()
      // Signalled whenever a delivery ends, for a runner waiting with every slot busy.
      const slotFreed = yield* Queue.sliding<void>(1)
      const deliveries = yield* FiberSet.make<void, never>()
      let failures = 0

      // Signalled when a claim adds to `held`, so renewals sleep only while there is something to renew
      // (an idle runner keeps no timer, and TestClock can jump a day in one step).
      const claimed = yield* Queue.sliding<void>(1)

      // A renewal that returns fewer ids means those were cancelled or lost to another runner;
      // their deliveries go on, and their acks will say so.
      const renew = Effect.suspend(() =>
        held.size === 0 ? Effect.void : store.extend([...held]).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning("scheduler: could not renew delivery leases").pipe(
              Effect.annotateLogs({ error: error.message, items: held.size })
            )
          )
        )
      )
      yield* Effect.forkScoped(Effect.forever(Effect.suspend(() =>
        held.size === 0 ? claimed.take : Effect.zipRight(Effect.sleep(renewEvery), renew)
      )))

      const ack = (item: DueItem, owner: string) =>
        store.ack(item.id, owner).pipe(
          Effect.retry(ackRetry),
          Effect.flatMap((acked) =>
            acked
              ? Effect.void
              : Effect.logInfo("scheduler: delivered an item that was cancelled or claimed again meanwhile").pipe(
                Effect.annotateLogs({ id: item.id })
              )
          ),
          Effect.catchAll((error) =>
            Effect.logWarning("scheduler: ack failed; the item will be delivered again after its lease").pipe(
              Effect.annotateLogs({ id: item.id, error: error.message })
            )
          )
        )

      const deliverOne = (item: DueItem, owner: string) =>
        Effect.exit(deliver(item)).pipe(
          Effect.flatMap((exit) => {
            if (Exit.isSuccess(exit)) return ack(item, owner)
            // The runner is being stopped: leave the item to its lease, as a crash would.
            if (Cause.isInterruptedOnly(exit.cause)) return Effect.void
            return Effect.logWarning("scheduler: delivery failed; retried when its lease lapses").pipe(
              Effect.annotateLogs({ id: item.id, attempt: item.attempt, cause: Cause.pretty(exit.cause) })
            )
          }),
          // Done either way: a failed item is no longer renewed, so its lease lapses and it is retried.
          Effect.ensuring(Effect.suspend(() => {
            if (held.get(item.id) === owner) held.delete(item.id)
            return slotFreed.offer(undefined)
          }))
        )

      const reportDropped = (dropped: ReadonlyArray<DroppedItem>) =>
        Effect.forEach(dropped, (item) =>
          Effect.logError("scheduler: dropped an item that cannot be delivered").pipe(
            Effect.annotateLogs({ id: item.id, attempts: item.attempts, reason: item.reason })
          ), { discard: true })

      // One claim. It takes no more than there are free delivery slots, because a lease starts
      // at the claim: an item must not wait in this runner's queue while its lease runs.
      const step: Effect.Effect<void, never, R> = Effect.suspend(() => {
        const free = concurrency - held.size
        if (free <= 0) return slotFreed.take
        const owner = `${runner}/${claims++}`
        return store.claim(owner, free).pipe(
          Effect.matchEffect({
            onFailure: (error) => {
              failures++
              const backoff = Math.min(maxBackoffMs, 100 * 2 ** Math.min(failures, 10))
              return Effect.logWarning("scheduler: claim failed; retrying").pipe(
                Effect.annotateLogs({ error: error.message, failures, retryInMs: backoff }),
                Effect.zipRight(Effect.sleep(Duration.millis(backoff)))
              )
            },
            onSuccess: (claim) => {
              failures = 0
              for (const item of claim.items) held.set(item.id, owner)
              return claimed.offer(undefined).pipe(
                Effect.zipRight(reportDropped(claim.dropped)),
                Effect.zipRight(Effect.forEach(claim.items, (item) => FiberSet.run(deliveries, deliverOne(item, owner)), {
                  discard: true
                })),
                // A claim that filled every free slot may have left more due: claim again at once.
                Effect.zipRight(claim.items.length + claim.dropped.length < free ? store.idle : Effect.void)
              )
            }
          })
        )
      })

      return yield* Effect.forever(step)
    })).pipe(Effect.annotateLogs({ module: "Scheduler", runner }))
  }

  return {
    schedule,
    cancel: (id) =>
      id.length === 0 || id.length > maxIdLength
        ? Effect.succeed(false)
        : store.cancel(id),
    run
  }
}
