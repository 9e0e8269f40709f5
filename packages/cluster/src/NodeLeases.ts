/**
 * Which node incarnations are alive. Each node keeps a lease (its current
 * incarnation, expiring after the lock expiration) refreshed every third of
 * it; anything that records where connections live (room presence, users)
 * asks here to clean up after a node that died, within the lease's lifetime.
 *
 * Each node also watches the cluster's leases (one read per refresh, for all
 * its entities) and tells `onDeparture` listeners when an incarnation that
 * was alive is gone, so that entities clean up when a node dies instead of
 * each asking Redis every second whether one did.
 *
 * The embedded node is the whole cluster: only its own incarnation is alive,
 * and nothing ever departs.
 */
import { Context, Data, Duration, Effect, Layer, Runtime, Schedule } from "effect"
import type { Scope } from "effect"
import { ActorMail, NodeId } from "./ActorMail.ts"
import { keyPrefix, reconnectBackoffCapMs, Redis } from "./Redis.ts"

export class LeasesUnknown extends Data.TaggedError("LeasesUnknown")<{ readonly message: string }> {}

export interface NodeLeasesService {
  /**
   * For each node asked about, its live incarnation (absent: the node has no live lease).
   * Fails when the leases cannot be read: unknown is not dead, nobody should be cleaned up.
   */
  readonly alive: (nodes: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, string>, LeasesUnknown>
  /** Hears, until the scope closes, the nodes whose live incarnation went away (died, or restarted). */
  readonly onDeparture: (listener: (nodes: ReadonlyArray<string>) => void) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Calls `listener`, until the scope closes, whenever this node finds that its own lease had
   * lapsed while Redis was up (the node was frozen, or cut off from Redis, past its lease): the
   * others took it for dead and dropped its connections from rooms and users, so whatever it
   * still holds must register again (the gateway sends its clients away to reconnect).
   */
  readonly onLapse: (listener: () => void) => Effect.Effect<void, never, Scope.Scope>
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
    return {
      alive: (nodes) => Effect.succeed(new Map(nodes.flatMap((n) => (self.has(n) ? [[n, self.get(n)!] as const] : [])))),
      onDeparture: () => Effect.void,
      // The embedded node's lease is itself: it never lapses.
      onLapse: () => Effect.void
    }
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
    // Every node that ever held a lease in the cluster, so a watcher knows which leases to read.
    const nodesKey = `${keyPrefix(options.cluster)}node-leases`
    const ttlMs = Duration.toMillis(Duration.decode(options.ttl))
    const lapseListeners = new Set<() => void>()
    let refreshedAt: number | undefined
    const refresh = Effect.gen(function*() {
      const replies = yield* redis.use((client) =>
        client.multi().get(key(node)).set(key(node), mail.incarnation, "PX", ttlMs).sadd(nodesKey, node).exec()
      )
      const previous = replies?.[0]?.[1]
      const lastRefreshAt = refreshedAt
      refreshedAt = Date.now()
      if (previous === mail.incarnation || lastRefreshAt === undefined) return
      // Our lease was gone. If Redis restarted meanwhile, every lease went with it and readers wait
      // for them to be renewed (`renewing`): nobody was dropped. If Redis was up all along, the
      // others saw us without a lease and cleaned up after us: our registrations are gone.
      const info = yield* redis.use((client) => client.info("server"))
      const uptimeMs = Number(/uptime_in_seconds:(\d+)/.exec(info)?.[1] ?? 0) * 1000
      if (uptimeMs < Date.now() - lastRefreshAt) return
      yield* Effect.logWarning("this node's lease had lapsed (frozen or cut off from Redis past it): the cluster took it for dead; its connections register again")
      for (const listener of lapseListeners) listener()
    }).pipe(
      Effect.catchAll((error) => Effect.logDebug(`node lease not refreshed: ${error.message}`))
    )
    const refreshMs = Math.max(100, Math.floor(ttlMs / 3))
    yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(Duration.millis(refreshMs))))
    // After Redis comes back from an outage longer than a lease (a restart loses every lease that
    // expired meanwhile), the live nodes renew theirs only as each reconnects (ioredis backs off up
    // to 2 s) and refreshes. Until they all had the chance, a missing lease is unknown, not dead:
    // otherwise the first sweep drops the presence and connections of nodes that are alive.
    const renewalMs = ttlMs + reconnectBackoffCapMs + refreshMs
    let connectedOnce = redis.client.status === "ready"
    let reconnectedAt: number | undefined
    const onReady = () => {
      if (connectedOnce) reconnectedAt = Date.now()
      connectedOnce = true
    }
    redis.client.on("ready", onReady)
    yield* Effect.addFinalizer(() => Effect.sync(() => redis.client.off("ready", onReady)))
    const renewing = () => reconnectedAt !== undefined && Date.now() - reconnectedAt < renewalMs
    // Gone at once on a graceful stop, rather than after the TTL.
    yield* Effect.addFinalizer(() => Effect.ignore(redis.use((client) => client.del(key(node)))))

    // Plain callbacks, not a subscription each: thousands of entities listen, and hear rarely.
    const departureListeners = new Set<(nodes: ReadonlyArray<string>) => void>()
    let known = new Map<string, string>()
    // Reads without a lease, per node: one gone that long is dropped from the set (bounded growth).
    const missing = new Map<string, number>()
    const forgetAfterReads = Math.ceil(3_600_000 / refreshMs)
    const watch = Effect.gen(function*() {
      // Just back from an outage, a missing lease means nothing yet (see `renewing`).
      if (renewing()) return
      const nodes = yield* redis.use((client) => client.smembers(nodesKey))
      const values = nodes.length === 0 ? [] : yield* redis.use((client) => client.mget(...nodes.map(key)))
      const current = new Map<string, string>()
      nodes.forEach((n, i) => {
        const value = values[i]
        if (typeof value === "string") {
          current.set(n, value)
          missing.delete(n)
        } else {
          missing.set(n, (missing.get(n) ?? 0) + 1)
        }
      })
      const gone = Array.from(known).filter(([n, incarnation]) => current.get(n) !== incarnation).map(([n]) => n)
      known = current
      if (gone.length > 0) for (const listener of departureListeners) listener(gone)
      const forgotten = Array.from(missing).filter(([, reads]) => reads >= forgetAfterReads).map(([n]) => n)
      if (forgotten.length > 0) {
        yield* redis.use((client) => client.srem(nodesKey, ...forgotten))
        for (const n of forgotten) missing.delete(n)
      }
    }).pipe(Effect.catchAll((error) => Effect.logDebug(`node leases not read: ${error.message}`)))
    yield* Effect.forkScoped(Effect.repeat(watch, Schedule.spaced(Duration.millis(refreshMs))))

    return {
      onDeparture: (listener) =>
        Effect.asVoid(
          Effect.acquireRelease(Effect.sync(() => departureListeners.add(listener)), () => Effect.sync(() => departureListeners.delete(listener)))
        ),
      onLapse: (listener) =>
        Effect.asVoid(Effect.acquireRelease(Effect.sync(() => lapseListeners.add(listener)), () => Effect.sync(() => lapseListeners.delete(listener)))),
      alive: (nodes) =>
        nodes.length === 0
          ? Effect.succeed(new Map())
          : redis.use((client) => client.mget(...nodes.map(key))).pipe(
            Effect.mapError((error) => new LeasesUnknown({ message: error.message })),
            Effect.flatMap((values) =>
              values.some((value) => typeof value !== "string") && renewing()
                ? Effect.fail(new LeasesUnknown({ message: "Redis came back a moment ago: leases are still being renewed" }))
                : Effect.succeed(
                  new Map(nodes.flatMap((n, i) => {
                    const value = values[i]
                    return typeof value === "string" ? [[n, value] as const] : []
                  }))
                )
            )
          )
    }
  })

export const layerRedis = (options: RedisOptions): Layer.Layer<NodeLeases, never, Redis | NodeId | ActorMail> =>
  Layer.scoped(NodeLeases, make(options))

/**
 * An entity's timer for cleaning up after dead nodes: runs `tick` (a message the entity sends
 * itself, so it takes its turn with the entity's other messages) as soon as a node that
 * `nodesInUse` lists departs, and every `every` while it lists any, which also keeps the
 * activation from passivating while it holds connections. In the entity's scope.
 */
export const tickOnDepartures = (options: {
  readonly nodesInUse: () => ReadonlyArray<string>
  readonly every: Duration.DurationInput
  readonly tick: Effect.Effect<void>
}): Effect.Effect<void, never, NodeLeases | Scope.Scope> =>
  Effect.gen(function*() {
    const leases = yield* NodeLeases
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const whenInUse = (nodes?: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const inUse = options.nodesInUse()
        const affected = nodes === undefined ? inUse.length > 0 : nodes.some((node) => inUse.includes(node))
        return affected ? options.tick : Effect.void
      })
    // Called by the node-wide watcher; the tick it starts ends with its own timeout.
    yield* leases.onDeparture((nodes) => void runFork(whenInUse(nodes)))
    yield* Effect.forkScoped(Effect.repeat(whenInUse(), Schedule.spaced(options.every)))
  })
