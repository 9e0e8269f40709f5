/**
 * Carries out one fault of a schedule on a chaos cluster and undoes it: a killed node is
 * started again, a paused one resumed, Redis started again, the delay taken away. Returns once
 * the fault is over (not once the cluster recovered: the caller checks that).
 */
import type { ChaosCluster } from "./chaosCluster.ts"
import type { Fault } from "./faultSchedule.ts"
import type { LatencyProxy } from "./latencyProxy.ts"
import type { RedisProcess } from "./redisProcess.ts"

export interface FaultTargets {
  readonly cluster: ChaosCluster
  readonly redis: RedisProcess
  readonly proxy: LatencyProxy
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const injectFault = async (fault: Fault, targets: FaultTargets): Promise<void> => {
  switch (fault.kind) {
    case "kill": {
      const node = targets.cluster.nodes[fault.node]!
      node.kill("SIGKILL")
      await node.current().exited
      await sleep(fault.downMs)
      await node.restart()
      return
    }
    case "pause": {
      const node = targets.cluster.nodes[fault.node]!
      node.pause()
      try {
        await sleep(fault.pausedMs)
      } finally {
        node.resume()
      }
      return
    }
    case "redis-restart":
      await targets.redis.stop("SIGKILL")
      try {
        await sleep(fault.downMs)
      } finally {
        await targets.redis.start()
      }
      return
    case "network-delay":
      targets.proxy.setDelay(fault.delayMs)
      try {
        await sleep(fault.forMs)
      } finally {
        targets.proxy.setDelay(0)
      }
      return
  }
}
