/**
 * Rooms across real Bun nodes over the real Redis: presence with users on
 * several devices and nodes, presence clean-up after a node is killed, and
 * many users in many rooms receiving every message exactly once, in order.
 */
import { afterAll, describe, expect, it } from "vitest"
import { type GatewayCluster, startGatewayCluster } from "../support/gatewayNodes.ts"
import type { RunningNode } from "../support/bunNode.ts"
import { waitUntil } from "../support/wait.ts"
import { type Claims, type Client, closeAll, connectAs, request } from "../support/wsClient.ts"

const clusters: Array<GatewayCluster> = []
const clients: Array<Client> = []
afterAll(async () => {
  await closeAll(clients)
  await Promise.all(clusters.map((cluster) => cluster.stop()))
})

const member = (sub: string, device?: string): Claims => ({
  sub,
  weft: { subscribe: ["room:*", "presence:room:*"], publish: ["room:*"], ...(device === undefined ? {} : { device }) }
})

const connect = async (node: RunningNode, claims: Claims) => {
  const { client } = await connectAs(node.url(), claims)
  clients.push(client)
  return client
}

const presence = async (client: Client, room: string): Promise<Record<string, number>> => {
  const reply = await request(client, (id) => ({ type: "rpc", id, method: "room.presence", params: { room } }))
  if (reply.type !== "reply" || !Array.isArray(reply.result)) throw new Error(`presence: ${JSON.stringify(reply)}`)
  return Object.fromEntries(reply.result.map((entry: { user: string; devices: number }) => [entry.user, entry.devices]))
}

const presenceEvents = (client: Client, room: string): Array<{ kind: string; user: string }> =>
  client.frames.flatMap((frame) =>
    frame.type === "message" && frame.channel === `presence:room:${room}` && typeof frame.data === "object" &&
      frame.data !== null && "kind" in frame.data && "user" in frame.data
      ? [{ kind: String(frame.data.kind), user: String(frame.data.user) }]
      : []
  )

describe("presence across nodes", () => {
  it("a user with devices on two nodes joins once and leaves when the last device leaves", async () => {
    const cluster = await startGatewayCluster("presence", 2)
    clusters.push(cluster)
    const [a, b] = cluster.nodes as [RunningNode, RunningNode]
    const watcher = await connect(a, member("watcher"))
    expect((await request(watcher, (id) => ({ type: "subscribe", id, channel: "presence:room:multi" }))).type).toBe("ack")

    const phone = await connect(a, member("uma", "phone"))
    const laptop = await connect(b, member("uma", "laptop"))
    expect((await request(phone, (id) => ({ type: "subscribe", id, channel: "room:multi" }))).type).toBe("ack")
    expect((await request(laptop, (id) => ({ type: "subscribe", id, channel: "room:multi" }))).type).toBe("ack")
    expect(await presence(watcher, "multi")).toEqual({ uma: 2 })

    await request(phone, (id) => ({ type: "unsubscribe", id, channel: "room:multi" }))
    expect(await presence(watcher, "multi")).toEqual({ uma: 1 })
    laptop.close()
    await waitUntil("uma left", async () => JSON.stringify(await presence(watcher, "multi")) === "{}")
    await waitUntil("the leave event arrived", async () => presenceEvents(watcher, "multi").some((e) => e.kind === "leave"))
    expect(presenceEvents(watcher, "multi")).toEqual([{ kind: "join", user: "uma" }, { kind: "leave", user: "uma" }])
  }, 90_000)

  it("cleans up the presence of a node killed with kill -9, with leave events", async () => {
    const cluster = await startGatewayCluster("cleanup", 2)
    clusters.push(cluster)
    const [a, b] = cluster.nodes as [RunningNode, RunningNode]
    const watcher = await connect(a, member("watcher"))
    await request(watcher, (id) => ({ type: "subscribe", id, channel: "presence:room:doomed" }))
    // Watch from a room channel on the surviving node too.
    await request(watcher, (id) => ({ type: "subscribe", id, channel: "room:doomed" }))
    const victims = await Promise.all(["vic", "val"].map((user) => connect(b, member(user))))
    for (const victim of victims) await request(victim, (id) => ({ type: "subscribe", id, channel: "room:doomed" }))
    expect(await presence(watcher, "doomed")).toEqual({ watcher: 1, vic: 1, val: 1 })

    b.kill("SIGKILL")
    // Within the lease TTL (2 s here) plus the room's re-activation if it lived on the dead node.
    await waitUntil("the dead node's users left", async () => {
      const now = await presence(watcher, "doomed")
      return JSON.stringify(now) === JSON.stringify({ watcher: 1 })
    }, 30_000)
    await waitUntil("leave events for both", async () => {
      const left = presenceEvents(watcher, "doomed").filter((e) => e.kind === "leave").map((e) => e.user).sort()
      return JSON.stringify(left) === JSON.stringify(["val", "vic"])
    }, 30_000)
  }, 90_000)
})

describe("the seed scenario at test scale", () => {
  it("100 users in 10 rooms on 2 nodes: every message reaches every member once, in order per room", async () => {
    const cluster = await startGatewayCluster("seed", 2)
    clusters.push(cluster)
    const rooms = Array.from({ length: 10 }, (_, i) => `seed-${i}`)
    const users = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const client = await connect(cluster.nodes[i % 2]!, member(`user-${i}`))
      return { client, room: rooms[i % 10]! }
    }))
    await Promise.all(users.map(({ client, room }) => request(client, (id) => ({ type: "subscribe", id, channel: `room:${room}` }))))

    const perUser = 3
    await Promise.all(users.map(async ({ client, room }, i) => {
      for (let k = 0; k < perUser; k++) {
        const ack = await request(client, (id) => ({ type: "publish", id, channel: `room:${room}`, data: { user: i, k } }))
        expect(ack.type, JSON.stringify(ack)).toBe("ack")
      }
    }))

    const perRoom = (100 / rooms.length) * perUser
    const offsetsOf = (client: Client, room: string) =>
      client.frames.flatMap((frame) =>
        frame.type === "message" && frame.channel === `room:${room}` && frame.position !== undefined ? [frame.position.offset] : []
      )
    await waitUntil("every member has every message of its room", async () =>
      users.every(({ client, room }) => offsetsOf(client, room).length >= perRoom), 60_000)
    for (const { client, room } of users) {
      // Exactly once and in the room's order: offsets 1..30 with no gap or repeat.
      expect(offsetsOf(client, room)).toEqual(Array.from({ length: perRoom }, (_, i) => i + 1))
    }
    // Every member of a room saw the same sequence of senders (one order per room).
    for (const room of rooms) {
      const sequences = users.filter((user) => user.room === room).map(({ client }) =>
        client.frames.flatMap((frame) => frame.type === "message" && frame.channel === `room:${room}` ? [JSON.stringify(frame.data)] : [])
          .join("|")
      )
      expect(new Set(sequences).size).toBe(1)
    }
  }, 120_000)
})
