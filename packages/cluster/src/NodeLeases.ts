/**
 * Which node incarnations are alive. Each node keeps a lease (its current
 * incarnation, expiring after the lock expiration) refreshed every second;
 * anything that records where connections live (room presence, users) asks
 * here to clean up after a node that died, within the lease's lifetime.
 *
 * The embedded node is the whole cluster: only its own incarnation is alive.
 */
import { Context, Data, Duration, Effect, Layer, Schedule } from "effect"
import type { Scope } from "effect"
import { ActorMail, NodeId } from "./ActorMail.ts"
import { keyPrefix, Redis } from "./Redis.ts"

export class LeasesUnknown extends Data.TaggedError("LeasesUnknown")<{ readonly message: string }> {}

export interface NodeLeasesService {
  /**
   * For each node asked about, its live incarnation (absent: the node has no live lease).
   * Fails when the leases cannot be read: unknown is not dead, nobody should be cleaned up.
   */
  readonly alive: (nodes: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, string>, LeasesUnknown>
}

export class NodeLeases extends Context.Tag("@weft/cluster/NodeLeases")<NodeLeases, NodeLeasesService>() {}

/** `true` when `incarnation` of `node` is alive according to `leases`. */
export const isAlive = (leases: ReadonlyMap<string, string>, node: string, incarnation: string): boolean =>
  leases.get(node) === incarnation

export const layerMemory: Layer.Layer<NodeLeases, never, NodeId | ActorMail> = Layer.effect(
  NodeLeases,
  Effect.gen(function*() {
    const node = yield* NodeId
    const mail = yield* ActorMail
    const self = new Map([[node, mail.incarnation]])
    return { alive: (nodes) => Effect.succeed(new Map(nodes.flatMap((n) => (self.has(n) ? [[n, self.get(n)!] as const] : [])))) }
  })
)

export interface RedisOptions {
  readonly cluster: string
  /** How long a lease outlives its last refresh. */
  readonly ttl: Duration.DurationInput
}

const make = (options: RedisOptions): Effect.Effect<NodeLeasesService, never, Redis | NodeId | ActorMail | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis
    const node = yield* NodeId
    const mail = yield* ActorMail
    const key = (n: string) => `${keyPrefix(options.cluster)}node-lease:${n}`
    const ttlMs = Duration.toMillis(Duration.decode(options.ttl))
    const refresh = redis.use((client) => client.set(key(node), mail.incarnation, "PX", ttlMs)).pipe(
      Effect.catchAll((error) => Effect.logDebug(`node lease not refreshed: ${error.message}`))
    )
    yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(Duration.millis(Math.max(100, Math.floor(ttlMs / 3))))))
    // Gone at once on a graceful stop, rather than after the TTL.
    yield* Effect.addFinalizer(() => Effect.ignore(redis.use((client) => client.del(key(node)))))
    return {
      alive: (nodes) =>
        nodes.length === 0
          ? Effect.succeed(new Map())
          : redis.use((client) => client.mget(...nodes.map(key))).pipe(
            Effect.map((values) =>
              new Map(nodes.flatMap((n, i) => {
                const value = values[i]
                return typeof value === "string" ? [[n, value] as const] : []
              }))
            ),
            Effect.mapError((error) => new LeasesUnknown({ message: error.message }))
          )
    }
  })

export const layerRedis = (options: RedisOptions): Layer.Layer<NodeLeases, never, Redis | NodeId | ActorMail> =>
  Layer.scoped(NodeLeases, make(options))
