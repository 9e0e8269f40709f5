/**
 * The RunnerStorage contract against our Redis storage (a real Redis, never a
 * mock), its in-memory twin, and the subset @effect/cluster's own memory
 * storage honestly supports; then what only the Redis storage has: key names,
 * TTLs and error mapping.
 */
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as Runner from "@effect/cluster/Runner"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import * as ShardId from "@effect/cluster/ShardId"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Logger, LogLevel, TestClock, TestServices } from "effect"
import type IORedis from "ioredis"
import * as MemoryRunnerStorage from "../src/MemoryRunnerStorage.ts"
import { make as makeRedis, Redis } from "../src/Redis.ts"
import * as RedisRunnerStorage from "../src/RedisRunnerStorage.ts"
import { allCapabilities, type Capability, runnerStorageContract, type StorageCase } from "./runnerStorage.contract.ts"

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

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

/** A RedisRunnerStorage on its own connection and its own cluster name, whose keys go with the scope. */
const redisFixture = (lockExpiration: Duration.Duration) =>
  Effect.gen(function*() {
    const redis = yield* makeRedis({ url })
    const cluster = uniqueClusterName()
    const keys = RedisRunnerStorage.keys(cluster)
    yield* Effect.addFinalizer(() =>
      scan(redis.client, keys.pattern).pipe(
        Effect.flatMap((found) => (found.length === 0 ? Effect.void : redis.use((client) => client.del(...found)))),
        Effect.ignore
      )
    )
    const storage = yield* RedisRunnerStorage.make({ cluster, lockExpiration }).pipe(
      Effect.provideService(Redis, redis),
      Effect.orDie
    )
    return { storage, client: redis.client, cluster, keys }
  })

// Redis keeps time with its own clock, so time must really pass; the in-memory storages read
// Effect's Clock, which is the TestClock inside `it.scoped`.
const realTime = (duration: Duration.Duration) => TestServices.provideLive(Effect.sleep(duration))
const testClockTime = (duration: Duration.Duration) => TestClock.adjust(duration)

/**
 * Which storage runs which properties, and why. A missing capability means the tests that need
 * it are not registered for that storage: they would fail by design.
 */
const storages: ReadonlyArray<StorageCase & { readonly lacks: Partial<Record<Capability, string>> }> = [
  {
    name: `RedisRunnerStorage on ${url}`,
    capabilities: allCapabilities,
    lacks: {},
    make: (lockExpiration) =>
      Effect.map(redisFixture(lockExpiration), ({ storage }) => ({ storage, elapse: realTime }))
  },
  {
    name: "MemoryRunnerStorage",
    capabilities: allCapabilities,
    lacks: {},
    make: (lockExpiration) =>
      Effect.map(
        Effect.orDie(MemoryRunnerStorage.make({ lockExpiration })),
        (storage) => ({ storage, elapse: testClockTime })
      )
  },
  {
    name: "@effect/cluster RunnerStorage.makeMemory (single-runner subset)",
    capabilities: [],
    lacks: {
      ownership: "locks have no owner: acquire grants every shard to anyone, refresh returns the last acquire's list " +
        "to whoever asks, release and releaseAll do nothing (cluster-notes §1.1, upstream #7035)",
      expiry: "no heartbeat filter: a runner stays in getRunners until unregistered, locks never expire",
      health: "getRunners reports every runner healthy and setRunnerHealth does nothing",
      machineIds: "register returns a fresh counter value every time, so re-registering changes the id and ids " +
        "wrap past 1024 without checking live runners"
    },
    make: () => Effect.map(RunnerStorage.makeMemory, (storage) => ({ storage, elapse: testClockTime }))
  }
]

for (const storageCase of storages) {
  const missing = Object.keys(storageCase.lacks)
  runnerStorageContract({
    ...storageCase,
    name: missing.length === 0 ? storageCase.name : `${storageCase.name}, without: ${missing.join(", ")}`
  })
}

// ---------------------------------------------------------------------------
// Redis only
// ---------------------------------------------------------------------------

const address = (n: number) => RunnerAddress.make("127.0.0.1", 42000 + n)
const runner = (n: number) => Runner.make({ address: address(n), groups: ["default"], weight: 1 })
const expiration = Duration.seconds(5)

/** Touches every kind of key: registry, cursor, locks, owned sets, and a release of each kind. */
const workload = (storage: RunnerStorage.RunnerStorage["Type"]) =>
  Effect.gen(function*() {
    yield* storage.register(runner(1), true)
    yield* storage.register(runner(2), true)
    yield* storage.setRunnerHealth(address(2), false)
    yield* storage.acquire(address(1), ["default:1", "default:2"].map(ShardId.ShardId.fromString))
    yield* storage.acquire(address(2), ["default:2", "default:3", "default:4"].map(ShardId.ShardId.fromString))
    yield* storage.refresh(address(1), ["default:1", "default:2", "default:3"].map(ShardId.ShardId.fromString))
    yield* storage.refresh(address(2), [])
    yield* storage.release(address(1), ShardId.ShardId.fromString("default:2"))
    yield* storage.release(address(2), ShardId.ShardId.fromString("default:4"))
    yield* storage.register(runner(3), true)
    yield* storage.acquire(address(3), ["default:5"].map(ShardId.ShardId.fromString))
    yield* storage.releaseAll(address(3))
    yield* storage.unregister(address(3))
  })

describe("RedisRunnerStorage keys", () => {
  it.scoped("every key it writes has a TTL: locks the lock expiration, the rest twice that", () =>
    Effect.gen(function*() {
      const { storage, client, keys } = yield* redisFixture(expiration)
      yield* workload(storage)
      const found = yield* scan(client, keys.pattern)
      const lockKey = (shard: string) => keys.lock(shard)
      const ownedKey = (n: number) => keys.owned(`127.0.0.1:${42000 + n}`)
      // the layout is what `keys` documents; released locks and emptied sets are gone
      expect(found).toEqual(
        [
          keys.runners,
          keys.healthy,
          keys.heartbeats,
          keys.machineIds,
          keys.machineIdCursor,
          lockKey("default:1"),
          lockKey("default:3"),
          ownedKey(1),
          ownedKey(2)
        ].sort()
      )
      expect(yield* Effect.promise(() => client.get(lockKey("default:3")))).toBe("127.0.0.1:42002")
      for (const key of found) {
        const ttl = yield* Effect.promise(() => client.pttl(key))
        expect(ttl, key).toBeGreaterThan(0)
        const limit = key.startsWith(keys.lock("")) ? Duration.toMillis(expiration) : 2 * Duration.toMillis(expiration)
        expect(ttl, key).toBeLessThanOrEqual(limit)
      }
    }))

  it.scoped("nothing is written outside weft:{cluster}:", () =>
    Effect.gen(function*() {
      const { storage, client, cluster, keys } = yield* redisFixture(expiration)
      yield* workload(storage)
      const anywhere = yield* scan(client, `*${cluster}*`)
      expect(anywhere.length).toBeGreaterThan(0)
      for (const key of anywhere) expect(key.startsWith(`weft:{${cluster}}:`), key).toBe(true)
      expect(anywhere).toEqual(yield* scan(client, keys.pattern))
    }))

  it.scoped("an unreachable Redis fails every call with PersistenceError instead of hanging", () =>
    Effect.gen(function*() {
      // port 1 on loopback refuses connections: a real client with nothing to talk to
      const redis = yield* makeRedis({ url: "redis://127.0.0.1:1", commandTimeoutMs: 200, connectTimeoutMs: 200 })
      const storage = yield* RedisRunnerStorage.make({ cluster: uniqueClusterName(), lockExpiration: expiration }).pipe(
        Effect.provideService(Redis, redis),
        Effect.orDie
      )
      const calls = [
        storage.getRunners,
        storage.register(runner(1), true),
        storage.unregister(address(1)),
        storage.setRunnerHealth(address(1), true),
        storage.acquire(address(1), [ShardId.ShardId.fromString("default:1")]),
        storage.refresh(address(1), []),
        storage.release(address(1), ShardId.ShardId.fromString("default:1")),
        storage.releaseAll(address(1))
      ]
      for (const call of calls) {
        const result = yield* Effect.either(call)
        expect(Either.isLeft(result) && result.left._tag).toBe("PersistenceError")
      }
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

  it.scoped("invalid options are refused at construction", () =>
    Effect.gen(function*() {
      const redis = yield* makeRedis({ url: "redis://127.0.0.1:1" }).pipe(Logger.withMinimumLogLevel(LogLevel.Error))
      const refused = (result: Either.Either<unknown, { readonly _tag: string }>) =>
        Either.isLeft(result) && result.left._tag
      const badName = RedisRunnerStorage.make({ cluster: "no spaces {or braces}", lockExpiration: expiration })
      expect(refused(yield* Effect.either(Effect.provideService(badName, Redis, redis)))).toBe(
        "IllegalArgumentException"
      )
      const badExpiration = RedisRunnerStorage.make({ cluster: "ok", lockExpiration: Duration.zero })
      expect(refused(yield* Effect.either(Effect.provideService(badExpiration, Redis, redis)))).toBe(
        "IllegalArgumentException"
      )
      const memory = MemoryRunnerStorage.make({ lockExpiration: Duration.infinity })
      expect(refused(yield* Effect.either(memory))).toBe("IllegalArgumentException")
    }))
})
