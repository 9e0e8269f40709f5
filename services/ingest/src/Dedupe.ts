/**
 * Effectively once: the buses deliver at least once, and every event is run
 * through the service API's idempotency protocol (`@weft/api`'s
 * `Idempotency`) under its key (the envelope's `idempotencyKey`, else
 * `<source>:<bus message id>`), kept for the dedupe window. A redelivered or
 * republished event within the window is acknowledged without running again.
 *
 * Its own store, beside the service API's: the window is the ingest role's
 * (`--ingest-dedupe-window-ms`), and its keys are `weft:{<cluster>}:ingest:dedupe:<sha256>`
 * in the node's Redis (memory on a single node without Redis).
 */
import { Idempotency } from "@weft/api/server"
import { Redis as ClusterRedis } from "@weft/cluster"
import { Context, Effect, Layer, Option } from "effect"

export class Dedupe extends Context.Tag("@weft/ingest/Dedupe")<Dedupe, Idempotency.IdempotencyService>() {}

export interface Options {
  readonly cluster: string
  /** How long a delivered event's key is remembered. */
  readonly windowMs: number
  /**
   * How long an event being delivered holds its key: a copy redelivered meanwhile (its consumer
   * died or is slow) waits for the first at most `maxWaitMs`, then goes back to the bus.
   */
  readonly holdMs: number
  readonly maxWaitMs?: number
}

/** Every key this store writes for one cluster. */
export const keys = (cluster: string): Idempotency.Keys => {
  const prefix = `${ClusterRedis.keyPrefix(cluster)}ingest:dedupe:`
  return { prefix, pattern: `${prefix}*`, slot: (id) => `${prefix}${id}` }
}

const settings = (options: Options): Idempotency.Options => ({
  ttl: `${options.windowMs} millis`,
  pendingTtl: `${options.holdMs} millis`,
  maxWait: `${options.maxWaitMs ?? Math.min(2000, options.holdMs)} millis`
})

export const layerMemory = (options: Options): Layer.Layer<Dedupe> => Layer.sync(Dedupe, () => Idempotency.makeMemory(settings(options)))

export const layerRedis = (options: Options): Layer.Layer<Dedupe, never, ClusterRedis.Redis> =>
  Layer.effect(
    Dedupe,
    Effect.map(ClusterRedis.Redis, (redis) => Idempotency.makeEncoded(Idempotency.makeRedisEncoded(redis, keys(options.cluster)), settings(options)))
  )

/** In the node's Redis when it has one (a cluster), else in memory. */
export const layer = (options: Options): Layer.Layer<Dedupe> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.serviceOption(ClusterRedis.Redis),
      Option.match({
        onNone: () => layerMemory(options),
        onSome: (redis) => Layer.provide(layerRedis(options), Layer.succeed(ClusterRedis.Redis, redis))
      })
    )
  )
