/**
 * The Tickets contract, run against the in-memory store and a real Redis
 * (REDIS_URL, default redis://127.0.0.1:6379; never a mock), each test on
 * its own random cluster name whose keys are deleted afterwards. Then what
 * only Redis has (several nodes, key layout, TTLs, an unreachable server) and
 * what only memory has (sweeping).
 */
import { Redis } from "@weft/cluster"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Logger, LogLevel, TestClock, TestServices } from "effect"
import type { Scope } from "effect"
import { Grant } from "../src/Grant.ts"
import * as Tickets from "../src/Tickets.ts"
import { redisFor, scan, uniqueCluster } from "./fixtures.ts"

const ttlSeconds = 30

const grant = new Grant({
  user: "alice",
  device: "laptop",
  subscribe: ["user:{user}", "room:*"],
  publish: ["room:general"]
})

/** Records what reaches the store, to prove what does not. */
interface Spy {
  readonly puts: Array<{ readonly key: string; readonly value: string; readonly ttlMs: number }>
  readonly takes: Array<string>
}

const spyOn = (encoded: Tickets.Encoded): { readonly encoded: Tickets.Encoded; readonly spy: Spy } => {
  const spy: Spy = { puts: [], takes: [] }
  return {
    spy,
    encoded: {
      put: (key, value, ttlMs) => Effect.suspend(() => {
        spy.puts.push({ key, value, ttlMs })
        return encoded.put(key, value, ttlMs)
      }),
      take: (key) => Effect.suspend(() => {
        spy.takes.push(key)
        return encoded.take(key)
      })
    }
  }
}

interface UnderTest {
  readonly tickets: Tickets.TicketsService
  /** The store behind `tickets`, unspied, to plant data in. */
  readonly store: Tickets.Encoded
  readonly spy: Spy
  /** Makes `ticket` expire: the TestClock for memory, a 1 ms PEXPIRE and real time for Redis. */
  readonly expire: (ticket: string) => Effect.Effect<void>
}

interface StoreCase {
  readonly name: string
  readonly make: Effect.Effect<UnderTest, never, Scope.Scope>
}

const cases: ReadonlyArray<StoreCase> = [
  {
    name: "memory",
    make: Effect.gen(function*() {
      const store = Tickets.makeMemoryEncoded({ sweepEveryMs: ttlSeconds * 1000 })
      const { encoded, spy } = spyOn(store)
      const tickets = yield* Effect.orDie(Tickets.makeEncoded(encoded, { ttlSeconds }))
      return { tickets, store, spy, expire: () => TestClock.adjust(Duration.seconds(ttlSeconds)) }
    })
  },
  {
    name: `Redis at ${process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"}`,
    make: Effect.gen(function*() {
      const cluster = uniqueCluster()
      const redis = yield* redisFor(cluster)
      const keys = Tickets.keys(cluster)
      const store = Tickets.makeRedisEncoded(redis, keys)
      const { encoded, spy } = spyOn(store)
      const tickets = yield* Effect.orDie(Tickets.makeEncoded(encoded, { ttlSeconds }))
      const expire = (ticket: string) =>
        Effect.promise(() => redis.client.pexpire(keys.ticket(Tickets.hash(ticket)), 1)).pipe(
          Effect.zipRight(TestServices.provideLive(Effect.sleep(Duration.millis(20))))
        )
      return { tickets, store, spy, expire }
    })
  }
]

for (const storeCase of cases) {
  describe(`Tickets on ${storeCase.name}`, () => {
    it.scoped("a ticket is 43 characters of base64url and gives its grant back exactly once", () =>
      Effect.gen(function*() {
        const { tickets } = yield* storeCase.make
        const issued = yield* tickets.issue(grant)
        expect(issued.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(issued.expiresIn).toBe(ttlSeconds)
        const taken = yield* tickets.take(issued.ticket)
        expect(taken).toBeInstanceOf(Grant)
        expect(taken).toEqual(grant)
        expect(yield* tickets.take(issued.ticket)).toBeUndefined()
      }))

    it.scoped("tickets are all different, and each takes only its own grant", () =>
      Effect.gen(function*() {
        const { tickets } = yield* storeCase.make
        const grants = Array.from({ length: 50 }, (_, i) => new Grant({ user: `u${i}`, subscribe: [], publish: [] }))
        const issued = yield* Effect.forEach(grants, tickets.issue, { concurrency: 10 })
        expect(new Set(issued.map((i) => i.ticket)).size).toBe(50)
        const taken = yield* Effect.forEach(issued, (i) => tickets.take(i.ticket), { concurrency: 10 })
        expect(taken.map((g) => g?.user)).toEqual(grants.map((g) => g.user))
      }))

    it.scoped("100 concurrent takes of one ticket: exactly one gets the grant", () =>
      Effect.gen(function*() {
        const { tickets } = yield* storeCase.make
        const { ticket } = yield* tickets.issue(grant)
        const results = yield* Effect.all(Array.from({ length: 100 }, () => tickets.take(ticket)), {
          concurrency: "unbounded"
        })
        expect(results.filter((result) => result !== undefined)).toHaveLength(1)
      }))

    it.scoped("an expired ticket gives nothing", () =>
      Effect.gen(function*() {
        const { tickets, expire } = yield* storeCase.make
        const { ticket } = yield* tickets.issue(grant)
        const kept = yield* tickets.issue(grant)
        yield* expire(ticket)
        expect(yield* tickets.take(ticket)).toBeUndefined()
        // Expiring one ticket is not expiring the store.
        if (storeCase.name !== "memory") expect(yield* tickets.take(kept.ticket)).toEqual(grant)
      }))

    it.scoped("a ticket lives no longer than the JWT it was issued for (at least 1 s)", () =>
      Effect.gen(function*() {
        const { tickets, spy } = yield* storeCase.make
        const now = yield* Clock.currentTimeMillis
        const soon = yield* tickets.issue(new Grant({ ...grant, expiresAt: now + 5_000 }))
        expect(soon.expiresIn).toBe(5)
        const late = yield* tickets.issue(new Grant({ ...grant, expiresAt: now + 3_600_000 }))
        expect(late.expiresIn).toBe(ttlSeconds)
        const past = yield* tickets.issue(new Grant({ ...grant, expiresAt: Math.max(0, now - 2_000) }))
        expect(past.expiresIn).toBe(1)
        expect(spy.puts.map((put) => put.ttlMs)).toEqual([5_000, ttlSeconds * 1000, 1000])
        expect(yield* tickets.take(soon.ticket)).toEqual(new Grant({ ...grant, expiresAt: now + 5_000 }))
      }))

    it.scoped("strings not shaped like a ticket never reach the store", () =>
      Effect.gen(function*() {
        const { tickets, spy } = yield* storeCase.make
        const { ticket } = yield* tickets.issue(grant)
        const malformed = [
          "",
          "short",
          `${ticket}A`,
          ticket.slice(0, 42),
          `${ticket.slice(0, 42)}+`,
          `${ticket.slice(0, 42)}=`,
          `${ticket.slice(0, 42)}/`,
          ` ${ticket.slice(0, 42)}`,
          `${ticket.slice(0, 41)}é`,
          "*".repeat(43),
          "x".repeat(10_000)
        ]
        for (const candidate of malformed) expect(yield* tickets.take(candidate), candidate).toBeUndefined()
        expect(spy.takes).toEqual([])
        // A well-shaped unknown ticket does ask the store, and finds nothing.
        expect(yield* tickets.take("A".repeat(43))).toBeUndefined()
        expect(spy.takes).toEqual([Tickets.hash("A".repeat(43))])
        // The real one still works: nothing above consumed it.
        expect(yield* tickets.take(ticket)).toEqual(grant)
      }))

    it.scoped("the store sees the ticket's SHA-256 and the grant, never the ticket", () =>
      Effect.gen(function*() {
        const { tickets, spy } = yield* storeCase.make
        const { ticket } = yield* tickets.issue(grant)
        expect(spy.puts).toHaveLength(1)
        const [put] = spy.puts
        expect(put?.key).toBe(Tickets.hash(ticket))
        expect(put?.key).toMatch(/^[0-9a-f]{64}$/)
        expect(put?.value).not.toContain(ticket)
        expect(JSON.parse(put?.value ?? "")).toEqual({
          user: "alice",
          device: "laptop",
          subscribe: ["user:{user}", "room:*"],
          publish: ["room:general"],
          moderate: []
        })
        yield* tickets.take(ticket)
        expect(spy.takes).toEqual([Tickets.hash(ticket)])
      }))

    it.scoped("data in the store that is not a grant is a TicketError, and the ticket is spent", () =>
      Effect.gen(function*() {
        const { tickets, store } = yield* storeCase.make
        const planted = ["not json", "{\"user\":\"\",\"subscribe\":[],\"publish\":[]}", "{\"user\":\"a\",\"subscribe\":[\"(.*)\"],\"publish\":[]}", "null"]
        for (const [i, value] of planted.entries()) {
          const ticket = `${"B".repeat(42)}${i}`
          yield* store.put(Tickets.hash(ticket), value, 10_000)
          const result = yield* Effect.either(tickets.take(ticket))
          expect(Either.isLeft(result) && result.left.reason, value).toBe("invalid-data")
          expect(yield* tickets.take(ticket)).toBeUndefined()
        }
      }))
  })
}

// ---------------------------------------------------------------------------
// Memory only
// ---------------------------------------------------------------------------

describe("Tickets in memory", () => {
  it.effect("a ticket is good until its TTL and gone at it (TestClock)", () =>
    Effect.gen(function*() {
      const tickets = yield* Tickets.makeMemory({ ttlSeconds })
      const first = yield* tickets.issue(grant)
      const second = yield* tickets.issue(grant)
      yield* TestClock.adjust(Duration.millis(ttlSeconds * 1000 - 1))
      expect(yield* tickets.take(first.ticket)).toEqual(grant)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* tickets.take(second.ticket)).toBeUndefined()
    }))

  it.effect("expired tickets are swept, so memory holds only what is live", () =>
    Effect.gen(function*() {
      const store = Tickets.makeMemoryEncoded({ sweepEveryMs: 1000 })
      const tickets = yield* Tickets.makeEncoded(store, { ttlSeconds: 1 })
      yield* Effect.forEach(Array.from({ length: 1000 }), () => tickets.issue(grant), { discard: true })
      expect(store.size()).toBe(1000)
      yield* TestClock.adjust(Duration.seconds(2))
      yield* tickets.issue(grant)
      expect(store.size()).toBe(1)
    }))

  it.effect("refuses a TTL outside 1-3600 s", () =>
    Effect.gen(function*() {
      for (const ttl of [0, -1, 1.5, 3601, Number.NaN]) {
        const result = yield* Effect.either(Tickets.makeMemory({ ttlSeconds: ttl }))
        expect(Either.isLeft(result) && result.left._tag, String(ttl)).toBe("IllegalArgumentException")
      }
    }))
})

// ---------------------------------------------------------------------------
// Redis only
// ---------------------------------------------------------------------------

/** One "node": its own connection and its own Tickets, on a shared cluster name. */
const node = (cluster: string, ttl = ttlSeconds) =>
  Effect.gen(function*() {
    const redis = yield* redisFor(cluster)
    const tickets = yield* Effect.orDie(Effect.provideService(Tickets.makeRedis({ cluster, ttlSeconds: ttl }), Redis.Redis, redis))
    return { redis, tickets }
  })

describe("Tickets on Redis, across nodes", () => {
  it.scoped("any node takes a ticket another issued, once", () =>
    Effect.gen(function*() {
      const cluster = uniqueCluster()
      const a = yield* node(cluster)
      const b = yield* node(cluster)
      const { ticket } = yield* a.tickets.issue(grant)
      expect(yield* b.tickets.take(ticket)).toEqual(grant)
      expect(yield* a.tickets.take(ticket)).toBeUndefined()
      expect(yield* b.tickets.take(ticket)).toBeUndefined()
    }))

  it.scoped("100 concurrent takes spread over two nodes: exactly one gets the grant", () =>
    Effect.gen(function*() {
      const cluster = uniqueCluster()
      const a = yield* node(cluster)
      const b = yield* node(cluster)
      const { ticket } = yield* a.tickets.issue(grant)
      const results = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).tickets.take(ticket)),
        { concurrency: "unbounded" }
      )
      expect(results.filter((result) => result !== undefined)).toHaveLength(1)
    }))

  it.scoped("a ticket on another cluster name is not there", () =>
    Effect.gen(function*() {
      const a = yield* node(uniqueCluster())
      const b = yield* node(uniqueCluster())
      const { ticket } = yield* a.tickets.issue(grant)
      expect(yield* b.tickets.take(ticket)).toBeUndefined()
      expect(yield* a.tickets.take(ticket)).toEqual(grant)
    }))

  it.scoped("keys are weft:{cluster}:ticket:<sha256>, hold no ticket, and all have the TTL", () =>
    Effect.gen(function*() {
      const cluster = uniqueCluster()
      const { redis, tickets } = yield* node(cluster)
      const issued = yield* Effect.forEach(Array.from({ length: 20 }), () => tickets.issue(grant))
      const found = yield* scan(redis.client, `*${cluster}*`)
      expect(found).toEqual(issued.map((i) => `weft:{${cluster}}:ticket:${Tickets.hash(i.ticket)}`).sort())
      for (const key of found) {
        const value = (yield* Effect.promise(() => redis.client.get(key))) ?? ""
        const ttl = yield* Effect.promise(() => redis.client.pttl(key))
        expect(ttl, key).toBeGreaterThan(0)
        expect(ttl, key).toBeLessThanOrEqual(ttlSeconds * 1000)
        for (const { ticket } of issued) {
          expect(key).not.toContain(ticket)
          expect(value).not.toContain(ticket)
        }
      }
      // Taking deletes the key.
      yield* Effect.forEach(issued, (i) => tickets.take(i.ticket))
      expect(yield* scan(redis.client, `*${cluster}*`)).toEqual([])
    }))

  it.scoped("Redis expires a ticket by itself after its TTL (1 s, real time)", () =>
    Effect.gen(function*() {
      const { tickets } = yield* node(uniqueCluster(), 1)
      const { ticket, expiresIn } = yield* tickets.issue(grant)
      expect(expiresIn).toBe(1)
      yield* TestServices.provideLive(Effect.sleep(Duration.millis(1100)))
      expect(yield* tickets.take(ticket)).toBeUndefined()
    }))

  it.scoped("an unreachable Redis fails issue and take with unavailable, quickly; malformed tickets still need no store", () =>
    Effect.gen(function*() {
      const redis = yield* Redis.make({ url: "redis://127.0.0.1:1", commandTimeoutMs: 200, connectTimeoutMs: 200 })
      const tickets = yield* Effect.orDie(
        Effect.provideService(Tickets.makeRedis({ cluster: uniqueCluster(), ttlSeconds }), Redis.Redis, redis)
      )
      const issued = yield* Effect.either(tickets.issue(grant))
      expect(Either.isLeft(issued) && issued.left.reason).toBe("unavailable")
      const taken = yield* Effect.either(tickets.take("A".repeat(43)))
      expect(Either.isLeft(taken) && taken.left.reason).toBe("unavailable")
      expect(yield* tickets.take("not-a-ticket")).toBeUndefined()
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("refuses an invalid cluster name", () =>
    Effect.gen(function*() {
      const redis = yield* redisFor(uniqueCluster())
      const result = yield* Effect.either(
        Effect.provideService(Tickets.makeRedis({ cluster: "no {braces}", ttlSeconds }), Redis.Redis, redis)
      )
      expect(Either.isLeft(result) && result.left._tag).toBe("IllegalArgumentException")
    }))
})
