/**
 * Real Bun nodes for the gateway's end-to-end tests: a single node (in-memory registry) or a
 * cluster of nodes over the real Redis, started with the test JWT secret and waited on until
 * `/readyz` says they are doing work. Everything listens on 127.0.0.1.
 */
import IORedis from "ioredis"
import { readFileSync } from "node:fs"
import { type RunningNode, startNode } from "./bunNode.ts"
import { jwtSecret } from "./jwt.ts"
import { freePort, redisUrl, uniqueCluster } from "./ports.ts"
import { type NodeReadiness, waitUntil, waitUntilSettled } from "./wait.ts"

const isReadiness = (value: unknown): value is NodeReadiness =>
  typeof value === "object" && value !== null &&
  "ready" in value && typeof value.ready === "boolean" &&
  "shardsHeld" in value && typeof value.shardsHeld === "number" &&
  (!("shardGroups" in value) || Array.isArray(value.shardGroups))

/** The node's `/readyz` body. */
export const readiness = async (node: RunningNode): Promise<NodeReadiness> => {
  const response = await fetch(`${node.url()}/readyz`, { signal: AbortSignal.timeout(5000) })
  const body: unknown = await response.json()
  if (!isReadiness(body)) throw new Error(`unexpected /readyz body ${JSON.stringify(body)}`)
  return body
}

/** Whether the node answers `/healthz` with 200. */
export const isServing = async (node: RunningNode): Promise<boolean> => {
  if (node.process.exitCode !== null || node.process.signalCode !== null) return false
  const response = await fetch(`${node.url()}/healthz`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
  return response?.status === 200
}

/** `startListeningNode`, but a node that does not come up is killed rather than left running. */
const launch = async (args: ReadonlyArray<string>, started: Array<RunningNode> = []): Promise<RunningNode> => {
  const node = startNode(["--host", "127.0.0.1", "--port", "0", ...args])
  started.push(node)
  try {
    await node.waitForLog((line) => line.message === "listening")
  } catch (error) {
    node.kill()
    // The node logs its start-up failure as JSON on stdout: say what it was.
    const logged = node.logs.slice(-5).map((line) => JSON.stringify(line).slice(0, 500)).join("\n")
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nlast log lines:\n${logged}`)
  }
  return node
}

/** `launch`, then waits until `/readyz` is 200; a node that does not get there is killed. */
const launchReady = async (args: ReadonlyArray<string>): Promise<RunningNode> => {
  const node = await launch(args)
  try {
    await waitUntil(`${node.url()} is ready`, async () => (await readiness(node)).ready, 20_000)
  } catch (error) {
    node.kill()
    throw error
  }
  return node
}

/** Starts a node with `--jwt-secret <jwtSecret>` and the given flags, and waits until `/readyz` is 200. */
export const startGatewayNode = (args: ReadonlyArray<string>): Promise<RunningNode> => launchReady(["--jwt-secret", jwtSecret, ...args])

/** Kills the nodes (SIGKILL) and waits until they are gone. */
export const stopNodes = async (nodes: ReadonlyArray<RunningNode | undefined>): Promise<void> => {
  for (const node of nodes) node?.kill()
  await Promise.all(nodes.map((node) => node?.exited))
}

/** The node process's resident memory, in bytes (Linux). */
export const residentBytes = (node: RunningNode): number => {
  const status = readFileSync(`/proc/${node.process.pid}/status`, "utf8")
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error("no VmRSS in /proc/<pid>/status")
  return Number(match[1]) * 1024
}

export interface GatewayCluster {
  readonly cluster: string
  readonly nodes: ReadonlyArray<RunningNode>
  /** Kills the nodes and deletes the cluster's Redis keys. */
  readonly stop: () => Promise<void>
}

/** Deletes every Redis key of a cluster (`weft:{<cluster>}:*`). */
export const deleteClusterKeys = async (cluster: string): Promise<void> => {
  const redis = new IORedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    const keys = await redis.keys(`weft:{${cluster}}:*`)
    if (keys.length > 0) await redis.del(...keys)
  } finally {
    redis.disconnect()
  }
}

/** The flags of a node in `cluster` over the real Redis, as `startGatewayCluster` starts them. */
const clusterArgs = async (cluster: string, nodeId: string): Promise<ReadonlyArray<string>> => [
  "--jwt-secret", jwtSecret,
  "--node-id", nodeId,
  "--redis-url", redisUrl,
  "--cluster", cluster,
  "--runner-host", "127.0.0.1",
  "--runner-port", String(await freePort()),
  "--lock-expiration-ms", "2000"
]

/**
 * Starts one more node in an existing cluster (a restart, a scale-out) and waits until it is
 * ready; the caller stops it (it is not one of the cluster's `nodes`).
 */
export const joinCluster = async (cluster: string, nodeId: string, args: ReadonlyArray<string> = []): Promise<RunningNode> =>
  launchReady([...await clusterArgs(cluster, nodeId), ...args])

/**
 * Starts `count` nodes in one new cluster over the real Redis (`--lock-expiration-ms 2000`,
 * distinct runner ports) and waits until every node is ready and the shards have settled.
 */
export const startGatewayCluster = async (
  label: string,
  count: number,
  args: ReadonlyArray<string> = []
): Promise<GatewayCluster> => {
  const cluster = uniqueCluster(label)
  const nodes: Array<RunningNode> = []
  const started: Array<RunningNode> = []
  const stop = async () => {
    await stopNodes(started)
    await deleteClusterKeys(cluster)
  }
  try {
    // Ports one after the other: two probes at once could be handed the same free port.
    const flags: Array<ReadonlyArray<string>> = []
    for (let i = 0; i < count; i++) flags.push(await clusterArgs(cluster, `${label}-${i}`))
    const outcomes = await Promise.allSettled(flags.map(async (nodeFlags, i) => {
      nodes[i] = await launch([...nodeFlags, ...args], started)
    }))
    const failed = outcomes.find((result) => result.status === "rejected")
    if (failed !== undefined) throw failed.reason
    await waitUntilSettled(() => Promise.all(nodes.map(readiness)))
  } catch (error) {
    await stop()
    throw error
  }
  return { cluster, nodes, stop }
}
