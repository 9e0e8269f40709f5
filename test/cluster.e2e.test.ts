/**
 * Three real Bun node processes over the real Redis: one activation per room
 * wherever it is asked from, and failover after `kill -9`.
 */
import IORedis from "ioredis"
import { afterAll, describe, expect, it } from "vitest"
import { type RunningNode, startListeningNode } from "./support/bunNode.ts"
import { freePort, redisUrl, uniqueCluster } from "./support/ports.ts"
import { type NodeReadiness, waitUntilSettled } from "./support/wait.ts"
import { connectAs, jwtSecret, makeJwt, requestTicket } from "./support/wsClient.ts"

const running: Array<RunningNode> = []
const cluster = uniqueCluster("e2e")
const lockExpirationMs = 2000

afterAll(async () => {
  for (const node of running) node.kill()
  const redis = new IORedis(redisUrl)
  const keys = await redis.keys(`weft:{${cluster}}:*`)
  if (keys.length > 0) await redis.del(...keys)
  await redis.quit()
})

interface RoomInfo {
  readonly room: string
  readonly runner: string
  readonly activation: string
}

const roomInfo = async (node: RunningNode, room: string): Promise<RoomInfo> => {
  const response = await fetch(`${node.url()}/v1/cluster/rooms/${room}`, { signal: AbortSignal.timeout(15_000) })
  if (response.status !== 200) throw new Error(`room info: HTTP ${response.status} ${await response.text()}`)
  return (await response.json()) as RoomInfo
}

const readiness = async (node: RunningNode): Promise<NodeReadiness> =>
  (await fetch(`${node.url()}/readyz`)).json() as Promise<NodeReadiness>

const settled = (nodes: ReadonlyArray<RunningNode>) => waitUntilSettled(() => Promise.all(nodes.map(readiness)))

describe("a cluster of three Bun node processes", () => {
  it("serves each room from one activation and fails over after kill -9", async () => {
    const runnerPorts = await Promise.all([freePort(), freePort(), freePort()])
    // Each node is registered for clean-up as soon as it starts, so a failed start leaks nothing.
    const nodes = await Promise.all(runnerPorts.map((runnerPort, i) =>
      startListeningNode([
        "--node-id", `e2e-${i}`,
        "--redis-url", redisUrl,
        "--cluster", cluster,
        "--runner-host", "127.0.0.1",
        "--runner-port", String(runnerPort),
        "--lock-expiration-ms", String(lockExpirationMs),
        "--jwt-secret", jwtSecret
      ]).then((node) => {
        running.push(node)
        return node
      })
    ))
    await settled(nodes)

    const infos = await Promise.all(nodes.map((node) => roomInfo(node, "general")))
    expect(new Set(infos.map((info) => info.activation)).size).toBe(1)
    const hostRunner = infos[0]!.runner
    const hostIndex = runnerPorts.findIndex((port) => hostRunner === `127.0.0.1:${port}`)
    expect(hostIndex).toBeGreaterThanOrEqual(0)

    const host = nodes[hostIndex]!
    host.kill("SIGKILL")
    const killedAt = Date.now()
    const survivors = nodes.filter((node) => node !== host)
    const after = await roomInfo(survivors[0]!, "general")
    const failoverMs = Date.now() - killedAt
    expect(after.runner).not.toBe(hostRunner)
    expect(after.activation).not.toBe(infos[0]!.activation)
    // Within the lock expiration plus the re-acquisition rounds (a generous margin for a loaded CI box).
    expect(failoverMs).toBeLessThan(lockExpirationMs + 10_000)
    const fromOther = await roomInfo(survivors[1]!, "general")
    expect(fromOther.activation).toBe(after.activation)
    await settled(survivors)
    const again = await Promise.all(survivors.map((node) => roomInfo(node, "general")))
    expect(new Set(again.map((info) => info.activation)).size).toBe(1)
  }, 90_000)
})

describe("roles chosen at start-up", () => {
  it("a gateway-only node serves clients while the chat and notification entities live on another node", async () => {
    const roleCluster = uniqueCluster("roles")
    const [frontPort, backPort] = await Promise.all([freePort(), freePort()])
    const common = ["--redis-url", redisUrl, "--cluster", roleCluster, "--runner-host", "127.0.0.1", "--jwt-secret", jwtSecret]
    const started = (node: RunningNode) => {
      running.push(node)
      return node
    }
    const [front, back] = await Promise.all([
      startListeningNode([...common, "--node-id", "front", "--runner-port", String(frontPort), "--roles", "gateway,auth"]).then(started),
      startListeningNode([...common, "--node-id", "back", "--runner-port", String(backPort), "--roles", "chat,notification"]).then(started)
    ])
    try {
      await settled([front, back])
      expect((await readiness(front)).shardGroups).toEqual([])
      expect([...(await readiness(back)).shardGroups].sort()).toEqual(["chat", "notification"])
      // Rooms are placed on the node with the chat role, whichever node is asked.
      const info = await roomInfo(front, "general")
      expect(info.runner).toBe(`127.0.0.1:${backPort}`)
      // The gateway registers connections with the user entity on the other node.
      const { client, welcome } = await connectAs(front.url(), { sub: "ada", weft: { subscribe: ["*"], publish: ["*"] } })
      expect(welcome.type === "welcome" && welcome.node).toBe("front")
      client.close()
      // The back node has no auth role: no ticket endpoint there.
      expect((await requestTicket(back.url(), await makeJwt({ sub: "ada" }))).status).toBe(404)
    } finally {
      const redis = new IORedis(redisUrl)
      const keys = await redis.keys(`weft:{${roleCluster}}:*`)
      if (keys.length > 0) await redis.del(...keys)
      await redis.quit()
    }
  }, 90_000)
})
