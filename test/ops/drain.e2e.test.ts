/**
 * Graceful drain on real Bun nodes over the real Redis, with SDK clients:
 * SIGTERM turns readiness false and refuses new WebSockets, then tells every
 * client to come back elsewhere; the clients move to another node, restore
 * their room from its last position, and miss nothing, with nothing twice.
 * A rolling restart of a 3-node cluster (each node stopped with SIGTERM and
 * started again in turn) loses no acknowledged message.
 */
import { afterAll, describe, expect, it } from "vitest"
import {
  eventually,
  nextEvent,
  type Received,
  removeClusterKeys,
  roomMessages,
  sdkClient,
  stopAll as closeClients,
  wsUrlOf
} from "../../packages/client/test/support/nodes.ts"
import { type RunningNode, startListeningNode } from "../support/bunNode.ts"
import { freePort, redisUrl, uniqueCluster } from "../support/ports.ts"
import { allArrived, expectNothingLost, publishing } from "../support/publishing.ts"
import { waitUntil } from "../support/wait.ts"
import { isRefusal, jwtSecret, ticketFor, tryConnect, wsUrl } from "../support/wsClient.ts"

const running: Array<RunningNode> = []
const clusters: Array<string> = []

afterAll(async () => {
  await closeClients()
  for (const node of running.splice(0)) node.kill("SIGKILL")
  await removeClusterKeys(clusters.splice(0))
})

const weft = { subscribe: ["room:*"], publish: ["room:*"] }
const unique = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 8)}`

/** Node `i` of a cluster: the flags it was started with, so that it can be started again. */
interface ClusterNode {
  readonly args: ReadonlyArray<string>
  current: RunningNode
}

const start = async (args: ReadonlyArray<string>): Promise<RunningNode> => {
  const node = await startListeningNode(args)
  running.push(node)
  return node
}

const readiness = async (node: RunningNode): Promise<{ readonly status: number; readonly body: unknown }> => {
  const response = await fetch(`${node.url()}/readyz`, { signal: AbortSignal.timeout(5000) })
  return { status: response.status, body: await response.json() }
}

const waitReady = (node: RunningNode, timeoutMs = 40_000) =>
  waitUntil(`${node.url()} is ready`, async () => (await readiness(node)).status === 200, timeoutMs)

/** `count` nodes of one cluster, each on a fixed HTTP port (a restarted node comes back at the same URL). */
const startCluster = async (label: string, count: number, extra: ReadonlyArray<string> = []): Promise<Array<ClusterNode>> => {
  const cluster = uniqueCluster(label)
  clusters.push(cluster)
  const nodes = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const args = [
      "--jwt-secret", jwtSecret,
      "--node-id", `${label}-${i}`,
      "--port", String(await freePort()),
      "--redis-url", redisUrl,
      "--cluster", cluster,
      "--runner-host", "127.0.0.1",
      "--runner-port", String(await freePort()),
      "--lock-expiration-ms", "2000",
      ...extra
    ]
    return { args, current: await start(args) }
  }))
  await Promise.all(nodes.map((node) => waitReady(node.current)))
  return nodes
}

/** `expectNothingLost`, and every position of one epoch: the room's history was not started again by the moves. */
const expectNothingLostInOneEpoch = (received: ReadonlyArray<Received>, acked: ReadonlyArray<number>) => {
  expectNothingLost(received, acked)
  expect(new Set(received.map((entry) => entry.position?.epoch)).size).toBe(1)
}

describe("graceful drain", () => {
  it("SIGTERM: readiness goes false, new WebSockets are refused, clients move to the other node with no loss", async () => {
    const [a, b] = await startCluster("drain", 2, ["--drain-delay-ms", "1500"])
    const room = `room:${unique("drain")}`
    const options = { reconnect: { baseMs: 200, capMs: 1000 } }
    const subscribers = Array.from({ length: 3 }, () =>
      sdkClient([wsUrlOf(a!.current), wsUrlOf(b!.current)], { sub: unique("sub"), weft }, options))
    const publisher = sdkClient(wsUrlOf(b!.current), { sub: unique("pub"), weft })
    await Promise.all([...subscribers, publisher].map((recorded) => recorded.client.connect()))
    for (const subscriber of subscribers) expect(subscriber.client.info?.node).toBe("drain-0")
    const rooms = subscribers.map(() => roomMessages())
    await Promise.all(subscribers.map((subscriber, i) => subscriber.client.subscribe(room, rooms[i]!.handler).ready))

    const feed = publishing((n) => publisher.client.publish(room, n, { timeoutMs: 15_000 }))
    try {
      await eventually("the subscribers receive", () => rooms.every(({ received }) => received.length >= 5))
      const goodbyes = subscribers.map((subscriber) => nextEvent(subscriber.client, "goodbye", () => true, 20_000))
      const restored = subscribers.map((subscriber) =>
        nextEvent(subscriber.client, "subscribed", (event) => event.channel === room && event.restored, 40_000))
      const ticket = await ticketFor(a!.current.url(), { sub: unique("late"), weft })
      const node = a!.current
      node.kill("SIGTERM")

      // Within the drain delay: not ready, with the reason, and a new WebSocket is refused.
      await waitUntil("readiness goes false", async () => (await readiness(node)).status === 503, 5000)
      expect((await readiness(node)).body).toMatchObject({ ready: false, reasons: expect.arrayContaining(["draining"]) })
      const late = await tryConnect(wsUrl(node.url(), ticket), { protocols: ["weft.v1.msgpack"] })
      expect(isRefusal(late) ? late.status : "connected").toBe(503)

      for (const goodbye of await Promise.all(goodbyes)) {
        expect(goodbye).toMatchObject({ reason: "draining", reconnect: true })
        expect(goodbye.after).toBeGreaterThanOrEqual(0)
        expect(goodbye.after).toBeLessThan(10_000)
      }
      for (const event of await Promise.all(restored)) expect(event).toMatchObject({ recovery: "ok" })
      for (const subscriber of subscribers) {
        expect(subscriber.client.info?.node).toBe("drain-1")
        expect(subscriber.disconnects[0]?.code).toBe(1001)
      }
      expect(await node.exited).toEqual({ code: 0, signal: null })
      const counts = rooms.map(({ received }) => received.length)
      await eventually("messages keep coming after the move", () => rooms.every(({ received }, i) => received.length >= counts[i]! + 10), 20_000)
    } finally {
      await feed.stop()
    }
    expect(feed.acked.length).toBeGreaterThan(20)
    // The drain answers what was sent before the goodbye; the SDK holds what came after.
    expect(feed.failed).toEqual([])
    await eventually("every acknowledged publish arrived", () => allArrived(rooms, feed.acked))
    for (const { received } of rooms) expectNothingLostInOneEpoch(received, feed.acked)
  }, 120_000)

  it("a rolling restart of a 3-node cluster loses no acknowledged message", async () => {
    const nodes = await startCluster("rolling", 3)
    const urls = (first: number) => [0, 1, 2].map((k) => wsUrlOf(nodes[(first + k) % 3]!.current))
    const room = `room:${unique("rolling")}`
    const options = { reconnect: { baseMs: 200, capMs: 1000 } }
    // A subscriber starting on each node, and a publisher that moves like them.
    const subscribers = [0, 1, 2].map((i) => sdkClient(urls(i), { sub: unique("sub"), weft }, options))
    const publisher = sdkClient(urls(2), { sub: unique("pub"), weft }, options)
    await Promise.all([...subscribers, publisher].map((recorded) => recorded.client.connect()))
    const rooms = subscribers.map(() => roomMessages())
    await Promise.all(subscribers.map((subscriber, i) => subscriber.client.subscribe(room, rooms[i]!.handler).ready))

    const feed = publishing((n) => publisher.client.publish(room, n, { timeoutMs: 20_000 }))
    try {
      for (const node of nodes) {
        const before = feed.acked.length
        await eventually("publishes are acknowledged before the next restart", () => feed.acked.length >= before + 10, 40_000)
        node.current.kill("SIGTERM")
        expect(await node.current.exited).toEqual({ code: 0, signal: null })
        node.current = await start(node.args)
        await waitReady(node.current)
      }
      const after = feed.acked.length
      await eventually("publishes are acknowledged after the last restart", () => feed.acked.length >= after + 10, 40_000)
    } finally {
      await feed.stop()
    }
    await eventually("every acknowledged publish arrived everywhere", () => allArrived(rooms, feed.acked), 30_000)
    for (const { received } of rooms) expectNothingLostInOneEpoch(received, feed.acked)
    expect(feed.failed).toEqual([])
    // Every client was moved at least once by a drain (its node said goodbye).
    for (const recorded of [...subscribers, publisher]) expect(recorded.disconnects.some((event) => event.code === 1001)).toBe(true)
  }, 240_000)
})
