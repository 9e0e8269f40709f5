/**
 * The contract every `SchedulerService` keeps (`src/Scheduler.ts`): nothing is
 * delivered before it is due; each item is delivered once per ack, by one
 * runner, even with several runners on one store; `schedule` is idempotent by
 * id; `cancel` stops delivery; a live runner keeps its lease however long a
 * delivery takes, and a claim whose runner dies is taken over after the
 * lease; failed deliveries are retried and given up after `maxAttempts`.
 *
 * `schedulerContract(case)` registers it for one adapter. Time is the case's:
 * real time for Redis (its scripts read Redis TIME), TestClock for the memory
 * twin, whose runners then sleep on the TestClock too.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber } from "effect"
import type { Scope } from "effect"
import { maxPayloadLength } from "../src/Scheduler.ts"
import type { DueItem, ScheduledItem, SchedulerError, SchedulerOptions, SchedulerService } from "../src/Scheduler.ts"

// ---------------------------------------------------------------------------
// What a case provides
// ---------------------------------------------------------------------------

export interface SchedulerUnderTest {
  /** Services on one shared store, one per "node" (for Redis each has its own connection). */
  readonly nodes: ReadonlyArray<SchedulerService>
  /** The store's clock in ms (Redis TIME, or Effect's Clock). */
  readonly now: Effect.Effect<number>
  /** Lets `ms` pass as the store and the runners see it. */
  readonly elapse: (ms: number) => Effect.Effect<void>
  /** Forks `node.run(deliver)` in the test's scope, on the clock the runners must use. */
  readonly start: (
    node: SchedulerService,
    deliver: (item: DueItem) => Effect.Effect<void, string>
  ) => Effect.Effect<Fiber.RuntimeFiber<never, never>, never, Scope.Scope>
}

export interface SchedulerCase {
  readonly name: string
  /** A fresh, empty store with `nodes` services on it, cleaned up with the scope. */
  readonly make: (nodes: number, options: SchedulerOptions) => Effect.Effect<SchedulerUnderTest, never, Scope.Scope>
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// Short, because Redis runs in real time; every "not yet" is checked well before the deadline.
const lease = 400
const defaults: SchedulerOptions = { leaseMs: 2_000, concurrency: 4 }
const step = 20

interface Delivery {
  readonly id: string
  readonly payload: string
  readonly attempt: number
  readonly node: number
  /** The store's clock when `deliver` was called. */
  readonly at: number
}

/** Starts a runner on node `n` that records every delivery in `log` and then runs `then`. */
const recorder = (
  sut: SchedulerUnderTest,
  n: number,
  log: Array<Delivery>,
  then: (item: DueItem) => Effect.Effect<void, string> = () => Effect.void
) =>
  sut.start(sut.nodes[n], (item) =>
    Effect.flatMap(sut.now, (at) =>
      Effect.zipRight(
        Effect.sync(() => log.push({ id: item.id, payload: item.payload, attempt: item.attempt, node: n, at })),
        then(item)
      )))

/** Lets time pass in small steps until `done()` holds; fails the test after `timeoutMs`. */
const waitFor = (sut: SchedulerUnderTest, what: string, done: () => boolean, timeoutMs = 3_000) =>
  Effect.gen(function*() {
    for (let waited = 0; waited <= timeoutMs; waited += step) {
      if (done()) return
      yield* sut.elapse(step)
    }
    if (!done()) return yield* Effect.dieMessage(`timed out after ${timeoutMs} ms waiting for ${what}`)
  })

const item = (id: string, due: number, payload = `payload of ${id}`): ScheduledItem => ({ id, due, payload })

const failure = <A>(effect: Effect.Effect<A, SchedulerError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result)
      ? Effect.succeed(result.left.reason)
      : Effect.dieMessage(`expected a SchedulerError, got ${JSON.stringify(result.right)}`))

const countById = (log: ReadonlyArray<Delivery>) => {
  const counts = new Map<string, number>()
  for (const delivery of log) counts.set(delivery.id, (counts.get(delivery.id) ?? 0) + 1)
  return counts
}

/** A small seeded generator, so a failing run can be replayed from the seed in its message. */
const random = (seed: number) => {
  let state = seed >>> 0
  return (below: number) => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) % below)
  }
}

// ---------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------

export const schedulerContract = (c: SchedulerCase) =>
  describe(c.name, () => {
    it.scoped("delivers an item once when it is due, and not before", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(1, defaults)
        const log: Array<Delivery> = []
        yield* recorder(sut, 0, log)
        const due = (yield* sut.now) + 300
        expect(yield* sut.nodes[0].schedule(item("a", due))).toBe(true)
        yield* sut.elapse(150)
        expect(log).toEqual([])
        yield* waitFor(sut, "the delivery", () => log.length > 0)
        yield* sut.elapse(200)
        expect(log.map(({ attempt, id, payload }) => ({ id, payload, attempt }))).toEqual([
          { id: "a", payload: "payload of a", attempt: 1 }
        ])
        expect(log[0].at).toBeGreaterThanOrEqual(due)
      }))

    it.scoped("delivers past-due items at once, then the rest in due order", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(1, { ...defaults, concurrency: 1 })
        const log: Array<Delivery> = []
        const now = yield* sut.now
        yield* sut.nodes[0].schedule(item("later", now + 200))
        yield* sut.nodes[0].schedule(item("soon", now + 100))
        yield* sut.nodes[0].schedule(item("overdue", now - 60_000))
        yield* recorder(sut, 0, log)
        yield* waitFor(sut, "three deliveries", () => log.length === 3)
        expect(log.map((d) => d.id)).toEqual(["overdue", "soon", "later"])
      }))

    it.scoped("schedule is idempotent by id while the item is pending or in flight", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(1, defaults)
        const node = sut.nodes[0]
        const log: Array<Delivery> = []
        const release = yield* Deferred.make<void>()
        yield* recorder(sut, 0, log, (delivered) => delivered.id === "held" ? Deferred.await(release) : Effect.void)
        const now = yield* sut.now
        expect(yield* node.schedule(item("a", now + 100, "first"))).toBe(true)
        expect(yield* node.schedule(item("a", now + 50, "second"))).toBe(false)
        expect(yield* node.schedule(item("held", now))).toBe(true)
        yield* waitFor(sut, "both deliveries", () => log.length === 2)
        expect(log.find((d) => d.id === "a")).toMatchObject({ payload: "first" })
        expect(log.find((d) => d.id === "a")?.at).toBeGreaterThanOrEqual(now + 100)
        // "held" is in flight (its delivery waits): scheduling it again is refused.
        expect(yield* node.schedule(item("held", now))).toBe(false)
        yield* Deferred.succeed(release, undefined)
        yield* sut.elapse(100)
        // Acked, so forgotten: the same id schedules a new delivery.
        expect(yield* node.schedule(item("a", (yield* sut.now) + 50, "third"))).toBe(true)
        yield* waitFor(sut, "the new delivery", () => log.length === 3)
        yield* sut.elapse(200)
        expect(log.map((d) => [d.id, d.payload])).toEqual([["held", "payload of held"], ["a", "first"], ["a", "third"]])
        expect(countById(log)).toEqual(new Map([["a", 2], ["held", 1]]))
      }))

    it.scoped("cancel removes a pending item, and an item in flight is not delivered again", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(1, { ...defaults, leaseMs: lease })
        const node = sut.nodes[0]
        const log: Array<Delivery> = []
        const release = yield* Deferred.make<void>()
        yield* recorder(sut, 0, log, (delivered) => delivered.id === "busy" ? Deferred.await(release) : Effect.void)
        const now = yield* sut.now
        yield* node.schedule(item("c", now + 200))
        expect(yield* node.cancel("c")).toBe(true)
        expect(yield* node.cancel("c")).toBe(false)
        expect(yield* node.cancel("never scheduled")).toBe(false)
        expect(yield* node.cancel("")).toBe(false)
        yield* node.schedule(item("busy", now))
        yield* waitFor(sut, "the delivery in progress", () => log.length === 1)
        expect(yield* node.cancel("busy")).toBe(true)
        yield* Deferred.succeed(release, undefined)
        // Past the due time of "c" and past the lease of "busy": neither comes (back).
        yield* sut.elapse(lease * 2)
        expect(log.map((d) => d.id)).toEqual(["busy"])
        expect(yield* node.schedule(item("c", (yield* sut.now) + 10))).toBe(true)
      }))

    it.scoped("refuses items due beyond the horizon, and malformed items", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(1, { ...defaults, horizonMs: 60_000 })
        const node = sut.nodes[0]
        const now = yield* sut.now
        expect(yield* failure(node.schedule(item("far", now + 120_000)))).toBe("too-far")
        expect(yield* node.schedule(item("near", now + 30_000))).toBe(true)
        expect(yield* failure(node.schedule(item("", now)))).toBe("invalid-item")
        expect(yield* failure(node.schedule(item("x".repeat(257), now)))).toBe("invalid-item")
        expect(yield* failure(node.schedule(item("nan", Number.NaN)))).toBe("invalid-item")
        expect(yield* failure(node.schedule(item("fraction", now + 0.5)))).toBe("invalid-item")
        expect(yield* failure(node.schedule(item("negative", -1)))).toBe("invalid-item")
        expect(yield* failure(node.schedule(item("big", now, "x".repeat(maxPayloadLength + 1))))).toBe("invalid-item")
        // Nothing refused was stored.
        expect(yield* node.cancel("far")).toBe(false)
        expect(yield* node.cancel("near")).toBe(true)
      }))

    it.scoped("two runners on one store never both deliver an item (100 items, random delays)", () =>
      Effect.gen(function*() {
        const seed = Date.now() % 1_000_000
        const next = random(seed)
        const sut = yield* c.make(2, defaults)
        const log: Array<Delivery> = []
        const pause = () => Effect.sleep(next(15))
        yield* recorder(sut, 0, log, pause)
        yield* recorder(sut, 1, log, pause)
        const now = yield* sut.now
        const ids = Array.from({ length: 100 }, (_, i) => `item-${i}`)
        // Half through one node and half through the other, as two gateways would.
        yield* Effect.forEach(ids, (id, i) => sut.nodes[i % 2].schedule(item(id, now + next(500))), { discard: true })
        yield* waitFor(sut, `100 deliveries (seed ${seed})`, () => log.length >= 100, 5_000)
        yield* sut.elapse(300)
        const counts = countById(log)
        expect([...counts.values()].filter((n) => n !== 1), `seed ${seed}`).toEqual([])
        expect(counts.size).toBe(100)
        expect(log.every((d) => d.attempt === 1), `seed ${seed}`).toBe(true)
      }))

    it.scoped("a runner that dies between claim and ack: another delivers the item after the lease", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(2, { ...defaults, leaseMs: lease })
        const claimed: Array<Delivery> = []
        const log: Array<Delivery> = []
        // Node 0 claims and then hangs in delivery until it is killed, so it never acks.
        const doomed = yield* recorder(sut, 0, claimed, () => Effect.never)
        yield* sut.nodes[1].schedule(item("d", yield* sut.now))
        yield* waitFor(sut, "the first claim", () => claimed.length === 1)
        const claimedAt = claimed[0].at
        yield* Fiber.interrupt(doomed)
        yield* recorder(sut, 1, log)
        yield* sut.elapse(lease / 2)
        expect(log).toEqual([])
        yield* waitFor(sut, "the delivery by the other node", () => log.length === 1)
        yield* sut.elapse(lease)
        expect(log.map(({ attempt, id, node }) => ({ id, node, attempt }))).toEqual([{ id: "d", node: 1, attempt: 2 }])
        // The first claim's `at` was read just after the claim; allow for that round trip.
        expect(log[0].at).toBeGreaterThanOrEqual(claimedAt + lease - 50)
      }))

    it.scoped("a delivery slower than the lease keeps its lease renewed: no other runner takes the item", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(2, { ...defaults, leaseMs: lease })
        const log: Array<Delivery> = []
        let finished = 0
        const slow = () => Effect.zipRight(Effect.sleep(lease * 3), Effect.sync(() => finished++))
        yield* recorder(sut, 0, log, slow)
        yield* recorder(sut, 1, log, slow)
        yield* sut.nodes[0].schedule(item("slow", yield* sut.now))
        yield* waitFor(sut, "the slow delivery to finish", () => finished === 1, 5_000)
        yield* sut.elapse(lease * 2)
        expect(log.map(({ attempt, id }) => ({ id, attempt }))).toEqual([{ id: "slow", attempt: 1 }])
      }))

    it.scoped("a delivery that fails is retried after the lease, and dropped after maxAttempts", () =>
      Effect.gen(function*() {
        const sut = yield* c.make(1, { ...defaults, leaseMs: lease, maxAttempts: 3 })
        const node = sut.nodes[0]
        const log: Array<Delivery> = []
        // "flaky" fails once; "broken" always fails.
        yield* recorder(
          sut,
          0,
          log,
          (delivered) => delivered.id === "broken" || delivered.attempt === 1 ? Effect.fail("boom") : Effect.void
        )
        const now = yield* sut.now
        yield* node.schedule(item("flaky", now))
        yield* node.schedule(item("broken", now))
        yield* waitFor(sut, "three attempts at the broken item", () => countById(log).get("broken") === 3, 5_000)
        // One more lease: the fourth claim drops it instead of delivering.
        yield* sut.elapse(lease * 2)
        const attempts = (id: string) => log.filter((d) => d.id === id).map((d) => d.attempt)
        expect(attempts("flaky")).toEqual([1, 2])
        expect(attempts("broken")).toEqual([1, 2, 3])
        expect(yield* node.cancel("broken")).toBe(false)
        expect(yield* node.cancel("flaky")).toBe(false)
      }))
  })
