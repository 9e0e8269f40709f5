/**
 * The cluster layer's metrics, on Effect's `Metric` registry (the node renders
 * them at `/metrics`). @effect/cluster records its own beside them
 * (`effect_cluster_entities`, `effect_cluster_shards`, ...).
 *
 * Every series is tagged; `record*` keep one label array per label
 * combination (`Metric.unsafeUpdate` caches its registry hook by the array's
 * identity). Label values come from closed sets (entity types, storage
 * operations, outcomes, connection roles), so the caches stay small.
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"
import type { Exit } from "effect"

/**
 * Seconds a call to an entity took from the caller's side (placement, the node-to-node hop when
 * the entity lives elsewhere, its mailbox and handler), by `entity` type (`room`, `user`) and
 * `outcome` (`ok`, `error`: the entity's typed refusal or a transport failure, `timeout`,
 * `defect`, `interrupted`). Recorded by `Entities.withTimeout`, which bounds every call.
 */
export const entityCallDuration = Metric.histogram(
  "weft_entity_call_duration_seconds",
  MetricBoundaries.fromIterable([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Seconds an entity call took, seen by the caller, by entity type and outcome"
)

/**
 * Operations on the Redis runner registry and shard locks (`RedisRunnerStorage`), by
 * `operation` (`register`, `unregister`, `getRunners`, `setRunnerHealth`, `acquire`,
 * `refresh`, `release`, `releaseAll`) and `outcome` (`ok`, `error`).
 */
export const registryOperations = Metric.counter("weft_registry_operations_total", {
  description: "Runner registry and shard lock operations in Redis, by operation and outcome",
  incremental: true
})

/**
 * Redis errors on the node's connections, by `connection` (`commands`, `subscriber`) and
 * `source`: `connection` for each ioredis `error` event (a failed connect or a broken socket),
 * `command` for each command that failed (an error reply, a timeout, or refused while
 * disconnected).
 */
export const redisErrors = Metric.counter("weft_redis_errors_total", {
  description: "Redis connection errors and failed commands, by connection and source",
  incremental: true
})

export type CallOutcome = "ok" | "error" | "timeout" | "defect" | "interrupted"

const cache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

/** The label array for these pairs, the same array every time. */
const labels = (a: string, av: string, b: string, bv: string): ReadonlyArray<MetricLabel.MetricLabel> => {
  const id = `${a}\u0000${av}\u0000${b}\u0000${bv}`
  let found = cache.get(id)
  if (found === undefined) {
    found = [MetricLabel.make(a, av), MetricLabel.make(b, bv)]
    cache.set(id, found)
  }
  return found
}

/** The outcome of a finished call; `isTimeout` recognises the caller's own deadline error. */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>, isTimeout: (error: unknown) => boolean): CallOutcome => {
  if (exit._tag === "Success") return "ok"
  const cause = exit.cause
  // Decided on the cause's first reason: a failure, a defect or an interruption.
  let outcome: CallOutcome = "interrupted"
  const visit = (c: typeof cause): boolean => {
    switch (c._tag) {
      case "Fail":
        outcome = isTimeout(c.error) ? "timeout" : "error"
        return true
      case "Die":
        outcome = "defect"
        return true
      case "Sequential":
      case "Parallel":
        return visit(c.left) || visit(c.right)
      default:
        return false
    }
  }
  visit(cause)
  return outcome
}

/** An entity call of `entityType` ended with `outcome` after `seconds`. */
export const recordEntityCall = (entityType: string, outcome: CallOutcome, seconds: number): void =>
  entityCallDuration.unsafeUpdate(seconds, labels("entity", entityType, "outcome", outcome))

/** A registry operation ended. */
export const recordRegistryOperation = (operation: string, outcome: "ok" | "error"): void =>
  registryOperations.unsafeUpdate(1, labels("operation", operation, "outcome", outcome))

/** A Redis connection reported an error (`connection`) or one of its commands failed (`command`). */
export const recordRedisError = (connection: string, source: "connection" | "command"): void =>
  redisErrors.unsafeUpdate(1, labels("connection", connection, "source", source))
