/**
 * The Idempotency contract, run against the in-memory store and a real Redis
 * (REDIS_URL, default redis://127.0.0.1:6379; never a mock), each test on its
 * own random cluster name whose keys are deleted afterwards. Then what only
 * Redis has (key layout, TTLs, an unreachable server) and what only memory
 * has (TestClock expiry, the bound on entries).
 */
import { Redis } from "@weft/cluster"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Either, Fiber, Logger, LogLevel, Schema, TestClock } from "effect"
import type { Scope } from "effect"
import { ApiError, Delivery } from "../src/Api.ts"
import * as Idempotency from "../src/Idempotency.ts"
import { redisFor, redisUrl, scan, uniqueCluster } from "./fixtures.ts"

interface StoreCase {
  readonly name: string
  readonly make: (options: Idempotency.Options) => Effect.Effect<Idempotency.IdempotencyService, never, Scope.Scope>
}

const cases: ReadonlyArray<StoreCase> = [
  { name: "memory", make: (options) => Effect.sync(() => Idempotency.makeMemory(options)) },
  {
    name: `Redis at ${process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"}`,
    make: (options) =>
      Effect.gen(function*() {
        const cluster = uniqueCluster()
        const redis = yield* redisFor(cluster)
        return Idempotency.makeEncoded(Idempotency.makeRedisEncoded(redis, Idempotency.keys(cluster)), options)
      })
  }
]

const delivery = (notificationId: string): Delivery => ({ status: "delivered", notificationId, devices: 1, duplicate: false })

/** A `run` that counts its runs and answers with the run number. */
const counter = () => {
  let runs = 0
  return {
    runs: () => runs,
    run: Effect.sync(() => delivery(`n${++runs}`))
  }
}

const quiet = Logger.minimumLogLevel(LogLevel.None)

describe.each(cases)("Idempotency on $name", ({ make }) => {
  it.scopedLive("runs once per key and answers a repeat with the first value, marked duplicate", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      const { run, runs } = counter()
      const first = yield* idem.once("orders", "k1", Delivery, run)
      const second = yield* idem.once("orders", "k1", Delivery, run)
      expect(first).toEqual({ value: delivery("n1"), duplicate: false })
      expect(second).toEqual({ value: delivery("n1"), duplicate: true })
      expect(runs()).toBe(1)
      expect(yield* idem.once("orders", "k2", Delivery, run)).toEqual({ value: delivery("n2"), duplicate: false })
    }))

  it.scopedLive("runs once when many calls with one key arrive together; all get the first value", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      let runs = 0
      const slow = Effect.zipRight(Effect.sleep("100 millis"), Effect.sync(() => delivery(`n${++runs}`)))
      const answers = yield* Effect.all(Array.from({ length: 20 }, () => idem.once("orders", "same", Delivery, slow)), {
        concurrency: "unbounded"
      })
      expect(runs).toBe(1)
      expect(answers.every((answer) => answer.value.notificationId === "n1")).toBe(true)
      expect(answers.filter((answer) => !answer.duplicate)).toHaveLength(1)
    }))

  it.scopedLive("keeps callers apart: the same key from two services runs twice", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      const { run, runs } = counter()
      expect((yield* idem.once("orders", "k", Delivery, run)).duplicate).toBe(false)
      expect((yield* idem.once("billing", "k", Delivery, run)).duplicate).toBe(false)
      // No separator games: ("ab", "c") and ("a", "bc") are different pairs.
      expect((yield* idem.once("ab", "c", Delivery, run)).duplicate).toBe(false)
      expect((yield* idem.once("a", "bc", Delivery, run)).duplicate).toBe(false)
      expect(runs()).toBe(4)
    }))

  it.scopedLive("does not keep a failure: the retry runs again", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      const refused = yield* Effect.either(
        idem.once("orders", "k", Delivery, Effect.fail(new ApiError({ reason: "unavailable", message: "entity down" })))
      )
      expect(refused).toEqual(Either.left(new ApiError({ reason: "unavailable", message: "entity down" })))
      const { run, runs } = counter()
      expect(yield* idem.once("orders", "k", Delivery, run)).toEqual({ value: delivery("n1"), duplicate: false })
      expect(runs()).toBe(1)
    }))

  it.scopedLive("does not keep an interrupted call: the retry runs again", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(idem.once("orders", "k", Delivery, Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const { run, runs } = counter()
      expect((yield* idem.once("orders", "k", Delivery, run)).duplicate).toBe(false)
      expect(runs()).toBe(1)
    }))

  it.scopedLive("lets a waiting call run itself when the first fails", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      const started = yield* Deferred.make<void>()
      const failing = Effect.zipRight(
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.sleep("100 millis")),
        Effect.fail(new ApiError({ reason: "unavailable", message: "first failed" }))
      )
      const first = yield* Effect.fork(Effect.either(idem.once("orders", "k", Delivery, failing)))
      yield* Deferred.await(started)
      const { run, runs } = counter()
      const second = yield* idem.once("orders", "k", Delivery, run)
      expect(Either.isLeft(yield* Fiber.join(first))).toBe(true)
      expect(second).toEqual({ value: delivery("n1"), duplicate: false })
      expect(runs()).toBe(1)
    }))

  it.scopedLive("fails `unavailable` when the first call outlasts maxWait, without running", () =>
    Effect.gen(function*() {
      const idem = yield* make({ maxWait: "150 millis" })
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        idem.once("orders", "k", Delivery, Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Deferred.await(release), delivery("first"))))
      )
      yield* Deferred.await(started)
      const { run, runs } = counter()
      const waited = yield* Effect.either(idem.once("orders", "k", Delivery, run))
      expect(waited).toEqual(
        Either.left(
          new ApiError({
            reason: "unavailable",
            message: "a call with this idempotency key is still in progress; retry later with the same key"
          })
        )
      )
      expect(runs()).toBe(0)
      yield* Deferred.succeed(release, undefined)
      expect((yield* Fiber.join(first)).value.notificationId).toBe("first")
      expect((yield* idem.once("orders", "k", Delivery, run)).duplicate).toBe(true)
    }))

  it.scopedLive("stores what the schema encodes and gives back what it decodes", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      const Answer = Schema.Struct({ at: Schema.Date, note: Schema.optional(Schema.String) })
      const at = new Date("2026-11-25T10:00:00.000Z")
      yield* idem.once("orders", "k", Answer, Effect.succeed({ at }))
      const repeat = yield* idem.once("orders", "k", Answer, Effect.succeed({ at: new Date(0) }))
      expect(repeat.duplicate).toBe(true)
      expect(repeat.value.at).toBeInstanceOf(Date)
      expect(repeat.value.at.toISOString()).toBe(at.toISOString())
    }))

  it.scopedLive("returns a value its schema cannot encode, without keeping it", () =>
    Effect.gen(function*() {
      const idem = yield* make({})
      const Answer = Schema.Struct({ n: Schema.Number.pipe(Schema.int()) })
      const first = yield* idem.once("orders", "k", Answer, Effect.succeed({ n: 1.5 })).pipe(Effect.provide(quiet))
      expect(first).toEqual({ value: { n: 1.5 }, duplicate: false })
      const second = yield* idem.once("orders", "k", Answer, Effect.succeed({ n: 2 }))
      expect(second).toEqual({ value: { n: 2 }, duplicate: false })
    }))
})

describe("Idempotency on Redis only", () => {
  it.scopedLive("keeps a slot at weft:{<cluster>}:idem:<sha256>, pending for pendingTtl, then the answer for ttl", () =>
    Effect.gen(function*() {
      const cluster = uniqueCluster()
      const redis = yield* redisFor(cluster)
      const keys = Idempotency.keys(cluster)
      const idem = Idempotency.makeEncoded(Idempotency.makeRedisEncoded(redis, keys), { pendingTtl: "20 seconds" })
      const id = yield* Idempotency.slotId("orders", "k1")
      expect(id).toMatch(/^[0-9a-f]{64}$/)
      const key = keys.slot(id)
      expect(key).toBe(`weft:{${cluster}}:idem:${id}`)

      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        idem.once("orders", "k1", Delivery, Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Deferred.await(release), delivery("n1"))))
      )
      yield* Deferred.await(started)
      const pending = yield* redis.use((client) => Promise.all([client.get(key), client.pttl(key)]))
      expect(pending[0]).toMatch(/^p:[0-9a-f]{32}$/)
      expect(pending[1]).toBeGreaterThan(15_000)
      expect(pending[1]).toBeLessThanOrEqual(20_000)

      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(first)
      const [value, ttl] = yield* redis.use((client) => Promise.all([client.get(key), client.pttl(key)]))
      expect(value).toBe(`d:${JSON.stringify(delivery("n1"))}`)
      const day = Duration.toMillis("24 hours")
      expect(ttl).toBeGreaterThan(day - 60_000)
      expect(ttl).toBeLessThanOrEqual(day)
      expect(yield* scan(redis, keys.pattern)).toEqual([key])
    }))

  it.scopedLive("frees the key when a slot's answer expires", () =>
    Effect.gen(function*() {
      const cluster = uniqueCluster()
      const redis = yield* redisFor(cluster)
      const idem = Idempotency.makeEncoded(Idempotency.makeRedisEncoded(redis, Idempotency.keys(cluster)), { ttl: "200 millis" })
      const { run, runs } = counter()
      yield* idem.once("orders", "k", Delivery, run)
      expect((yield* idem.once("orders", "k", Delivery, run)).duplicate).toBe(true)
      yield* Effect.sleep("300 millis")
      expect((yield* idem.once("orders", "k", Delivery, run)).duplicate).toBe(false)
      expect(runs()).toBe(2)
    }))

  it.scopedLive("fails `unavailable` without running when Redis cannot be reached", () =>
    Effect.gen(function*() {
      const redis = yield* Redis.make({ url: "redis://127.0.0.1:1", connectTimeoutMs: 200, commandTimeoutMs: 200 })
      const idem = Idempotency.makeEncoded(Idempotency.makeRedisEncoded(redis, Idempotency.keys(uniqueCluster())))
      const { run, runs } = counter()
      const failed = yield* Effect.either(idem.once("orders", "k", Delivery, run))
      expect(failed).toEqual(
        Either.left(new ApiError({ reason: "unavailable", message: "the idempotency store is unavailable; retry with the same key" }))
      )
      expect(runs()).toBe(0)
    }).pipe(Effect.provide(quiet)))

  it.scopedLive("refuses a cluster name that does not fit a key", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Idempotency.makeRedis({ cluster: "has space" }))
      expect(error._tag).toBe("IllegalArgumentException")
    }).pipe(Effect.provide(Redis.layer({ url: redisUrl }))))
})

describe("Idempotency in memory only", () => {
  it.effect("keeps an answer for ttl by the clock (24 h by default)", () =>
    Effect.gen(function*() {
      const idem = Idempotency.makeMemory()
      const { run, runs } = counter()
      yield* idem.once("orders", "k", Delivery, run)
      yield* TestClock.adjust("23 hours")
      expect((yield* idem.once("orders", "k", Delivery, run)).duplicate).toBe(true)
      yield* TestClock.adjust("1 hour")
      expect((yield* idem.once("orders", "k", Delivery, run)).duplicate).toBe(false)
      expect(runs()).toBe(2)
    }))

  it.effect("holds at most maxEntries slots, dropping the oldest", () =>
    Effect.gen(function*() {
      const store = Idempotency.makeMemoryEncoded({ maxEntries: 3 })
      const idem = Idempotency.makeEncoded(store)
      const { run } = counter()
      for (const key of ["a", "b", "c", "d", "e"]) yield* idem.once("orders", key, Delivery, run)
      expect(store.size()).toBe(3)
      expect((yield* idem.once("orders", "e", Delivery, run)).duplicate).toBe(true)
      expect((yield* idem.once("orders", "a", Delivery, run)).duplicate).toBe(false)
    }))
})
