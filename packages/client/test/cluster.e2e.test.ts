/**
 * The SDK against a cluster of real Bun nodes over the real Redis (short
 * shard locks): the node a client is on is killed (-9) or frozen (SIGSTOP),
 * and the client moves to another node by itself, with a new ticket, its room
 * subscription restored from its last position, the messages it missed
 * delivered once and in order. A frozen node answers nothing: an rpc times
 * out on the client, and the heartbeat notices the dead connection.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../../../test/support/bunNode.ts"
import { isWeftError } from "../src/index.ts"
import { eventually, nextEvent, type Received, roomMessages, sdkClient, startCluster, stopAll, wsUrlOf } from "./support/nodes.ts"

let nodes: Array<RunningNode> = []
beforeAll(async () => {
  nodes = await startCluster("client", 3)
}, 60_000)
afterAll(stopAll)

const weft = { subscribe: ["room:*", "feed:*"], publish: ["room:*", "feed:*"] }
const unique = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 8)}`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Every position once, in order: one epoch, offsets strictly growing. */
const expectOnceInOrder = (received: ReadonlyArray<Received>) => {
  const epochs = new Set(received.map((entry) => entry.position?.epoch))
  expect(epochs.size).toBe(1)
  expect([...epochs][0]).toEqual(expect.any(String))
  const offsets = received.map((entry) => entry.position?.offset ?? -1)
  for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]!)
}

describe("the SDK on a cluster", () => {
  it("kill -9 of its node: it moves to the next node and misses nothing, with nothing twice", async () => {
    const [a, b, c] = nodes
    const room = `room:${unique("failover")}`
    const subscriber = sdkClient([wsUrlOf(a!), wsUrlOf(b!)], { sub: unique("sub"), weft }, {
      reconnect: { baseMs: 200, capMs: 1000 },
      heartbeat: { intervalMs: 500, timeoutMs: 2000 }
    })
    const publisher = sdkClient(wsUrlOf(c!), { sub: unique("pub"), weft })
    const [info] = await Promise.all([subscriber.client.connect(), publisher.client.connect()])
    expect(info.node).toBe("client-0")
    const { received, handler } = roomMessages()
    const sub = subscriber.client.subscribe(room, handler)
    await sub.ready

    // The publisher keeps publishing numbered messages; a publish may fail while the cluster fails over.
    let running = true
    const acked: Array<number> = []
    const publishing = (async () => {
      for (let n = 1; running && n < 10_000; n++) {
        await publisher.client.publish(room, n, { timeoutMs: 15_000 }).then(() => acked.push(n), () => undefined)
        await sleep(20)
      }
    })()
    try {
      await eventually("the subscriber receives", () => received.length >= 5)
      const restored = nextEvent(subscriber.client, "subscribed", (event) => event.channel === room && event.restored, 30_000)
      a!.kill("SIGKILL")
      const event = await restored
      expect(event).toMatchObject({ recovery: "ok", since: expect.objectContaining({ epoch: expect.any(String) }) })
      expect(subscriber.client.info?.node).toBe("client-1")
      const countAtRestore = received.length
      await eventually("messages keep coming after the move", () => received.length >= countAtRestore + 10, 20_000)
    } finally {
      running = false
      await publishing
    }
    await eventually("every acknowledged publish arrived", () => {
      const bodies = new Set(received.map((entry) => entry.body))
      return acked.every((n) => bodies.has(n))
    })
    expectOnceInOrder(received)
    const bodies = received.map((entry) => entry.body)
    expect(new Set(bodies).size).toBe(bodies.length)
    expect(bodies).toEqual([...bodies].sort((x, y) => Number(x) - Number(y)))
    // New ticket per attempt, each on the node of its attempt.
    expect(new Set(subscriber.tickets).size).toBe(subscriber.tickets.length)
    expect(subscriber.tickets.length).toBeGreaterThanOrEqual(2)
    expect(new URL(subscriber.socketUrls.at(-1)!).port).toBe(new URL(b!.url()).port)
    expect(subscriber.disconnects[0]?.code).toBe(1006)
    await Promise.all([subscriber.client.close(), publisher.client.close()])
  }, 60_000)

  it("SIGSTOP of its node: an rpc times out, the heartbeat notices, and it reconnects elsewhere", async () => {
    const [, b, c] = nodes
    // A plain fan-out channel: restoring it needs no room entity (a room on the frozen node waits for the cluster to fail over).
    const channel = `feed:${unique("frozen")}`
    const watcher = sdkClient([wsUrlOf(b!), wsUrlOf(c!)], { sub: unique("watch"), weft }, {
      heartbeat: { intervalMs: 200, timeoutMs: 1000 },
      reconnect: { baseMs: 200, capMs: 1000 },
      connectTimeoutMs: 3000
    })
    const publisher = sdkClient(wsUrlOf(c!), { sub: unique("pub"), weft })
    const [info] = await Promise.all([watcher.client.connect(), publisher.client.connect()])
    expect(info.node).toBe("client-1")
    const received: Array<unknown> = []
    await watcher.client.subscribe(channel, (message) => received.push(message.data)).ready
    await publisher.client.publish(channel, "before")
    await eventually("the watcher has the first message", () => received.length === 1)

    const restored = nextEvent(watcher.client, "subscribed", (event) => event.channel === channel && event.restored, 45_000)
    const dead = nextEvent(watcher.client, "disconnected", () => true, 10_000)
    b!.kill("SIGSTOP")
    const stoppedAt = Date.now()
    try {
      // The frozen node never answers: the client's own timeout.
      const timedOut = await watcher.client.rpc("conn.info", undefined, { timeoutMs: 300 }).catch((error: unknown) => error)
      expect(isWeftError(timedOut, "timeout")).toBe(true)
      expect(timedOut).toMatchObject({ code: 9000, origin: "client", method: "conn.info" })
      // No frame within 1 s of a ping: the connection is dead; closed by the client with 4000.
      const disconnected = await dead
      const detectedMs = Date.now() - stoppedAt
      expect(disconnected).toMatchObject({ code: 4000, reason: expect.stringContaining("no frame within 1000 ms") })
      expect(detectedMs).toBeLessThan(3000)
      await restored
      expect(watcher.client.info?.node).toBe("client-2")
      await publisher.client.publish(channel, "after")
      await eventually("the watcher has the message published after the move", () => received.length >= 2)
      expect(received).toEqual(["before", "after"])
      expect(new Set(watcher.tickets).size).toBe(watcher.tickets.length)
      expect(new URL(watcher.socketUrls.at(-1)!).port).toBe(new URL(c!.url()).port)
    } finally {
      b!.kill("SIGCONT")
      b!.kill("SIGKILL")
    }
    await Promise.all([watcher.client.close(), publisher.client.close()])
  }, 60_000)
})
