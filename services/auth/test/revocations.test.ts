/**
 * The Revocations contract, run against the in-memory store and a real Redis
 * (REDIS_URL, default redis://127.0.0.1:6379; never a mock), each test on its
 * own random cluster name whose keys are deleted afterwards. Then what only
 * Redis has (key layout, TTLs) and what only memory has (sweeping).
 */
import { describe, expect, it } from "@effect/vitest"
import { Redis } from "@weft/cluster"
import { Duration, Effect, Either, Logger, LogLevel, TestClock, TestServices } from "effect"
import type { Scope } from "effect"
import * as Revocations from "../src/Revocations.ts"
import { redisFor, scan, uniqueCluster } from "./fixtures.ts"

interface UnderTest {
  readonly revocations: Revocations.RevocationsService
  /** The store behind `revocations`, to plant data in. */
  readonly store: Revocations.Encoded
  /** Ends `user`'s ban as time would: the TestClock past `ttlMs` for memory, a 1 ms PEXPIRE and real time for Redis. */
  readonly expire: (user: string, ttlMs: number) => Effect.Effect<void>
}

interface StoreCase {
  readonly name: string
  readonly make: Effect.Effect<UnderTest, never, Scope.Scope>
}

const cases: ReadonlyArray<StoreCase> = [
  {
    name: "memory",
    make: Effect.sync(() => {
      const store = Revocations.makeMemoryEncoded({ sweepEveryMs: 1000 })
      return { revocations: Revocations.makeEncoded(store), store, expire: (_, ttlMs) => TestClock.adjust(Duration.millis(ttlMs)) }
    })
  },
  {
    name: `Redis at ${process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"}`,
    make: Effect.gen(function*() {
      const cluster = uniqueCluster()
      const redis = yield* redisFor(cluster)
      const keys = Revocations.keys(cluster)
      const store = Revocations.makeRedisEncoded(redis, keys)
      const expire = (user: string) =>
        Effect.promise(() => redis.client.pexpire(keys.ban(user), 1)).pipe(
          Effect.zipRight(TestServices.provideLive(Effect.sleep(Duration.millis(20))))
        )
      return { revocations: Revocations.makeEncoded(store), store, expire }
    })
  }
]

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

for (const storeCase of cases) {
  describe(`Revocations on ${storeCase.name}`, () => {
    it.scoped("a ban is in force until it ends, with its reason and author", () =>
      Effect.gen(function*() {
        const { revocations } = yield* storeCase.make
        yield* TestClock.setTime(1_000_000)
        expect(yield* revocations.banned("alice")).toBeUndefined()
        const ban = yield* revocations.ban("alice", { ttlMs: 60_000, reason: "spam", by: "moderation" })
        expect(ban).toEqual(new Revocations.Ban({ user: "alice", until: 1_060_000, reason: "spam", by: "moderation" }))
        expect(yield* revocations.banned("alice")).toEqual(ban)
        // Only alice.
        expect(yield* revocations.banned("bob")).toBeUndefined()
        expect(yield* revocations.banned("alice2")).toBeUndefined()
      }))

    it.scoped("a ban ends by itself after its lifetime", () =>
      Effect.gen(function*() {
        const { revocations, expire } = yield* storeCase.make
        yield* revocations.ban("alice", { ttlMs: 5_000 })
        yield* revocations.ban("bob", { ttlMs: 600_000 })
        yield* expire("alice", 5_000)
        expect(yield* revocations.banned("alice")).toBeUndefined()
        expect(yield* revocations.unban("alice")).toBe(false)
        // Ending one ban is not ending the others.
        expect((yield* revocations.banned("bob"))?.user).toBe("bob")
      }))

    it.scoped("unban lifts a ban at once, and says whether there was one", () =>
      Effect.gen(function*() {
        const { revocations } = yield* storeCase.make
        yield* revocations.ban("alice", { ttlMs: 60_000 })
        expect(yield* revocations.unban("alice")).toBe(true)
        expect(yield* revocations.banned("alice")).toBeUndefined()
        expect(yield* revocations.unban("alice")).toBe(false)
      }))

    it.scoped("a new ban replaces the one in force: its end wins, longer or shorter", () =>
      Effect.gen(function*() {
        const { revocations } = yield* storeCase.make
        yield* revocations.ban("alice", { ttlMs: 60_000, reason: "first" })
        const shorter = yield* revocations.ban("alice", { ttlMs: 10_000, reason: "second" })
        expect(yield* revocations.banned("alice")).toEqual(shorter)
        const longer = yield* revocations.ban("alice", { ttlMs: 3_600_000 })
        expect(yield* revocations.banned("alice")).toEqual(longer)
      }))

    it.scoped("user ids are taken as they are: any characters, up to 200", () =>
      Effect.gen(function*() {
        const { revocations } = yield* storeCase.make
        for (const user of ["auth0|5f3a", "a b:c*{x}", "é", "u".repeat(200)]) {
          yield* revocations.ban(user, { ttlMs: 60_000 })
          expect((yield* revocations.banned(user))?.user, user).toBe(user)
        }
        expect(yield* revocations.banned("a b:c")).toBeUndefined()
      }))

    it.scoped("refuses a ban it cannot store: no lifetime, a fractional one, an invalid user id", () =>
      Effect.gen(function*() {
        const { revocations } = yield* storeCase.make
        for (const [user, ttlMs] of [["alice", 0], ["alice", -5], ["alice", 1.5], ["", 1000], ["u".repeat(201), 1000]] as const) {
          const result = yield* Effect.either(revocations.ban(user, { ttlMs }))
          expect(Either.isLeft(result) && result.left.reason, `${user.slice(0, 10)} ${ttlMs}`).toBe("invalid")
        }
        expect(yield* revocations.banned("alice")).toBeUndefined()
      }))

    it.scoped("a stored value that is not a ban is ignored (and logged), not a lock-out", () =>
      Effect.gen(function*() {
        const { revocations, store } = yield* storeCase.make
        yield* store.put("mallory", "{not json", 60_000)
        expect(yield* revocations.banned("mallory")).toBeUndefined()
      }).pipe(quiet))
  })
}

describe("Revocations on Redis only", () => {
  it.scopedLive("one key per ban, weft:{<cluster>}:ban:<user>, expiring when the ban ends", () =>
    Effect.gen(function*() {
      const cluster = uniqueCluster()
      const redis = yield* redisFor(cluster)
      const revocations = Revocations.makeEncoded(Revocations.makeRedisEncoded(redis, Revocations.keys(cluster)))
      yield* revocations.ban("alice", { ttlMs: 60_000 })
      const found = yield* scan(redis.client, `weft:{${cluster}}:*`)
      expect(found).toEqual([`weft:{${cluster}}:ban:alice`])
      const ttl = yield* Effect.promise(() => redis.client.pttl(`weft:{${cluster}}:ban:alice`))
      expect(ttl).toBeGreaterThan(50_000)
      expect(ttl).toBeLessThanOrEqual(60_000)
      yield* revocations.unban("alice")
      expect(yield* scan(redis.client, `weft:{${cluster}}:*`)).toEqual([])
    }))

  it.scopedLive("makeRedis refuses a cluster name it could not namespace keys with", () =>
    Effect.gen(function*() {
      const redis = yield* redisFor(uniqueCluster())
      const made = yield* Effect.either(Effect.provideService(Revocations.makeRedis({ cluster: "a b" }), Redis.Redis, redis))
      expect(Either.isLeft(made)).toBe(true)
      const good = yield* Effect.provideService(Revocations.makeRedis({ cluster: "ok.name_1" }), Redis.Redis, redis)
      expect(yield* good.banned("nobody")).toBeUndefined()
    }))
})

describe("Revocations in memory only", () => {
  it.scoped("bans that ended are swept as the store is used: memory stays bounded", () =>
    Effect.gen(function*() {
      const store = Revocations.makeMemoryEncoded({ sweepEveryMs: 1000 })
      const revocations = Revocations.makeEncoded(store)
      yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => `u${i}`), (user) => revocations.ban(user, { ttlMs: 500 }))
      expect(store.size()).toBe(100)
      yield* TestClock.adjust("2 seconds")
      expect(yield* revocations.banned("someone")).toBeUndefined()
      expect(store.size()).toBe(0)
    }))
})
