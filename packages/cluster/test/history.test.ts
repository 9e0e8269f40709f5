/**
 * The history contract against RedisHistory (a real Redis, never a mock) and
 * its in-memory twin; then what only one of them has: Redis key names, TTLs,
 * sharing between nodes and outages; the memory twin's bound on rooms held.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Redis from "../src/Redis.ts"
import { Clock, Effect, Either, Logger, LogLevel, TestClock, TestServices } from "effect"
import type IORedis from "ioredis"
import type { HistoryError, HistoryLimits, HistoryService } from "../src/History.ts"
import * as MemoryHistory from "../src/MemoryHistory.ts"
import * as RedisHistory from "../src/RedisHistory.ts"
import { type HistoryCase, historyContract } from "./history.contract.ts"

const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

const uniqueClusterName = () => `test-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`

/** Every key matching `pattern`, with a bounded number of SCAN round trips. */
const scan = (client: IORedis, pattern: string) =>
  Effect.tryPromise(async () => {
    const found = new Set<string>()
    let cursor = "0"
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      for (const key of keys) found.add(key)
      cursor = next
      if (cursor === "0") return [...found].sort()
    }
    throw new Error(`SCAN ${pattern} did not finish`)
  }).pipe(Effect.orDie)

/** A Redis connection that deletes every key of `cluster` when the scope closes. */
const connection = (cluster: string) =>
  Effect.gen(function*() {
    const redis = yield* Redis.make({ url })
    yield* Effect.addFinalizer(() =>
      scan(redis.client, `${Redis.keyPrefix(cluster)}*`).pipe(
        Effect.flatMap((found) => (found.length === 0 ? Effect.void : redis.use((client) => client.del(...found)))),
        Effect.ignore
      )
    )
    return redis
  })

/** A RedisHistory on its own connection and its own cluster name, whose keys go with the scope. */
const redisFixture = (limits: HistoryLimits, cluster = uniqueClusterName()) =>
  Effect.gen(function*() {
    const redis = yield* connection(cluster)
    const history = yield* RedisHistory.make({ cluster, ...limits }).pipe(
      Effect.provideService(Redis.Redis, redis),
      Effect.orDie
    )
    return { history, client: redis.client, cluster, keys: RedisHistory.keys(cluster) }
  })

// Redis keeps time with its own clock (TTLs, TIME), so time must really pass and `at` must be
// wall-clock time; the memory twin reads Effect's Clock, which is the TestClock inside `it.scoped`.
const wallClock = TestServices.provideLive(Clock.currentTimeMillis)
const realTime = (ms: number) => TestServices.provideLive(Effect.sleep(ms))

const cases: ReadonlyArray<HistoryCase> = [
  {
    name: `RedisHistory on ${url}`,
    propertyRuns: 40,
    make: (limits) =>
      Effect.map(redisFixture(limits), ({ history }) => ({ history, now: wallClock, elapse: realTime }))
  },
  {
    name: "MemoryHistory",
    propertyRuns: 100,
    make: (limits) =>
      Effect.map(Effect.orDie(MemoryHistory.make(limits)), (history) => ({
        history,
        now: Clock.currentTimeMillis,
        elapse: (ms: number) => TestClock.adjust(ms)
      }))
  }
]

for (const historyCase of cases) historyContract(historyCase)

const reason = <A>(effect: Effect.Effect<A, HistoryError>) =>
  Effect.map(Effect.either(effect), (result) => (Either.isLeft(result) ? result.left.reason : "succeeded"))

// ---------------------------------------------------------------------------
// Redis only
// ---------------------------------------------------------------------------

const limits: HistoryLimits = { maxLength: 5, maxAgeMs: 60_000 }
const rooms = ["lobby", "team:a/b|c+d=e@f.g_h-i"]

describe("RedisHistory keys", () => {
  /** Opens and writes both rooms, with trimming, so that every kind of key exists. */
  const workload = (history: HistoryService) =>
    Effect.forEach(rooms, (room) =>
      Effect.gen(function*() {
        const { epoch } = yield* history.open(room)
        for (let offset = 1; offset <= 7; offset++) yield* history.append(room, epoch, offset, Date.now(), { offset })
      }))

  it.scoped("a room is a stream of <offset>-0 entries and a meta hash, as documented", () =>
    Effect.gen(function*() {
      const { history, client, cluster, keys } = yield* redisFixture(limits)
      yield* workload(history)
      const room = rooms[1]
      expect(yield* scan(client, keys.pattern)).toEqual(rooms.flatMap((r) => [keys.events(r), keys.meta(r)]).sort())
      expect(keys.events(room)).toBe(`weft:{${cluster}}:room:${room}:events`)
      const meta = yield* Effect.promise(() => client.hgetall(keys.meta(room)))
      expect(Object.keys(meta).sort()).toEqual(["epoch", "last"])
      expect(meta["last"]).toBe("7")
      expect(meta["epoch"]).toBe((yield* history.open(room)).epoch)
      const entries = yield* Effect.promise(() => client.xrange(keys.events(room), "-", "+"))
      expect(entries.map(([id]) => id)).toEqual(["3-0", "4-0", "5-0", "6-0", "7-0"])
      const [, fields] = entries[0]
      expect(fields[0]).toBe("at")
      expect(fields.slice(2)).toEqual(["event", JSON.stringify({ offset: 3 })])
    }))

  it.scoped("every key it writes has a TTL of at most maxAgeMs", () =>
    Effect.gen(function*() {
      const { history, client, keys } = yield* redisFixture(limits)
      yield* workload(history)
      // a history only opened has its meta key alone, with a TTL too
      yield* history.open("opened-only")
      const found = yield* scan(client, keys.pattern)
      expect(found).toContain(keys.meta("opened-only"))
      expect(found).not.toContain(keys.events("opened-only"))
      for (const key of found) {
        const ttl = yield* Effect.promise(() => client.pttl(key))
        expect(ttl, key).toBeGreaterThan(0)
        expect(ttl, key).toBeLessThanOrEqual(limits.maxAgeMs)
      }
    }))

  it.scoped("nothing is written outside weft:{cluster}:", () =>
    Effect.gen(function*() {
      const { history, client, cluster, keys } = yield* redisFixture(limits)
      yield* workload(history)
      const anywhere = yield* scan(client, `*${cluster}*`)
      expect(anywhere.length).toBeGreaterThan(0)
      for (const key of anywhere) expect(key.startsWith(`weft:{${cluster}}:`), key).toBe(true)
      expect(anywhere).toEqual(yield* scan(client, keys.pattern))
    }))

  it.scoped("two nodes (two connections, one cluster) share one history and one writer wins", () =>
    Effect.gen(function*() {
      const cluster = uniqueClusterName()
      const a = yield* redisFixture(limits, cluster)
      const b = yield* redisFixture(limits, cluster)
      const room = "shared"
      const head = yield* a.history.open(room)
      yield* a.history.append(room, head.epoch, 1, Date.now(), "from a")
      yield* a.history.append(room, head.epoch, 2, Date.now(), "from a")
      expect(yield* b.history.open(room)).toEqual({ epoch: head.epoch, lastOffset: 2, firstOffset: 1 })
      expect(yield* b.history.readAfter(room, 0, 10)).toEqual(yield* a.history.readAfter(room, 0, 10))
      // b took over (a new activation); a, stale, tries the same offset and is refused
      yield* b.history.append(room, head.epoch, 3, Date.now(), "from b")
      expect(yield* reason(a.history.append(room, head.epoch, 3, Date.now(), "from a"))).toBe("conflict")
      expect((yield* a.history.readAfter(room, 0, 10)).map((e) => e.event)).toEqual(["from a", "from a", "from b"])
      // racing appends at one offset: exactly one wins
      const results = yield* Effect.all(
        [a, b].map((node, i) => reason(node.history.append(room, head.epoch, 4, Date.now(), `racer ${i}`))),
        { concurrency: "unbounded" }
      )
      expect([...results].sort()).toEqual(["conflict", "succeeded"])
      expect((yield* b.history.open(room)).lastOffset).toBe(4)
    }))

  it.scoped("a stream left without its meta is not resumed: open starts a new, empty epoch", () =>
    Effect.gen(function*() {
      const { history, client, keys } = yield* redisFixture(limits)
      const room = "orphan"
      const first = yield* history.open(room)
      yield* history.append(room, first.epoch, 1, Date.now(), "old")
      yield* Effect.promise(() => client.del(keys.meta(room)))
      const second = yield* history.open(room)
      expect(second.epoch).not.toBe(first.epoch)
      expect(second).toEqual({ epoch: second.epoch, lastOffset: 0, firstOffset: 1 })
      expect(yield* history.readAfter(room, 0, 10)).toEqual([])
      yield* history.append(room, second.epoch, 1, Date.now(), "new")
      expect((yield* history.readAfter(room, 0, 10)).map((e) => e.event)).toEqual(["new"])
    }))

  it.scoped("large offsets keep every digit in stream ids (Lua never formats them)", () =>
    Effect.gen(function*() {
      const { history, client, keys } = yield* redisFixture(limits)
      const room = "long-lived"
      const { epoch } = yield* history.open(room)
      const big = 123_456_789_012_345
      yield* Effect.promise(() => client.hset(keys.meta(room), "last", String(big)))
      yield* history.append(room, epoch, big + 1, Date.now(), "next")
      expect(yield* history.open(room)).toEqual({ epoch, lastOffset: big + 1, firstOffset: big + 1 })
      expect((yield* history.readAfter(room, big, 10)).map((e) => e.offset)).toEqual([big + 1])
      expect((yield* history.readBefore(room, big + 2, 10)).map((e) => e.offset)).toEqual([big + 1])
    }))

  it.scoped("what Redis holds that is not history is reported as invalid-data", () =>
    Effect.gen(function*() {
      const { history, client, keys } = yield* redisFixture(limits)
      const room = "tampered"
      const { epoch } = yield* history.open(room)
      yield* history.append(room, epoch, 1, Date.now(), "ok")
      yield* Effect.promise(() => client.xadd(keys.events(room), "2-0", "at", "yesterday", "event", "{not json"))
      expect(yield* reason(history.readAfter(room, 0, 10))).toBe("invalid-data")
      // the stream is ahead of the meta: the append is refused without writing
      expect(yield* reason(history.append(room, epoch, 2, Date.now(), "x"))).toBe("invalid-data")
      yield* Effect.promise(() => client.hset(keys.meta(room), "last", "many"))
      expect(yield* reason(history.open(room))).toBe("invalid-data")
      expect(yield* reason(history.append(room, epoch, 2, Date.now(), "x"))).toBe("invalid-data")
    }))

  it.scoped("an unreachable Redis fails every call with unavailable instead of hanging", () =>
    Effect.gen(function*() {
      // port 1 on loopback refuses connections: a real client with nothing to talk to
      const redis = yield* Redis.make({ url: "redis://127.0.0.1:1", commandTimeoutMs: 200, connectTimeoutMs: 200 })
      const history = yield* RedisHistory.make({ cluster: uniqueClusterName(), ...limits }).pipe(
        Effect.provideService(Redis.Redis, redis),
        Effect.orDie
      )
      const calls = [
        history.open("lobby"),
        history.append("lobby", "epoch", 1, Date.now(), "x"),
        history.readAfter("lobby", 0, 10),
        history.readBefore("lobby", 10, 10)
      ]
      for (const call of calls) expect(yield* reason(call)).toBe("unavailable")
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

  it.scoped("invalid options are refused at construction", () =>
    Effect.gen(function*() {
      const redis = yield* Redis.make({ url: "redis://127.0.0.1:1" }).pipe(Logger.withMinimumLogLevel(LogLevel.Error))
      const refused = <A>(effect: Effect.Effect<A, { readonly _tag: string }, Redis.Redis>) =>
        Effect.map(Effect.either(Effect.provideService(effect, Redis.Redis, redis)), (result) =>
          Either.isLeft(result) && result.left._tag)
      expect(yield* refused(RedisHistory.make({ cluster: "no spaces {or braces}", ...limits }))).toBe(
        "IllegalArgumentException"
      )
      for (const bad of [{ maxLength: 0, maxAgeMs: 1000 }, { maxLength: 5, maxAgeMs: 0.5 }, { maxLength: 1.5, maxAgeMs: 1000 }]) {
        expect(yield* refused(RedisHistory.make({ cluster: "ok", ...bad }))).toBe("IllegalArgumentException")
        expect(Either.isLeft(yield* Effect.either(MemoryHistory.make(bad)))).toBe(true)
      }
    }))
})

// ---------------------------------------------------------------------------
// Memory only
// ---------------------------------------------------------------------------

describe("MemoryHistory", () => {
  it.effect("holds only rooms written to within maxAgeMs: idle rooms are swept on use", () =>
    Effect.gen(function*() {
      const history = yield* Effect.orDie(MemoryHistory.make({ maxLength: 3, maxAgeMs: 1000 }))
      for (let i = 0; i < 200; i++) {
        const room = `room-${i}`
        const { epoch } = yield* history.open(room)
        for (let offset = 1; offset <= 10; offset++) yield* history.append(room, epoch, offset, 0, offset)
      }
      expect(history.rooms()).toBe(200)
      yield* TestClock.adjust(600)
      yield* history.open("room-0")
      yield* TestClock.adjust(600)
      // all but room-0 (re-opened, not written: its expiry still counts from its last write) are gone
      yield* history.readAfter("anything", 0, 1)
      expect(history.rooms()).toBe(0)
      const { epoch } = yield* history.open("room-7")
      yield* history.append("room-7", epoch, 1, 1200, "again")
      expect(history.rooms()).toBe(1)
    }))
})
