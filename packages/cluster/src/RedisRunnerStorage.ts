/**
 * @effect/cluster's `RunnerStorage` on Redis: runner membership, machine ids
 * and shard locks for every runner of one cluster.
 *
 * In @effect/cluster 0.60 there is no shard manager: each runner computes the
 * same hash ring from `getRunners` and takes its shards by locking them here,
 * so these locks are the only thing keeping an entity single. Every method is
 * one Lua script, so each is atomic in Redis, and takes its time from
 * `redis.call('TIME')`, so runner clocks never matter.
 *
 * Semantics follow `SqlRunnerStorage` (the reference implementation) except in
 * one place: a lock that expired is gone (PX), so `refresh` cannot revive it.
 * Sharding then releases the shard and acquires it again, which is the safe
 * side of the same race.
 *
 * `lockExpiration` must equal `ShardingConfig.shardLockExpiration`: it is the
 * lock lifetime and also how long a runner counts as live after its last
 * heartbeat. The Redis client must fail within the lock refresh interval
 * (`Redis.ts` sets `commandTimeout`); otherwise a stalled refresh could outlive
 * the lock and two runners would hold one shard (upstream #6508).
 */
import { PersistenceError } from "@effect/cluster/ClusterError"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import { Cause, Duration, Effect, Exit, Layer, Schema } from "effect"
import * as ClusterMetrics from "./ClusterMetrics.ts"
import type { ClientContext, Result } from "ioredis"
import { keyPrefix, Redis, layer as redisLayer, validateClusterName } from "./Redis.ts"
import type { RedisOptions, RedisService } from "./Redis.ts"

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/**
 * Every key this storage writes, for one cluster. All share the `{cluster}`
 * hash tag, so one Lua script may touch any of them in Redis Cluster.
 *
 * TTLs: a lock lives `lockExpiration` unless refreshed. The registry keys and
 * the owned-shard sets live `2 × lockExpiration` and every heartbeat extends
 * them, so they outlive any live runner's entry and vanish once the whole
 * cluster has been gone for a while.
 */
export interface Keys {
  /** `weft:{<cluster>}:` */
  readonly prefix: string
  /** SCAN pattern matching every key of the cluster (this storage's and other modules'). */
  readonly pattern: string
  /** HASH address → Runner JSON. */
  readonly runners: string
  /** HASH address → "1" | "0". */
  readonly healthy: string
  /** ZSET address → last heartbeat (ms, Redis TIME). A runner is live while this is younger than the expiration. */
  readonly heartbeats: string
  /** HASH address → machine id in [0, 1024). */
  readonly machineIds: string
  /** STRING: where the next machine id search starts, so a freed id is reused last. */
  readonly machineIdCursor: string
  /** STRING owner address, PX = lock expiration. */
  readonly lock: (shardId: string) => string
  /** SET of shard ids `address` acquired; lets `releaseAll` find its locks without a SCAN. */
  readonly owned: (address: string) => string
}

export const keys = (cluster: string): Keys => {
  const prefix = keyPrefix(cluster)
  return {
    prefix,
    pattern: `${prefix}*`,
    runners: `${prefix}runners`,
    healthy: `${prefix}runners:healthy`,
    heartbeats: `${prefix}runners:heartbeat`,
    machineIds: `${prefix}runners:machine-id`,
    machineIdCursor: `${prefix}runners:machine-id-cursor`,
    lock: (shardId) => `${prefix}shard-lock:${shardId}`,
    owned: (address) => `${prefix}shard-locks-of:${address}`
  }
}

/** Registry keys in the order the scripts index them as KEYS[1..5]. */
const registryKeys = (k: Keys): ReadonlyArray<string> => [
  k.runners,
  k.healthy,
  k.heartbeats,
  k.machineIds,
  k.machineIdCursor
]

/** Snowflake ids keep `machineId % 1024` (`@effect/cluster/Snowflake`), so that is the space to keep unique. */
const machineIdSpace = 1024

// ---------------------------------------------------------------------------
// Lua
// ---------------------------------------------------------------------------

// Redis' clock, so the runners' clocks never decide whether a lock is held.
const now = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`

// Registry KEYS: 1 runners, 2 healthy, 3 heartbeats, 4 machine ids, 5 machine id cursor.
const touchRegistry = `for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end`

const scripts = {
  // KEYS: registry. ARGV: address, runner JSON, healthy "1"|"0", expiration ms, registry ttl ms.
  weftRunnerStorageRegister: `${now}
local address, expiration, ttl = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
local deadline = now - expiration
-- Drop runners whose heartbeat expired, as SqlRunnerStorage does: it bounds the registry and frees
-- their machine ids. The caller is spared so that, back from a stall, it keeps its id if still free.
for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', deadline)) do
  if other ~= address then
    redis.call('ZREM', KEYS[3], other)
    redis.call('HDEL', KEYS[1], other)
    redis.call('HDEL', KEYS[2], other)
    redis.call('HDEL', KEYS[4], other)
  end
end
local used = {}
for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. deadline, '+inf')) do
  if other ~= address then
    local other_id = redis.call('HGET', KEYS[4], other)
    if other_id then used[tonumber(other_id)] = true end
  end
end
local id = tonumber(redis.call('HGET', KEYS[4], address) or '')
if id == nil or used[id] then
  id = nil
  local start = tonumber(redis.call('GET', KEYS[5]) or '0') or 0
  for i = 0, ${machineIdSpace - 1} do
    local candidate = (start + i) % ${machineIdSpace}
    if not used[candidate] then
      id = candidate
      break
    end
  end
  if id == nil then
    return redis.error_reply('WEFT_NO_MACHINE_ID all ${machineIdSpace} machine ids are held by live runners')
  end
  redis.call('HSET', KEYS[4], address, id)
  redis.call('SET', KEYS[5], (id + 1) % ${machineIdSpace})
end
redis.call('HSET', KEYS[1], address, ARGV[2])
redis.call('HSET', KEYS[2], address, ARGV[3])
redis.call('ZADD', KEYS[3], now, address)
${touchRegistry}
return id`,

  // KEYS: runners, healthy, heartbeats. ARGV: expiration ms. Reply: flat [runner JSON, healthy, ...].
  weftRunnerStorageGetRunners: `${now}
local out = {}
for _, address in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. (now - tonumber(ARGV[1])), '+inf')) do
  local runner = redis.call('HGET', KEYS[1], address)
  if runner then
    out[#out + 1] = runner
    out[#out + 1] = redis.call('HGET', KEYS[2], address) or '0'
  end
end
return out`,

  // KEYS: runners, healthy, heartbeats, machine ids. ARGV: address, expiration ms.
  // Also sweeps expired runners, like SqlRunnerStorage's unregister.
  weftRunnerStorageUnregister: `${now}
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[2]))
gone[#gone + 1] = ARGV[1]
for _, address in ipairs(gone) do
  redis.call('ZREM', KEYS[3], address)
  redis.call('HDEL', KEYS[1], address)
  redis.call('HDEL', KEYS[2], address)
  redis.call('HDEL', KEYS[4], address)
end
return #gone`,

  // KEYS: runners, healthy. ARGV: address, healthy "1"|"0", registry ttl ms.
  // An unknown address is ignored, so a late health check cannot resurrect a departed runner.
  weftRunnerStorageSetHealth: `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`,

  // KEYS: owned set, lock 1..n. ARGV: address, expiration ms, registry ttl ms, shard 1..n.
  // Per shard: take it if free (SET NX PX), extend it if ours; otherwise it is someone else's.
  weftRunnerStorageAcquire: `
local address, expiration, ttl = ARGV[1], ARGV[2], ARGV[3]
local won = {}
for i = 2, #KEYS do
  local shard = ARGV[i + 2]
  if redis.call('SET', KEYS[i], address, 'NX', 'PX', expiration) then
    won[#won + 1] = shard
    redis.call('SADD', KEYS[1], shard)
  elseif redis.call('GET', KEYS[i]) == address then
    redis.call('PEXPIRE', KEYS[i], expiration)
    won[#won + 1] = shard
    redis.call('SADD', KEYS[1], shard)
  else
    redis.call('SREM', KEYS[1], shard)
  end
end
if #won > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return won`,

  // KEYS: registry, owned set, lock 1..n. ARGV: address, expiration ms, registry ttl ms, shard 1..n.
  // The heartbeat is stamped even with no shards: Sharding probes storage health with refresh(self, []).
  // Only a registered runner is stamped (SQL's UPDATE ... WHERE address), so a runner that was
  // swept must register again and get a machine id checked against the live runners.
  weftRunnerStorageRefresh: `${now}
local address, expiration, ttl = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HEXISTS', KEYS[1], address) == 1 then
  redis.call('ZADD', KEYS[3], now, address)
  ${touchRegistry}
end
local kept = {}
for i = 7, #KEYS do
  local shard = ARGV[i - 3]
  if redis.call('GET', KEYS[i]) == address then
    redis.call('PEXPIRE', KEYS[i], expiration)
    kept[#kept + 1] = shard
  else
    redis.call('SREM', KEYS[6], shard)
  end
end
if #kept > 0 then redis.call('PEXPIRE', KEYS[6], ttl) end
return kept`,

  // KEYS: owned set, lock. ARGV: address, shard. Compare-and-delete: never another runner's lock.
  weftRunnerStorageRelease: `
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('SREM', KEYS[1], ARGV[2])
return 1`,

  // KEYS: owned set, lock 1..n. ARGV: address, shard 1..n. Reply: members left in the owned set.
  // The caller read the owned set first so that every lock key is declared in KEYS (Redis Cluster
  // requires it); anything acquired in between is reported and handled by another pass.
  weftRunnerStorageReleaseAll: `
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
  redis.call('SREM', KEYS[1], ARGV[i])
end
return redis.call('SCARD', KEYS[1])`
} as const

type ScriptName = keyof typeof scripts

// `defineCommand` adds these methods to the client at run time; this is how ioredis wants them typed.
// They are called with the key count first because the count varies with the shards passed.
declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    weftRunnerStorageRegister(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftRunnerStorageGetRunners(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftRunnerStorageUnregister(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftRunnerStorageSetHealth(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftRunnerStorageAcquire(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftRunnerStorageRefresh(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftRunnerStorageRelease(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftRunnerStorageReleaseAll(numKeys: number, ...keysAndArgs: Array<string | number>): Result<unknown, Context>
  }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

const MachineIdReply = Schema.Int.pipe(Schema.between(0, machineIdSpace - 1))
const ShardIdsReply = Schema.Array(Schema.String)
const CountReply = Schema.NonNegativeInt
const RunnersReply = Schema.Array(Schema.String).pipe(
  Schema.filter((flat) => flat.length % 2 === 0 || "expected [runner, healthy] pairs")
)

const decode = <A, I>(schema: Schema.Schema<A, I>) => (reply: unknown): Effect.Effect<A, PersistenceError> =>
  Schema.decodeUnknown(schema)(reply).pipe(Effect.mapError((cause) => new PersistenceError({ cause })))

// ---------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------

export interface Options {
  /** Cluster name (`[A-Za-z0-9._-]{1,64}`); every key lives under `weft:{<cluster>}:`. */
  readonly cluster: string
  /** Must equal `ShardingConfig.shardLockExpiration`: lock lifetime and runner liveness window. */
  readonly lockExpiration: Duration.DurationInput
}

/** `releaseAll` passes; a second pass only happens if the runner acquired while releasing. */
const releaseAllPasses = 5

/** Registry keys outlive the liveness window so that a live runner's entry never expires between heartbeats. */
const registryTtlFactor = 2

/** Whole milliseconds ≥ 1, since Redis PX takes a positive integer. */
const lockExpirationMillis = (input: Duration.DurationInput) =>
  Effect.try({
    try: () => Duration.decode(input),
    catch: () => new Cause.IllegalArgumentException("RedisRunnerStorage: lockExpiration is not a duration")
  }).pipe(
    Effect.filterOrFail(
      (duration) => Duration.isFinite(duration) && Duration.toMillis(duration) >= 1,
      () => new Cause.IllegalArgumentException("RedisRunnerStorage: lockExpiration must be finite and at least 1 ms")
    ),
    Effect.map((duration) => Math.ceil(Duration.toMillis(duration)))
  )

const validate = (options: Options) =>
  Effect.gen(function*() {
    const cluster = yield* Effect.try({
      try: () => validateClusterName(options.cluster),
      catch: () =>
        new Cause.IllegalArgumentException(
          `RedisRunnerStorage: invalid cluster name ${JSON.stringify(options.cluster)} (expected [A-Za-z0-9._-]{1,64})`
        )
    })
    const expirationMs = yield* lockExpirationMillis(options.lockExpiration)
    return { cluster, expirationMs, registryTtlMs: registryTtlFactor * expirationMs }
  })

const makeEncoded = (
  redis: RedisService,
  settings: { readonly cluster: string; readonly expirationMs: number; readonly registryTtlMs: number }
): RunnerStorage.Encoded => {
  const k = keys(settings.cluster)
  const registry = registryKeys(k)
  const { expirationMs, registryTtlMs } = settings

  // Idempotent, and the same scripts serve every cluster (keys are arguments), so sharing the
  // node's client between storages is fine.
  for (const [name, lua] of Object.entries(scripts)) redis.client.defineCommand(name, { lua })

  const run = (
    script: ScriptName,
    scriptKeys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>
  ): Effect.Effect<unknown, PersistenceError> =>
    redis.use((client) => client[script](scriptKeys.length, ...scriptKeys, ...args)).pipe(
      Effect.mapError((cause) => new PersistenceError({ cause }))
    )

  const flag = (healthy: boolean) => (healthy ? "1" : "0")

  const releaseAllPass = (address: string) =>
    redis.use((client) => client.smembers(k.owned(address))).pipe(
      Effect.mapError((cause) => new PersistenceError({ cause })),
      Effect.flatMap(decode(ShardIdsReply)),
      Effect.flatMap((shards) =>
        run("weftRunnerStorageReleaseAll", [k.owned(address), ...shards.map(k.lock)], [address, ...shards])
      ),
      Effect.flatMap(decode(CountReply))
    )

  return counted({
    getRunners: run("weftRunnerStorageGetRunners", [k.runners, k.healthy, k.heartbeats], [expirationMs]).pipe(
      Effect.flatMap(decode(RunnersReply)),
      Effect.map((flat) => {
        const out: Array<readonly [runner: string, healthy: boolean]> = []
        for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1] === "1"])
        return out
      })
    ),

    register: (address, runner, healthy) =>
      run("weftRunnerStorageRegister", registry, [address, runner, flag(healthy), expirationMs, registryTtlMs]).pipe(
        Effect.flatMap(decode(MachineIdReply))
      ),

    unregister: (address) =>
      Effect.asVoid(run("weftRunnerStorageUnregister", registry.slice(0, 4), [address, expirationMs])),

    setRunnerHealth: (address, healthy) =>
      Effect.asVoid(run("weftRunnerStorageSetHealth", [k.runners, k.healthy], [address, flag(healthy), registryTtlMs])),

    acquire: (address, shardIds) =>
      run(
        "weftRunnerStorageAcquire",
        [k.owned(address), ...shardIds.map(k.lock)],
        [address, expirationMs, registryTtlMs, ...shardIds]
      ).pipe(Effect.flatMap(decode(ShardIdsReply)), Effect.map((won) => [...won])),

    refresh: (address, shardIds) =>
      run(
        "weftRunnerStorageRefresh",
        [...registry, k.owned(address), ...shardIds.map(k.lock)],
        [address, expirationMs, registryTtlMs, ...shardIds]
      ).pipe(Effect.flatMap(decode(ShardIdsReply))),

    release: (address, shardId) =>
      Effect.asVoid(run("weftRunnerStorageRelease", [k.owned(address), k.lock(shardId)], [address, shardId])),

    releaseAll: (address) =>
      Effect.gen(function*() {
        for (let pass = 0; pass < releaseAllPasses; pass++) {
          if ((yield* releaseAllPass(address)) === 0) return
        }
        return yield* new PersistenceError({
          cause: new Error(`releaseAll(${address}): still acquiring after ${releaseAllPasses} passes`)
        })
      })
  })
}

/** Counts each operation and its outcome in `ClusterMetrics.registryOperations` (an interrupted one is not counted). */
const counted = (storage: RunnerStorage.Encoded): RunnerStorage.Encoded => {
  const track = <A, E>(operation: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.onExit(effect, (exit) =>
      Exit.isInterrupted(exit)
        ? Effect.void
        : Effect.sync(() => ClusterMetrics.recordRegistryOperation(operation, Exit.isSuccess(exit) ? "ok" : "error")))
  return {
    getRunners: track("getRunners", storage.getRunners),
    register: (address, runner, healthy) => track("register", storage.register(address, runner, healthy)),
    unregister: (address) => track("unregister", storage.unregister(address)),
    setRunnerHealth: (address, healthy) => track("setRunnerHealth", storage.setRunnerHealth(address, healthy)),
    acquire: (address, shardIds) => track("acquire", storage.acquire(address, shardIds)),
    refresh: (address, shardIds) => track("refresh", storage.refresh(address, shardIds)),
    release: (address, shardId) => track("release", storage.release(address, shardId)),
    releaseAll: (address) => track("releaseAll", storage.releaseAll(address))
  }
}

/** A `RunnerStorage` for `options.cluster` on the node's `Redis` connection. */
export const make = (
  options: Options
): Effect.Effect<RunnerStorage.RunnerStorage["Type"], Cause.IllegalArgumentException, Redis> =>
  Effect.gen(function*() {
    const settings = yield* validate(options)
    const redis = yield* Redis
    return RunnerStorage.makeEncoded(makeEncoded(redis, settings))
  })

export const layer = (
  options: Options
): Layer.Layer<RunnerStorage.RunnerStorage, Cause.IllegalArgumentException, Redis> =>
  Layer.effect(RunnerStorage.RunnerStorage, make(options))

/** `layer` with its own Redis connection, for nodes that need Redis for nothing else. */
export const layerRedis = (
  options: Options & { readonly redis: RedisOptions }
): Layer.Layer<RunnerStorage.RunnerStorage, Cause.IllegalArgumentException> =>
  layer(options).pipe(Layer.provide(redisLayer(options.redis)))
