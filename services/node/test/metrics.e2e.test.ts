/**
 * `GET /metrics` of real Bun nodes, scraped after real traffic and parsed as
 * Prometheus text: a single node (WebSocket clients in a room), a two-node
 * cluster over the real Redis (a gateway-only node whose rooms live on the
 * other node), and a node whose Redis goes away.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { type RunningNode, startListeningNode } from "../../../test/support/bunNode.ts"
import {
  deleteClusterKeys,
  type GatewayCluster,
  joinCluster,
  startGatewayCluster,
  startGatewayNode,
  stopNodes
} from "../../../test/support/gatewayNodes.ts"
import { jwtSecret } from "../../../test/support/jwt.ts"
import { freePort, type RedisServer, startRedisServer, uniqueCluster } from "../../../test/support/ports.ts"
import { parse, type Scrape } from "../../../test/support/prometheus.ts"
import { waitUntil } from "../../../test/support/wait.ts"
import { allRoles } from "../src/NodeConfig.ts"
import { type Claims, type Client, closeAll, connectAs, request } from "../../../test/support/wsClient.ts"

const nodes: Array<RunningNode> = []
const clusters: Array<GatewayCluster> = []
const clients: Array<Client> = []
const redisServers: Array<RedisServer> = []
afterEach(async () => {
  await closeAll(clients.splice(0))
})
afterAll(async () => {
  await stopNodes(nodes)
  await Promise.all(clusters.map((cluster) => cluster.stop()))
  await Promise.all(redisServers.map((server) => server.stop()))
})

const member = (sub: string): Claims => ({ sub, weft: { subscribe: ["room:*"], publish: ["room:*"] } })

const connect = async (node: RunningNode, sub: string): Promise<Client> => {
  const { client } = await connectAs(node.url(), member(sub))
  clients.push(client)
  return client
}

const scrapeText = async (node: RunningNode): Promise<{ readonly contentType: string | null; readonly text: string }> => {
  const response = await fetch(`${node.url()}/metrics`, { signal: AbortSignal.timeout(5000) })
  expect(response.status).toBe(200)
  return { contentType: response.headers.get("content-type"), text: await response.text() }
}

const scrape = async (node: RunningNode): Promise<Scrape> => parse((await scrapeText(node)).text)

const roomMessages = (client: Client, room: string): number =>
  client.frames.filter((frame) => frame.type === "message" && frame.channel === `room:${room}`).length

describe("/metrics on a single node", () => {
  it("counts connections, frames in and out, fan-out latency, actors by kind and the process", async () => {
    const node = await startGatewayNode(["--node-id", "metrics-single"])
    nodes.push(node)
    const room = "metrics-single"
    const members = await Promise.all(["ann", "bob", "cat"].map((sub) => connect(node, sub)))
    for (const client of members) {
      expect((await request(client, (id) => ({ type: "subscribe", id, channel: `room:${room}` }))).type).toBe("ack")
    }
    const published = 5
    for (let i = 0; i < published; i++) {
      expect((await request(members[0]!, (id) => ({ type: "publish", id, channel: `room:${room}`, data: { i } }))).type).toBe("ack")
    }
    await waitUntil("every member has every message", async () =>
      members.every((client) => roomMessages(client, room) === published))

    const { contentType, text } = await scrapeText(node)
    expect(contentType).toBe("text/plain; version=0.0.4; charset=utf-8")
    const metrics = parse(text)

    expect(metrics.type("weft_gateway_connections")).toBe("GAUGE")
    expect(metrics.total("weft_gateway_connections")).toBe(members.length)
    expect(metrics.type("weft_gateway_messages_in_total")).toBe("COUNTER")
    expect(metrics.total("weft_gateway_messages_in_total", { type: "subscribe" })).toBeGreaterThanOrEqual(members.length)
    expect(metrics.total("weft_gateway_messages_in_total", { type: "publish" })).toBeGreaterThanOrEqual(published)
    // One per recipient: every member got every message.
    expect(metrics.total("weft_gateway_messages_out_total", { type: "message" })).toBeGreaterThanOrEqual(published * members.length)
    expect(metrics.total("weft_gateway_messages_out_total", { type: "welcome" })).toBeGreaterThanOrEqual(members.length)
    expect(metrics.total("weft_gateway_messages_out_total", { type: "ack" })).toBeGreaterThanOrEqual(members.length + published)

    expect(metrics.type("weft_gateway_fanout_latency_seconds")).toBe("HISTOGRAM")
    expect(metrics.count("weft_gateway_fanout_latency_seconds")).toBeGreaterThanOrEqual(published)

    // Actors by kind: a connection actor per socket, and the room entity on this node.
    expect(metrics.total("weft_actors_alive", { kind: "conn" })).toBe(members.length)
    expect(metrics.total("weft_actor_messages_total", { kind: "conn" })).toBeGreaterThanOrEqual(members.length + published)
    // Sampled every second: the actor system's mailbox depths, @effect/cluster's entity gauge.
    await waitUntil("mailbox depths are sampled and the room entity is counted", async () => {
      const now = await scrape(node)
      return now.samples("weft_actor_mailbox_depth", { kind: "conn" }).length === 1 &&
        now.total("effect_cluster_entities", { type: "room" }) >= 1
    })
    // The room calls were local here, but timed all the same.
    expect(metrics.count("weft_entity_call_duration_seconds", { entity: "room", outcome: "ok" })).toBeGreaterThanOrEqual(
      members.length + published
    )

    expect(metrics.total("process_resident_memory_bytes")).toBeGreaterThan(0)
    expect(metrics.total("process_heap_used_bytes")).toBeGreaterThan(0)
    expect(metrics.total("process_cpu_seconds_total")).toBeGreaterThan(0)
    expect(metrics.total("process_start_time_seconds")).toBeGreaterThan(1_600_000_000)
    expect(metrics.samples("weft_event_loop_lag_seconds")).toHaveLength(1)
    expect(metrics.samples("weft_node_info")).toEqual([
      { labels: { node: "metrics-single", roles: allRoles.join(","), version: "0.1.0" }, value: 1 }
    ])

    // The gauges follow: a client leaves, and its connection and its actor are gone.
    members[2]!.close()
    await members[2]!.closed
    await waitUntil("the connection gauge went down", async () => {
      const now = await scrape(node)
      return now.total("weft_gateway_connections") === members.length - 1 &&
        now.total("weft_actors_alive", { kind: "conn" }) === members.length - 1
    })
  }, 60_000)
})

describe("/metrics in a cluster over Redis", () => {
  it("times entity calls to a room on another node, and counts registry operations", async () => {
    const cluster = await startGatewayCluster("metrics", 1)
    clusters.push(cluster)
    // A gateway-only node: every room it uses lives on the other node.
    const gateway = await joinCluster(cluster.cluster, "metrics-gateway", ["--roles", "gateway,auth"])
    nodes.push(gateway)
    const room = "metrics-remote"
    const [alice, bruno] = await Promise.all(["alice", "bruno"].map((sub) => connect(gateway, sub)))
    for (const client of [alice!, bruno!]) {
      expect((await request(client, (id) => ({ type: "subscribe", id, channel: `room:${room}` }))).type).toBe("ack")
    }
    const published = 3
    for (let i = 0; i < published; i++) {
      expect((await request(alice!, (id) => ({ type: "publish", id, channel: `room:${room}`, data: { i } }))).type).toBe("ack")
    }
    await waitUntil("both members have every message", async () =>
      [alice!, bruno!].every((client) => roomMessages(client, room) === published))

    const metrics = await scrape(gateway)
    // Two joins and three sends, each a call to the room on the other node.
    const calls = metrics.distributions("weft_entity_call_duration_seconds", { entity: "room", outcome: "ok" })
    expect(calls).toHaveLength(1)
    expect(calls[0]!.count).toBeGreaterThanOrEqual(2 + published)
    expect(calls[0]!.sum).toBeGreaterThan(0)
    expect(calls[0]!.buckets.at(-1)).toEqual([Number.POSITIVE_INFINITY, calls[0]!.count])
    // The room's messages crossed over Redis and were fanned out here.
    expect(metrics.count("weft_gateway_fanout_latency_seconds")).toBeGreaterThanOrEqual(published)
    expect(metrics.total("weft_gateway_messages_out_total", { type: "message" })).toBeGreaterThanOrEqual(2 * published)
    // The runner registered and keeps refreshing its registration and shard locks.
    expect(metrics.total("weft_registry_operations_total", { operation: "register", outcome: "ok" })).toBeGreaterThanOrEqual(1)
    expect(metrics.total("weft_registry_operations_total", { operation: "refresh", outcome: "ok" })).toBeGreaterThan(0)
    expect(metrics.samples("weft_node_info")[0]?.labels).toEqual({ node: "metrics-gateway", roles: "gateway,auth", version: "0.1.0" })
    // No room lives on the gateway-only node.
    expect(metrics.total("effect_cluster_entities", { type: "room" })).toBe(0)

    await waitUntil("the room entity is counted on the chat node", async () =>
      (await scrape(cluster.nodes[0]!)).total("effect_cluster_entities", { type: "room" }) >= 1)
    const chat = await scrape(cluster.nodes[0]!)
    expect(chat.total("weft_registry_operations_total", { operation: "acquire", outcome: "ok" })).toBeGreaterThan(0)
  }, 90_000)

  it("counts Redis errors: connection errors and failed commands when Redis goes away", async () => {
    const redis = await startRedisServer()
    redisServers.push(redis)
    const clusterName = uniqueCluster("metrics-redis")
    const node = await startListeningNode([
      "--jwt-secret", jwtSecret,
      "--node-id", "metrics-redis",
      "--redis-url", redis.url,
      "--cluster", clusterName,
      "--runner-host", "127.0.0.1",
      "--runner-port", String(await freePort()),
      "--lock-expiration-ms", "2000"
    ])
    nodes.push(node)
    await waitUntil("the node is registered", async () =>
      (await scrape(node)).total("weft_registry_operations_total", { operation: "register", outcome: "ok" }) >= 1)
    const errorsBefore = (await scrape(node)).total("weft_redis_errors_total")

    await redis.stop()
    await waitUntil("connection errors and failed commands are counted", async () => {
      const now = await scrape(node)
      return now.total("weft_redis_errors_total", { connection: "commands", source: "connection" }) > 0 &&
        now.total("weft_redis_errors_total", { connection: "commands", source: "command" }) > 0 &&
        now.total("weft_registry_operations_total", { outcome: "error" }) > 0
    }, 30_000)
    expect((await scrape(node)).total("weft_redis_errors_total")).toBeGreaterThan(errorsBefore)
    node.kill()
    await node.exited
    await redis.start()
    await deleteClusterKeys(clusterName).catch(() => undefined)
  }, 90_000)
})
