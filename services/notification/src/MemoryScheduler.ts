/**
 * The in-memory twin of `RedisScheduler`: the same pending and in-flight
 * states, leases, owner checks, attempts and horizon, for one node without
 * Redis (the embedded default) and for tests. It does not survive a restart;
 * that is what Redis is for.
 *
 * Each store method mirrors a Lua script of `RedisScheduler` step by step, and
 * the contract suite (`test/scheduler.contract.ts`) holds both to the same
 * behaviour. Time comes from Effect's `Clock`, so TestClock drives due times
 * and leases. Every method reads the clock and then runs synchronously, so no
 * other fiber can interleave with it: each is atomic, as a script is in Redis.
 *
 * Runners here need not poll: every write goes through this store, so an idle
 * runner sleeps until the next due time or lease deadline, or until `schedule`
 * wakes it. (Under TestClock this also means a day can pass in one step.)
 */
import { Clock, Deferred, Duration, Effect, Layer } from "effect"
import type { Cause } from "effect"
import { make as makeService, Scheduler, SchedulerError, validateOptions } from "./Scheduler.ts"
import type {
  Claim,
  DroppedItem,
  DueItem,
  ScheduledItem,
  SchedulerOptions,
  SchedulerService,
  SchedulerStore
} from "./Scheduler.ts"

interface Entry {
  readonly item: ScheduledItem
  /** Claims so far. */
  attempts: number
  /** The claim holding it; undefined while pending. */
  owner: string | undefined
  /** While in flight: when another runner may take it. */
  leaseUntil: number
}

/** Ties break by id, as members with equal scores are ordered in a Redis sorted set. */
const byTime = (time: (entry: Entry) => number) => (a: Entry, b: Entry) =>
  time(a) - time(b) || (a.item.id < b.item.id ? -1 : a.item.id > b.item.id ? 1 : 0)

export const make = (options: SchedulerOptions = {}): Effect.Effect<SchedulerService, Cause.IllegalArgumentException> =>
  Effect.gen(function*() {
    const settings = yield* validateOptions(options)
    const { horizonMs, leaseMs, maxAttempts } = settings
    // Insertion order is irrelevant: claims sort what is due, as a sorted set would.
    const entries = new Map<string, Entry>()
    // Completed (and replaced) by every schedule, so idle runners look again.
    let wake = yield* Deferred.make<void>()

    const atomically = <A, E>(f: (now: number) => Effect.Effect<A, E>) => Effect.flatMap(Clock.currentTimeMillis, f)

    const store: SchedulerStore = {
      schedule: (item) =>
        atomically((now) => {
          if (item.due > now + horizonMs) {
            return Effect.fail(
              new SchedulerError({
                reason: "too-far",
                message: `${item.id} is due ${item.due - now} ms from now, beyond the horizon of ${horizonMs} ms`
              })
            )
          }
          if (entries.has(item.id)) return Effect.succeed(false)
          entries.set(item.id, { item: { ...item }, attempts: 0, owner: undefined, leaseUntil: 0 })
          return Deferred.make<void>().pipe(
            Effect.flatMap((next) => {
              const woken = wake
              wake = next
              return Deferred.succeed(woken, undefined)
            }),
            Effect.as(true)
          )
        }),

      cancel: (id) => Effect.sync(() => entries.delete(id)),

      claim: (owner, limit) =>
        atomically((now) =>
          Effect.sync((): Claim => {
            const lapsed: Array<Entry> = []
            const due: Array<Entry> = []
            for (const entry of entries.values()) {
              if (entry.owner !== undefined) {
                if (entry.leaseUntil <= now) lapsed.push(entry)
              } else if (entry.item.due <= now) {
                due.push(entry)
              }
            }
            const taken = lapsed.sort(byTime((e) => e.leaseUntil)).slice(0, limit)
            taken.push(...due.sort(byTime((e) => e.item.due)).slice(0, limit - taken.length))
            const items: Array<DueItem> = []
            const dropped: Array<DroppedItem> = []
            for (const entry of taken) {
              entry.attempts++
              if (entry.attempts > maxAttempts) {
                entries.delete(entry.item.id)
                dropped.push({ id: entry.item.id, attempts: entry.attempts, reason: "attempts" })
              } else {
                entry.owner = owner
                entry.leaseUntil = now + leaseMs
                items.push({ ...entry.item, attempt: entry.attempts })
              }
            }
            return { items, dropped }
          })
        ),

      ack: (id, owner) =>
        Effect.sync(() => {
          if (entries.get(id)?.owner !== owner) return false
          entries.delete(id)
          return true
        }),

      extend: (held) =>
        atomically((now) =>
          Effect.sync(() =>
            held.flatMap(([id, owner]) => {
              const entry = entries.get(id)
              if (entry === undefined || entry.owner !== owner) return []
              entry.leaseUntil = now + leaseMs
              return [id]
            })
          )
        ),

      idle: Effect.suspend(() => {
        const woken = Deferred.await(wake)
        return atomically((now) => {
          let next = Infinity
          for (const entry of entries.values()) {
            next = Math.min(next, entry.owner === undefined ? entry.item.due : entry.leaseUntil)
          }
          return next === Infinity ? woken : Effect.race(Effect.sleep(Duration.millis(Math.max(0, next - now))), woken)
        })
      })
    }

    return makeService(store, settings)
  })

export const layer = (options: SchedulerOptions = {}): Layer.Layer<Scheduler, Cause.IllegalArgumentException> =>
  Layer.effect(Scheduler, make(options))
