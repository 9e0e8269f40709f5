/**
 * What every chaos scenario runs on: a redis-server of its own (behind the latency proxy when the
 * scenario injects latency), a chaos cluster on it, and a chat load of SDK clients on the cluster.
 * The load is labelled with the cluster's label and this process's id, so that two runs never
 * share users or rooms.
 *
 * `start` keeps each piece as soon as it is up, and `dispose` stops whatever is kept: a `start`
 * that failed, or a hook that timed out half way, still has its processes stopped and Redis's
 * directory removed. A test file gives `start` to `beforeAll` and `dispose` to `afterAll`; the
 * soak calls them around its run. Nothing here imports vitest: the soak runs under plain Bun.
 */
import { stopAll as closeClients } from "../../../packages/client/test/support/nodes.ts"
import { type ChaosCluster, type ChaosClusterOptions, startChaosCluster } from "./chaosCluster.ts"
import { type ChatLoad, type LoadOptions, startChatLoad } from "./chatLoad.ts"
import { type LatencyProxy, startLatencyProxy } from "./latencyProxy.ts"
import { within } from "./reaper.ts"
import { type RedisProcess, startRedisProcess } from "./redisProcess.ts"

export interface ScenarioOptions extends Omit<ChaosClusterOptions, "redisUrl"> {
  /** The nodes reach Redis through a latency proxy (for the latency fault) rather than directly. */
  readonly latencyProxy?: boolean
  /** The load's options, all but its label, for the cluster once it is up (its URLs). */
  readonly load: (cluster: ChaosCluster) => Omit<LoadOptions, "label">
}

export interface ChaosScenario {
  readonly start: () => Promise<void>
  /** Stops what `start` started, the pieces it got to at least; bounded where a close could hang. */
  readonly dispose: () => Promise<void>
  /** The pieces, once `start` got them (a call before that throws, naming the piece). */
  readonly redis: () => RedisProcess
  readonly proxy: () => LatencyProxy
  readonly cluster: () => ChaosCluster
  readonly load: () => ChatLoad
}

const started = <A>(piece: string, value: A | undefined): A => {
  if (value === undefined) throw new Error(`the chaos scenario has no ${piece}: not started, or started without one`)
  return value
}

export const chaosScenario = (options: ScenarioOptions): ChaosScenario => {
  const { latencyProxy = false, load: loadOptions, ...clusterOptions } = options
  let redis: RedisProcess | undefined
  let proxy: LatencyProxy | undefined
  let cluster: ChaosCluster | undefined
  let load: ChatLoad | undefined
  return {
    start: async () => {
      const server = await startRedisProcess()
      redis = server
      if (latencyProxy) proxy = await startLatencyProxy(server.port)
      const nodes = await startChaosCluster({ ...clusterOptions, redisUrl: proxy?.url ?? server.url })
      cluster = nodes
      load = await startChatLoad({ label: `${options.label}${process.pid}`, ...loadOptions(nodes) })
    },
    dispose: async () => {
      // Bounded: processes are killed whether or not the clients close in time.
      await within(20_000, Promise.all([load?.close(), closeClients()]))
      await cluster?.dispose()
      await proxy?.close()
      await redis?.dispose()
    },
    redis: () => started("redis", redis),
    proxy: () => started("latency proxy", proxy),
    cluster: () => started("cluster", cluster),
    load: () => started("load", load)
  }
}
