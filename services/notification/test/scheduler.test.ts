/**
 * The scheduler contract against the Redis adapter (a real Redis, never a
 * mock) and its in-memory twin; then what only Redis has (key names, TTLs,
 * surviving a node restart, garbled data), and what TestClock can show on the
 * memory twin: scheduled local times delivered at the right UTC instant
 * across daylight-saving changes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Redis } from "@weft/cluster"
import { Effect, Either, Fiber, Schema, TestClock, TestServices } from "effect"
import type IORedis from "ioredis"
import { deliveryTime, QuietHours, TimeZoneId } from "../src/LocalTime.ts"
import * as MemoryScheduler from "../src/MemoryScheduler.ts"
import * as RedisScheduler from "../src/RedisScheduler.ts"
import type { DueItem, SchedulerOptions } from "../src/Scheduler.ts"
import { schedulerContract } from "./scheduler.contract.ts"
import type { SchedulerCase } from "./scheduler.contract.ts"

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

const uniqueClusterName = () => `test-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`

/** Every key matching `pattern`, with a bounded number of SCAN round trips. */
const scan = (client: IORedis, pattern: string) =>
  Effect.tryPromise(async () => {
    const found = new Set<string>()
    let cursor = "0"
    for (let i = 0; i < 10_000; i++) {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      for (const key of keys) found.add(key)
      cursor = next
      if (cursor === "0") return [...found].sort()
    }
    throw new Error(`SCAN ${pattern} did not finish`)
  }).pipe(Effect.orDie)

const redisTime = (redis: Redis.RedisService) =>
  redis.use((client) => client.time()).pipe(
    Effect.map(([seconds, micros]) => Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)),
    Effect.orDie
  )

/** A connection for the test itself (clock, inspection, clean-up), and the cluster's keys gone with the scope. */
const redisAdmin = (cluster: string) =>
  Effect.gen(function*() {
    const admin = yield* Redis.make({ url, name: "test-admin" })
    const keys = RedisScheduler.keys(cluster)
    yield* Effect.addFinalizer(() =>
      scan(admin.client, keys.pattern).pipe(
        Effect.flatMap((found) => (found.length === 0 ? Effect.void : admin.use((client) => client.del(...found)))),
        Effect.ignore
      )
    )
    return { admin, keys }
  })

/** A "node": its own Redis connection and scheduler, closed with the scope. */
const redisNode = (cluster: string, options: SchedulerOptions, name: string) =>
  Effect.gen(function*() {
    const redis = yield* Redis.make({ url, name })
    return yield* RedisScheduler.make({ cluster, pollIntervalMs: 20, ...options }).pipe(
      Effect.provideService(Redis.Redis, redis),
      Effect.orDie
    )
  })

// Redis keeps time with its own clock, so time must really pass, and runners must sleep on the
// live clock; the memory twin reads Effect's Clock, which is the TestClock inside `it.scoped`.
const cases: ReadonlyArray<SchedulerCase> = [
  {
    name: `RedisScheduler on ${url}`,
    make: (nodes, options) =>
      Effect.gen(function*() {
        const cluster = uniqueClusterName()
        const { admin } = yield* redisAdmin(cluster)
        const services = []
        for (let n = 0; n < nodes; n++) services.push(yield* redisNode(cluster, options, `test-node-${n}`))
        return {
          nodes: services,
          now: redisTime(admin),
          elapse: (ms) => TestServices.provideLive(Effect.sleep(ms)),
          start: (node, deliver) => Effect.forkScoped(TestServices.provideLive(node.run(deliver)))
        }
      })
  },
  {
    name: "MemoryScheduler (TestClock)",
    make: (nodes, options) =>
      Effect.gen(function*() {
        // TestClock starts at 0; a real date keeps "an hour ago" a valid due time.
        yield* TestClock.setTime(Date.parse("2026-01-01T00:00:00Z"))
        // One store; "nodes" are runners sharing it, which is all a process-local store can have.
        const scheduler = yield* Effect.orDie(MemoryScheduler.make(options))
        return {
          nodes: Array.from({ length: nodes }, () => scheduler),
          now: TestClock.currentTimeMillis,
          elapse: (ms) => TestClock.adjust(ms),
          start: (node, deliver) => Effect.forkScoped(node.run(deliver))
        }
      })
  }
]

for (const c of cases) schedulerContract(c)

// ---------------------------------------------------------------------------
// Redis only
// ---------------------------------------------------------------------------

const sleepLive = (ms: number) => TestServices.provideLive(Effect.sleep(ms))

/** Waits in real time until `done()`, in bounded steps. */
const waitLive = (what: string, done: () => boolean, timeoutMs = 3_000) =>
  Effect.gen(function*() {
    for (let waited = 0; waited <= timeoutMs && !done(); waited += 20) yield* sleepLive(20)
    if (!done()) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
  })

describe(`RedisScheduler only, on ${url}`, () => {
  it.scoped("uses weft:{cluster}:schedule keys, each with a TTL past the horizon, and leaves none once done", () =>
    Effect.gen(function*() {
      const cluster = uniqueClusterName()
      const { admin, keys } = yield* redisAdmin(cluster)
      const horizonMs = 3_600_000
      const node = yield* redisNode(cluster, { horizonMs, leaseMs: 5_000 }, "test-keys")
      expect(keys.schedule).toBe(`weft:{${cluster}}:schedule`)
      const now = yield* redisTime(admin)
      yield* node.schedule({ id: "later", due: now + 60_000, payload: "p" })
      yield* node.schedule({ id: "now", due: now, payload: "q" })
      const pttl = (key: string) => admin.use((client) => client.pttl(key)).pipe(Effect.orDie)
      // horizon + 1 day, less what elapsed since the write.
      const ttlMs = horizonMs + 86_400_000
      for (const key of [keys.schedule, keys.items]) {
        expect(yield* pttl(key)).toBeGreaterThan(ttlMs - 5_000)
        expect(yield* pttl(key)).toBeLessThanOrEqual(ttlMs)
      }

      // While "now" is being delivered: claimed, leased, owned, counted. Read inside the delivery,
      // checked outside it (a failed expectation in `deliver` would only count as a failed delivery).
      const delivered: Array<string> = []
      let inFlight: ReadonlyArray<string> = []
      let inFlightTtls: ReadonlyArray<number> = []
      let lease = 0
      const runner = yield* Effect.forkScoped(TestServices.provideLive(node.run((item: DueItem) =>
        Effect.gen(function*() {
          inFlight = yield* scan(admin.client, keys.pattern)
          inFlightTtls = yield* Effect.forEach([keys.inFlight, keys.attempts, keys.owners], pttl)
          lease = Number(yield* admin.use((client) => client.zscore(keys.inFlight, item.id)).pipe(Effect.orDie))
          delivered.push(item.id)
        })
      )))
      yield* waitLive("the delivery", () => delivered.length === 1)
      yield* sleepLive(100)
      expect(inFlight).toEqual([keys.schedule, keys.attempts, keys.inFlight, keys.items, keys.owners].sort())
      for (const ttl of inFlightTtls) expect(ttl).toBeGreaterThan(ttlMs - 5_000)
      expect(lease).toBeGreaterThan(now + 4_000)
      // Acked: only the pending item is left, in the schedule and the items hash.
      expect(yield* scan(admin.client, keys.pattern)).toEqual([keys.schedule, keys.items].sort())
      yield* node.cancel("later")
      expect(yield* scan(admin.client, keys.pattern)).toEqual([])
      yield* Fiber.interrupt(runner)
    }))

  it.scoped("items survive the node that accepted them, even mid-delivery: a node started later delivers them", () =>
    Effect.gen(function*() {
      const cluster = uniqueClusterName()
      const { admin } = yield* redisAdmin(cluster)
      const now = yield* redisTime(admin)
      const options = { leaseMs: 400 }
      // The first node accepts two items, starts delivering the one due now, and goes away in the
      // middle of it (runner interrupted, connection closed) before the other is due.
      const claimedByFirst: Array<string> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const first = yield* redisNode(cluster, options, "test-first")
        yield* first.schedule({ id: "later", due: now + 600, payload: "hi" })
        yield* first.schedule({ id: "now", due: now, payload: "interrupted" })
        yield* Effect.forkScoped(TestServices.provideLive(first.run((item) =>
          Effect.zipRight(Effect.sync(() => claimedByFirst.push(item.id)), Effect.never)
        )))
        yield* waitLive("the first node's claim", () => claimedByFirst.length === 1)
      }))
      expect(claimedByFirst).toEqual(["now"])

      const delivered: Array<{ readonly id: string; readonly attempt: number; readonly at: number }> = []
      const second = yield* redisNode(cluster, options, "test-second")
      yield* Effect.forkScoped(TestServices.provideLive(second.run((item) =>
        Effect.map(redisTime(admin), (at) => {
          delivered.push({ id: item.id, attempt: item.attempt, at })
        })
      )))
      yield* waitLive("both deliveries", () => delivered.length === 2)
      yield* sleepLive(200)
      const byId = new Map(delivered.map((d) => [d.id, d]))
      expect(delivered).toHaveLength(2)
      expect(byId.get("now")?.attempt).toBe(2)
      expect(byId.get("now")?.at).toBeGreaterThanOrEqual(now + 400)
      expect(byId.get("later")?.attempt).toBe(1)
      expect(byId.get("later")?.at).toBeGreaterThanOrEqual(now + 600)
    }))

  it.scoped("an item whose stored data is garbled is dropped, and the rest are delivered", () =>
    Effect.gen(function*() {
      const cluster = uniqueClusterName()
      const { admin, keys } = yield* redisAdmin(cluster)
      const node = yield* redisNode(cluster, {}, "test-garbled")
      const now = yield* redisTime(admin)
      yield* node.schedule({ id: "good", due: now, payload: "ok" })
      yield* admin.use((client) =>
        client.multi().zadd(keys.schedule, now, "garbled").hset(keys.items, "garbled", "{not json").zadd(
          keys.schedule,
          now,
          "missing"
        ).exec()
      ).pipe(Effect.orDie)
      const delivered: Array<string> = []
      yield* Effect.forkScoped(TestServices.provideLive(node.run((item) => Effect.sync(() => delivered.push(item.id)))))
      yield* waitLive("the good delivery", () => delivered.length === 1)
      yield* sleepLive(100)
      expect(delivered).toEqual(["good"])
      expect(yield* scan(admin.client, keys.pattern)).toEqual([])
    }))

  it.scoped("refuses an invalid cluster name", () =>
    Effect.gen(function*() {
      const redis = yield* Redis.make({ url, name: "test-invalid" })
      const result = yield* Effect.either(
        RedisScheduler.make({ cluster: "no spaces allowed" }).pipe(Effect.provideService(Redis.Redis, redis))
      )
      expect(Either.isLeft(result)).toBe(true)
    }))
})

// ---------------------------------------------------------------------------
// Memory with TestClock: local delivery times across daylight-saving changes
// ---------------------------------------------------------------------------

const zone = Schema.decodeSync(TimeZoneId)
const quiet = Schema.decodeSync(QuietHours)

/** A memory scheduler with a runner that records the TestClock time of every delivery. */
const memoryRun = Effect.gen(function*() {
  const scheduler = yield* Effect.orDie(MemoryScheduler.make())
  const delivered: Array<{ readonly id: string; readonly at: number }> = []
  yield* Effect.forkScoped(scheduler.run((item) =>
    Effect.map(TestClock.currentTimeMillis, (at) => {
      delivered.push({ id: item.id, at })
    })
  ))
  return { scheduler, delivered }
})

const expectRight = <A, E>(result: Either.Either<A, E>): A => {
  if (Either.isLeft(result)) throw new Error(`expected a value, got ${String(result.left)}`)
  return result.right
}

/** Moves the TestClock to `iso` (forward only). */
const advanceTo = (iso: string): Effect.Effect<void> =>
  Effect.flatMap(TestClock.currentTimeMillis, (now) => TestClock.adjust(Date.parse(iso) - now))

const iso = (ms: number) => new Date(ms).toISOString()

describe("MemoryScheduler across daylight-saving changes (TestClock)", () => {
  it.scoped("09:00 Europe/Paris on the day clocks go forward, scheduled the day before, comes at 07:00Z", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-28T10:00:00Z"))
      const { delivered, scheduler } = yield* memoryRun
      const now = yield* TestClock.currentTimeMillis
      const due = expectRight(deliveryTime(now, {
        deliverAt: { _tag: "Local", at: "2026-03-29T09:00" },
        respectQuietHours: false,
        timeZone: zone("Europe/Paris"),
        quietHours: null
      }))
      // CEST (+02:00) by then, although it is CET (+01:00) when scheduled: not 08:00Z.
      expect(iso(due)).toBe("2026-03-29T07:00:00.000Z")
      yield* scheduler.schedule({ id: "paris", due, payload: "good morning" })
      // Across the change (01:00Z) to a millisecond before the due time.
      yield* advanceTo("2026-03-29T06:59:59.999Z")
      expect(delivered).toEqual([])
      yield* TestClock.adjust(1)
      expect(delivered.map((d) => ({ id: d.id, at: iso(d.at) }))).toEqual([
        { id: "paris", at: "2026-03-29T07:00:00.000Z" }
      ])
    }))

  it.scoped("quiet hours 22:00-07:00 in New York on the night clocks go back: held until 07:00 EST (12:00Z)", () =>
    Effect.gen(function*() {
      // 23:30 EDT on 2026-10-31.
      yield* TestClock.setTime(Date.parse("2026-11-01T03:30:00Z"))
      const { delivered, scheduler } = yield* memoryRun
      const now = yield* TestClock.currentTimeMillis
      const due = expectRight(deliveryTime(now, {
        respectQuietHours: true,
        timeZone: zone("America/New_York"),
        quietHours: quiet({ start: "22:00", end: "07:00" })
      }))
      // Ten hours of quiet that night: a fixed EDT offset would say 11:00Z.
      expect(iso(due)).toBe("2026-11-01T12:00:00.000Z")
      yield* scheduler.schedule({ id: "ny", due, payload: "digest" })
      yield* advanceTo("2026-11-01T11:59:59.999Z")
      expect(delivered).toEqual([])
      yield* TestClock.adjust(1)
      expect(delivered.map((d) => ({ id: d.id, at: iso(d.at) }))).toEqual([{ id: "ny", at: "2026-11-01T12:00:00.000Z" }])
    }))

  it.scoped("local times on both sides of the Paris spring change, scheduled together, come in order", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-28T12:00:00Z"))
      const { delivered, scheduler } = yield* memoryRun
      const now = yield* TestClock.currentTimeMillis
      const local = (at: string) =>
        expectRight(deliveryTime(now, {
          deliverAt: { _tag: "Local", at },
          respectQuietHours: false,
          timeZone: zone("Europe/Paris"),
          quietHours: null
        }))
      // 02:30 does not exist that night: it means 03:00 CEST, the end of the gap.
      const times = { before: "2026-03-29T01:30", gap: "2026-03-29T02:30", after: "2026-03-29T03:30" }
      for (const [id, at] of Object.entries(times)) yield* scheduler.schedule({ id, due: local(at), payload: at })
      yield* advanceTo("2026-03-29T12:00:00Z")
      expect(delivered.map((d) => ({ id: d.id, at: iso(d.at) }))).toEqual([
        { id: "before", at: "2026-03-29T00:30:00.000Z" },
        { id: "gap", at: "2026-03-29T01:00:00.000Z" },
        { id: "after", at: "2026-03-29T01:30:00.000Z" }
      ])
    }))
})
