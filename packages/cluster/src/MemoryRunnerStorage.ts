/**
 * The in-memory twin of `RedisRunnerStorage`: the same runner registry,
 * machine ids, heartbeat filtering and owned, expiring shard locks, for
 * several runners in one process and for tests.
 *
 * @effect/cluster's own `RunnerStorage.makeMemory` is only correct for a
 * single runner: its locks have no owner (`acquire` grants anything to anyone,
 * `refresh` returns the last caller's list) and runners never expire. Shared
 * by several runners it lets two activations of one entity run at once.
 *
 * Each method mirrors one Lua script of `RedisRunnerStorage` step by step, and
 * the contract suite (`test/runnerStorage.contract.ts`) holds both to the same
 * properties. Time comes from Effect's `Clock`, so `TestClock` can drive expiry.
 */
import { PersistenceError } from "@effect/cluster/ClusterError"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import { Cause, Clock, Duration, Effect, Layer } from "effect"

export interface Options {
  /** Must equal `ShardingConfig.shardLockExpiration`: lock lifetime and runner liveness window. */
  readonly lockExpiration: Duration.DurationInput
}

/** Snowflake ids keep `machineId % 1024` (`@effect/cluster/Snowflake`), so that is the space to keep unique. */
const machineIdSpace = 1024

/** As in Redis: the registry vanishes when nobody has written to it for twice the liveness window. */
const registryTtlFactor = 2

interface RunnerEntry {
  runner: string
  healthy: boolean
  heartbeat: number
  machineId: number
}

interface Lock {
  readonly owner: string
  expiresAt: number
}

const lockExpirationMillis = (input: Duration.DurationInput) =>
  Effect.try({
    try: () => Duration.decode(input),
    catch: () => new Cause.IllegalArgumentException("MemoryRunnerStorage: lockExpiration is not a duration")
  }).pipe(
    Effect.filterOrFail(
      (duration) => Duration.isFinite(duration) && Duration.toMillis(duration) >= 1,
      () => new Cause.IllegalArgumentException("MemoryRunnerStorage: lockExpiration must be finite and at least 1 ms")
    ),
    Effect.map((duration) => Math.ceil(Duration.toMillis(duration)))
  )

const makeEncoded = (expirationMs: number): RunnerStorage.Encoded => {
  const registryTtlMs = registryTtlFactor * expirationMs
  const runners = new Map<string, RunnerEntry>()
  let machineIdCursor = 0
  let registryExpiresAt = Number.POSITIVE_INFINITY
  const locks = new Map<string, Lock>()

  const isLive = (entry: RunnerEntry, now: number) => entry.heartbeat > now - expirationMs
  const lockOwner = (shardId: string, now: number): string | undefined => {
    const lock = locks.get(shardId)
    if (lock === undefined) return undefined
    if (lock.expiresAt > now) return lock.owner
    locks.delete(shardId)
    return undefined
  }

  // Redis drops the registry keys when their TTL runs out; reading them afterwards sees nothing.
  const expireRegistry = (now: number) => {
    if (now < registryExpiresAt) return
    runners.clear()
    machineIdCursor = 0
    registryExpiresAt = Number.POSITIVE_INFINITY
  }
  const touchRegistry = (now: number) => {
    registryExpiresAt = now + registryTtlMs
  }

  // Every method runs synchronously once it has the time, so each is atomic like a Lua script.
  const atomically = <A>(f: (now: number) => A): Effect.Effect<A, PersistenceError> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      expireRegistry(now)
      return f(now)
    })

  return {
    getRunners: atomically((now) => {
      const out: Array<readonly [runner: string, healthy: boolean]> = []
      for (const entry of runners.values()) if (isLive(entry, now)) out.push([entry.runner, entry.healthy])
      return out
    }),

    register: (address, runner, healthy) =>
      Effect.flatMap(
        atomically((now): number | undefined => {
          // Sweep expired runners except the caller, which keeps its id if no live runner took it.
          for (const [other, entry] of runners) if (other !== address && !isLive(entry, now)) runners.delete(other)
          const used = new Set<number>()
          for (const [other, entry] of runners) if (other !== address) used.add(entry.machineId)
          let machineId = runners.get(address)?.machineId
          if (machineId === undefined || used.has(machineId)) {
            machineId = undefined
            for (let i = 0; i < machineIdSpace; i++) {
              const candidate = (machineIdCursor + i) % machineIdSpace
              if (!used.has(candidate)) {
                machineId = candidate
                break
              }
            }
            if (machineId === undefined) return undefined
            machineIdCursor = (machineId + 1) % machineIdSpace
          }
          runners.set(address, { runner, healthy, heartbeat: now, machineId })
          touchRegistry(now)
          return machineId
        }),
        (machineId) =>
          machineId === undefined
            ? Effect.fail(
              new PersistenceError({
                cause: new Error(`all ${machineIdSpace} machine ids are held by live runners`)
              })
            )
            : Effect.succeed(machineId)
      ),

    unregister: (address) =>
      atomically((now) => {
        runners.delete(address)
        for (const [other, entry] of runners) if (!isLive(entry, now)) runners.delete(other)
      }),

    setRunnerHealth: (address, healthy) =>
      atomically((now) => {
        const entry = runners.get(address)
        if (entry === undefined) return
        entry.healthy = healthy
        touchRegistry(now)
      }),

    acquire: (address, shardIds) =>
      atomically((now) => {
        const won: Array<string> = []
        for (const shardId of shardIds) {
          const owner = lockOwner(shardId, now)
          if (owner === undefined || owner === address) {
            locks.set(shardId, { owner: address, expiresAt: now + expirationMs })
            won.push(shardId)
          }
        }
        return won
      }),

    refresh: (address, shardIds) =>
      atomically((now) => {
        const entry = runners.get(address)
        if (entry !== undefined) {
          entry.heartbeat = now
          touchRegistry(now)
        }
        const kept: Array<string> = []
        for (const shardId of shardIds) {
          if (lockOwner(shardId, now) !== address) continue
          locks.set(shardId, { owner: address, expiresAt: now + expirationMs })
          kept.push(shardId)
        }
        return kept
      }),

    release: (address, shardId) =>
      atomically((now) => {
        if (lockOwner(shardId, now) === address) locks.delete(shardId)
      }),

    releaseAll: (address) =>
      atomically((now) => {
        for (const shardId of [...locks.keys()]) if (lockOwner(shardId, now) === address) locks.delete(shardId)
      })
  }
}

/** A fresh, empty storage; runners sharing it must share this one instance. */
export const make = (
  options: Options
): Effect.Effect<RunnerStorage.RunnerStorage["Type"], Cause.IllegalArgumentException> =>
  Effect.map(lockExpirationMillis(options.lockExpiration), (expirationMs) =>
    RunnerStorage.makeEncoded(makeEncoded(expirationMs)))

export const layer = (options: Options): Layer.Layer<RunnerStorage.RunnerStorage, Cause.IllegalArgumentException> =>
  Layer.effect(RunnerStorage.RunnerStorage, make(options))
