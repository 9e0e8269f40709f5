/**
 * This node as a member of the cluster: @effect/cluster's sharding with our
 * storage, transport and topics, chosen by one setting.
 *
 * - No Redis (the embedded default): one runner on the in-memory registry,
 *   topics in memory, no runner socket. The same Sharding, entities and
 *   clients as in a cluster; only the registry and transport differ.
 * - Redis: a socket runner (@effect/rpc over TCP, msgpack frames) registered
 *   in `RedisRunnerStorage`, topics over Redis pub/sub.
 *
 * @effect/cluster's defaults are tuned for batch work (a dead node's shards
 * wait 35 s); ours move them within a few seconds, see `defaults`.
 */
import {
  MessageStorage,
  RunnerAddress,
  RunnerHealth,
  Runners,
  RunnerStorage,
  Sharding,
  ShardingConfig,
  ShardId,
  SocketRunner
} from "@effect/cluster"
import { BunClusterSocket } from "@effect/platform-bun"
import type { SocketServer } from "@effect/platform"
import { RpcSerialization } from "@effect/rpc"
import type { ActorSystem } from "@weft/actor"
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import type { Cause } from "effect"
import * as ActorMail from "./ActorMail.ts"
import * as ClusterTopics from "./ClusterTopics.ts"
import * as MemoryRunnerStorage from "./MemoryRunnerStorage.ts"
import * as NodeLeases from "./NodeLeases.ts"
import * as Redis from "./Redis.ts"
import * as RedisRunnerStorage from "./RedisRunnerStorage.ts"

export interface Config {
  readonly nodeId: string
  /** Namespaces every Redis key and channel: several clusters (or test runs) can share one Redis. */
  readonly cluster: string
  /** `undefined`: the embedded single node. */
  readonly redis: Redis.RedisOptions | undefined
  /** Where other nodes reach this node's runner (in a cluster). */
  readonly runnerHost: string
  readonly runnerPort: number
  /** Interface the runner socket binds; defaults to `runnerHost`. */
  readonly runnerListenHost?: string
  readonly shardsPerGroup?: number
  /**
   * Shard groups: every group entities use anywhere in the cluster (`available`, the same on
   * every node) and the groups this node hosts (`assigned`: the groups of its roles).
   * Default: the one group `default`, hosted here.
   */
  readonly shardGroups?: { readonly available: ReadonlyArray<string>; readonly assigned: ReadonlyArray<string> }
  /** How long a dead node's shard locks live: bounds failover time. */
  readonly lockExpiration?: Duration.DurationInput
  readonly lockRefreshInterval?: Duration.DurationInput
  readonly refreshAssignmentsInterval?: Duration.DurationInput
  readonly entityMailboxCapacity?: number
  readonly entityMaxIdleTime?: Duration.DurationInput
}

/** Failover within ~3-5 s of a crash: locks expire after 3 s and are refreshed every second. */
export const defaults = {
  shardsPerGroup: 300,
  lockExpiration: "3 seconds",
  lockRefreshInterval: "1 second",
  refreshAssignmentsInterval: "1 second",
  entityMailboxCapacity: 4096,
  entityMaxIdleTime: "1 minute"
} as const

export interface Readiness {
  readonly ready: boolean
  /** What is wrong when not ready. */
  readonly reasons: ReadonlyArray<string>
  readonly mode: "embedded" | "redis"
  /** The shard groups this node hosts. */
  readonly shardGroups: ReadonlyArray<string>
  readonly shardsHeld: number
}

/**
 * Whether this node is doing cluster work: Redis answers, the runner's
 * heartbeat to the registry succeeded recently, and it holds shards.
 */
export class ClusterStatus extends Context.Tag("@weft/cluster/ClusterStatus")<ClusterStatus, {
  readonly readiness: Effect.Effect<Readiness>
}>() {}

const shardingConfig = (config: Config): Partial<ShardingConfig.ShardingConfig["Type"]> => ({
  runnerAddress: Option.some(RunnerAddress.make(config.runnerHost, config.runnerPort)),
  runnerListenAddress: config.runnerListenHost === undefined
    ? Option.none()
    : Option.some(RunnerAddress.make(config.runnerListenHost, config.runnerPort)),
  shardsPerGroup: config.shardsPerGroup ?? defaults.shardsPerGroup,
  availableShardGroups: config.shardGroups?.available ?? ["default"],
  assignedShardGroups: config.shardGroups?.assigned ?? ["default"],
  shardLockExpiration: Duration.decode(config.lockExpiration ?? defaults.lockExpiration),
  shardLockRefreshInterval: Duration.decode(config.lockRefreshInterval ?? defaults.lockRefreshInterval),
  refreshAssignmentsInterval: Duration.decode(config.refreshAssignmentsInterval ?? defaults.refreshAssignmentsInterval),
  entityMailboxCapacity: config.entityMailboxCapacity ?? defaults.entityMailboxCapacity,
  entityMaxIdleTime: Duration.decode(config.entityMaxIdleTime ?? defaults.entityMaxIdleTime),
  sendRetryInterval: Duration.millis(50),
  entityTerminationTimeout: Duration.seconds(5)
})

/** When the registry last answered this runner's heartbeat. */
class Heartbeat extends Context.Tag("@weft/cluster/ClusterNode/Heartbeat")<Heartbeat, {
  readonly last: () => number | undefined
}>() {}

/**
 * Wraps the storage to record each successful `refresh`, which Sharding calls
 * every lock refresh interval, even while holding no shards.
 */
const observed = Layer.effectContext(
  Effect.gen(function*() {
    const storage = yield* RunnerStorage.RunnerStorage
    let last: number | undefined
    const wrapped: RunnerStorage.RunnerStorage["Type"] = {
      ...storage,
      refresh: (address, shardIds) =>
        storage.refresh(address, shardIds).pipe(
          Effect.tap(() =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.sync(() => {
                last = now
              }))
          )
        )
    }
    return Context.make(RunnerStorage.RunnerStorage, wrapped).pipe(Context.add(Heartbeat, { last: () => last }))
  })
)

const statusLayer = <R>(config: Config, getRedis: Effect.Effect<Redis.RedisService | undefined, never, R>) =>
  Layer.effect(
    ClusterStatus,
    Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      const mail = yield* ActorMail.ActorMail
      const redis = yield* getRedis
      const heartbeat = yield* Effect.serviceOption(Heartbeat)
      const sharded = shardingConfig(config)
      const shards = (sharded.assignedShardGroups ?? []).flatMap((group) =>
        Array.from({ length: sharded.shardsPerGroup ?? defaults.shardsPerGroup }, (_, i) => ShardId.make(group, i + 1))
      )
      const staleAfter = 3 * Duration.toMillis(sharded.shardLockRefreshInterval ?? Duration.seconds(1))
      return {
        readiness: Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const reasons: Array<string> = []
          if (yield* sharding.isShutdown) reasons.push("shutting down")
          if (redis !== undefined && !redis.isReady()) {
            reasons.push(`redis not connected${redis.lastError() === undefined ? "" : `: ${redis.lastError()}`}`)
          }
          const last = Option.isSome(heartbeat) ? heartbeat.value.last() : undefined
          if (redis !== undefined && (last === undefined || now - last > staleAfter)) {
            reasons.push("runner heartbeat to the registry is stale")
          }
          if (!mail.isReady()) reasons.push("this node's topic is not subscribed yet")
          const shardsHeld = shards.filter((shard) => sharding.hasShardId(shard)).length
          // A node that hosts no entities (a gateway-only node) is ready without shards.
          if (shards.length > 0 && shardsHeld === 0) reasons.push("holds no shards yet")
          return {
            ready: reasons.length === 0,
            reasons,
            mode: redis === undefined ? "embedded" : "redis",
            shardGroups: sharded.assignedShardGroups ?? [],
            shardsHeld
          }
        })
      }
    })
  )

type Provided =
  | NodeLeases.NodeLeases
  | Sharding.Sharding
  | Runners.Runners
  | ClusterTopics.ClusterTopics
  | ActorMail.ActorMail
  | ActorMail.NodeId
  | ClusterStatus

/** The embedded single node: everything in memory, no runner socket. */
export const embedded = (config: Config): Layer.Layer<Provided, Cause.IllegalArgumentException, ActorSystem> => {
  const sharding = Sharding.layer.pipe(
    Layer.provideMerge(Runners.layerNoop),
    Layer.provide([
      MessageStorage.layerNoop,
      MemoryRunnerStorage.layer({ lockExpiration: config.lockExpiration ?? defaults.lockExpiration }),
      RunnerHealth.layerNoop
    ]),
    Layer.provide(ShardingConfig.layer(shardingConfig(config)))
  )
  return Layer.merge(statusLayer(config, Effect.succeed(undefined)), NodeLeases.layerMemory).pipe(
    Layer.provideMerge(ActorMail.layer),
    Layer.provideMerge(sharding),
    Layer.provideMerge(ClusterTopics.layerMemory()),
    Layer.provideMerge(Layer.succeed(ActorMail.NodeId, config.nodeId))
  )
}

/** A cluster member over Redis: socket runner with msgpack, Redis registry and topics; shares its Redis connection. */
export const overRedis = (
  config: Config,
  redis: Redis.RedisOptions
): Layer.Layer<Provided | Redis.Redis, Cause.IllegalArgumentException | SocketServer.SocketServerError, ActorSystem> => {
  const sharded = shardingConfig(config)
  const storage = observed.pipe(
    Layer.provide(RedisRunnerStorage.layer({ cluster: config.cluster, lockExpiration: config.lockExpiration ?? defaults.lockExpiration }))
  )
  const clientProtocol = BunClusterSocket.layerClientProtocol
  const sharding = SocketRunner.layer.pipe(
    Layer.provide([BunClusterSocket.layerSocketServer, clientProtocol]),
    Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(clientProtocol))),
    Layer.provide(MessageStorage.layerNoop),
    Layer.provideMerge(storage),
    Layer.provide(ShardingConfig.layer(sharded)),
    Layer.provide(RpcSerialization.layerMsgPack)
  )
  const leases = NodeLeases.layerRedis({ cluster: config.cluster, ttl: config.lockExpiration ?? defaults.lockExpiration })
  return Layer.merge(statusLayer(config, Redis.Redis), leases).pipe(
    Layer.provideMerge(ActorMail.layer),
    Layer.provideMerge(sharding),
    Layer.provideMerge(ClusterTopics.layerRedis({ cluster: config.cluster })),
    Layer.provideMerge(Layer.succeed(ActorMail.NodeId, config.nodeId)),
    Layer.provideMerge(Redis.layer({ ...redis, name: redis.name ?? config.nodeId }))
  )
}

/** This node's cluster membership, as configured. */
export const layer = (
  config: Config
): Layer.Layer<Provided, Cause.IllegalArgumentException | SocketServer.SocketServerError, ActorSystem> =>
  config.redis === undefined ? embedded(config) : overRedis(config, config.redis)
