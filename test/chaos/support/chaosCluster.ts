/**
 * A cluster of real Bun nodes for chaos scenarios, on a Redis of its own. Each node keeps its
 * HTTP and runner ports across restarts (a restarted node comes back at the same URL, as behind a
 * load balancer), so clients given every node's URL find it again. `dispose` kills every process
 * the cluster started, resuming paused ones first.
 */
import { type RunningNode, startNode } from "../../support/bunNode.ts"
import { readiness } from "../../support/gatewayNodes.ts"
import { jwtSecret } from "../../support/jwt.ts"
import { freePort, uniqueCluster } from "../../support/ports.ts"
import { parse, type Scrape } from "../../support/prometheus.ts"
import { type NodeReadiness, waitUntil, waitUntilSettled } from "../../support/wait.ts"
import { reap } from "./reaper.ts"

export interface ChaosNode {
  readonly id: string
  readonly httpUrl: string
  readonly wsUrl: string
  /** Its runner's address as the cluster names it (`host:port`). */
  readonly runner: string
  /** The process now (a new one after each restart). */
  readonly current: () => RunningNode
  /** Whether a process is running and not stopped by us (killed, exited or paused: not up). */
  readonly up: () => boolean
  readonly paused: () => boolean
  readonly kill: (signal?: NodeJS.Signals) => void
  readonly pause: () => void
  readonly resume: () => void
  /** Starts the node again with the same flags (after it exited) and waits until it listens. */
  readonly restart: () => Promise<RunningNode>
}

export interface ChaosCluster {
  readonly name: string
  readonly nodes: ReadonlyArray<ChaosNode>
  /** Every node's WebSocket URL, starting at node `first`: clients try them in turn. */
  readonly wsUrls: (first: number) => ReadonlyArray<string>
  /** Waits until the given nodes (default: those up) are ready and their shards stopped moving. */
  readonly settled: (nodes?: ReadonlyArray<ChaosNode>, timeoutMs?: number) => Promise<void>
  readonly dispose: () => Promise<void>
}

export interface ChaosClusterOptions {
  readonly label: string
  readonly count: number
  /** What the nodes use as Redis: the scenario's own server, or a proxy in front of it. */
  readonly redisUrl: string
  readonly lockExpirationMs?: number
  readonly extraArgs?: ReadonlyArray<string>
}

export const startChaosCluster = async (options: ChaosClusterOptions): Promise<ChaosCluster> => {
  const name = uniqueCluster(options.label)
  const processes: Array<RunningNode> = []
  const nodes: Array<ChaosNode> = []
  // Ports one after the other: two probes at once could be handed the same free port.
  const ports: Array<{ readonly http: number; readonly runner: number }> = []
  for (let i = 0; i < options.count; i++) ports.push({ http: await freePort(), runner: await freePort() })
  const launch = async (args: ReadonlyArray<string>): Promise<RunningNode> => {
    // Flags later on the line win: the node's own `--port` replaces this `0`.
    const node = startNode(["--host", "127.0.0.1", "--port", "0", ...args])
    processes.push(node)
    reap(node.process)
    try {
      await node.waitForLog((line) => line.message === "listening", 30_000)
    } catch (error) {
      node.kill("SIGKILL")
      throw error
    }
    return node
  }
  const dispose = async () => {
    for (const node of processes) {
      node.kill("SIGCONT")
      node.kill("SIGKILL")
    }
    await Promise.all(processes.map((node) => node.exited))
  }
  try {
    await Promise.all(ports.map(async (port, i) => {
      const id = `${options.label}-${i}`
      const args = [
        "--jwt-secret", jwtSecret,
        "--node-id", id,
        "--port", String(port.http),
        "--redis-url", options.redisUrl,
        "--cluster", name,
        "--runner-host", "127.0.0.1",
        "--runner-port", String(port.runner),
        "--lock-expiration-ms", String(options.lockExpirationMs ?? 2000),
        ...(options.extraArgs ?? [])
      ]
      let current = await launch(args)
      let paused = false
      const alive = () => current.process.exitCode === null && current.process.signalCode === null
      const httpUrl = `http://127.0.0.1:${port.http}`
      nodes[i] = {
        id,
        httpUrl,
        wsUrl: `ws://127.0.0.1:${port.http}/v1/ws`,
        runner: `127.0.0.1:${port.runner}`,
        current: () => current,
        up: () => alive() && !paused,
        paused: () => paused,
        kill: (signal = "SIGKILL") => {
          if (paused) current.kill("SIGCONT")
          paused = false
          current.kill(signal)
        },
        pause: () => {
          current.kill("SIGSTOP")
          paused = true
        },
        resume: () => {
          current.kill("SIGCONT")
          paused = false
        },
        restart: async () => {
          if (alive()) throw new Error(`${id} is still running`)
          // The old process's port may linger for a moment after it exited.
          let attempts = 0
          for (;;) {
            try {
              current = await launch(args)
              break
            } catch (error) {
              if (++attempts >= 5) throw error
              await new Promise((resolve) => setTimeout(resolve, 500))
            }
          }
          return current
        }
      }
    }))
  } catch (error) {
    await dispose()
    throw error
  }
  const readinessOf = (list: ReadonlyArray<ChaosNode>): Promise<Array<NodeReadiness>> =>
    Promise.all(list.map((node) => readiness(node.current())))
  const settled = (list: ReadonlyArray<ChaosNode> = nodes.filter((node) => node.up()), timeoutMs = 60_000) =>
    waitUntilSettled(() => readinessOf(list), 300, timeoutMs)
  await settled(nodes).catch(async (error: unknown) => {
    await dispose()
    throw error
  })
  return {
    name,
    nodes,
    wsUrls: (first) => nodes.map((_, k) => nodes[(first + k) % nodes.length]!.wsUrl),
    settled,
    dispose
  }
}

/** The node's `/metrics`, parsed. */
export const scrape = async (node: ChaosNode): Promise<Scrape> => {
  const response = await fetch(`${node.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
  if (response.status !== 200) throw new Error(`${node.id} /metrics: HTTP ${response.status}`)
  return parse(await response.text())
}

/** The HTTP status of the node's `/readyz` (undefined when it does not answer within 2 s). */
export const readyStatus = async (node: ChaosNode): Promise<number | undefined> => {
  const response = await fetch(`${node.httpUrl}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined)
  return response?.status
}

export interface RoomActivation {
  readonly room: string
  readonly runner: string
  readonly activation: string
}

const isRoomActivation = (value: unknown): value is RoomActivation =>
  typeof value === "object" && value !== null &&
  "room" in value && typeof value.room === "string" &&
  "runner" in value && typeof value.runner === "string" &&
  "activation" in value && typeof value.activation === "string"

/** Where the room's activation lives, asked through `node` (`GET /v1/cluster/rooms/:id`). */
export const roomActivation = async (node: ChaosNode, room: string): Promise<RoomActivation> => {
  const response = await fetch(`${node.httpUrl}/v1/cluster/rooms/${encodeURIComponent(room)}`, { signal: AbortSignal.timeout(15_000) })
  const body: unknown = await response.json()
  if (response.status !== 200 || !isRoomActivation(body)) throw new Error(`room info ${room}: HTTP ${response.status} ${JSON.stringify(body)}`)
  return body
}

/** Waits until the node answers `/readyz` with `status`. */
export const waitReadyStatus = (node: ChaosNode, status: number, timeoutMs = 30_000): Promise<void> =>
  waitUntil(`${node.id} /readyz is ${status}`, async () => (await readyStatus(node)) === status, timeoutMs)
