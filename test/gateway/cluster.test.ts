/**
 * Two Bun nodes in one cluster over the real Redis: a ticket from one node opens a WebSocket
 * on the other (once), and channel messages cross nodes exactly once, in the publisher's order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { type GatewayCluster, startGatewayCluster } from "../support/gatewayNodes.ts"
import type { ServerFrame } from "@weft/protocol"
import type { Claims } from "../support/jwt.ts"
import { waitUntil } from "../support/wait.ts"
import {
  type Client,
  closeAll,
  connectAs,
  connectWithTicket,
  type Encoding,
  isRefusal,
  ticketFor,
  tryConnect,
  wsUrl
} from "../support/wsClient.ts"

let cluster: GatewayCluster
let nodeA: RunningNode
let nodeB: RunningNode
const clients: Array<Client> = []

beforeAll(async () => {
  cluster = await startGatewayCluster("gw-cluster", 2)
  ;[nodeA, nodeB] = [cluster.nodes[0]!, cluster.nodes[1]!]
}, 60_000)

afterAll(async () => {
  await closeAll(clients)
  await cluster?.stop()
})

const topics: Claims["weft"] = { subscribe: ["topic:*"], publish: ["topic:*"] }

const open = async (node: RunningNode, sub: string, encoding: Encoding = "msgpack"): Promise<Client> => {
  const { client, welcome } = await connectAs(node.url(), { sub, weft: topics }, encoding)
  expect(welcome.node).toBe(node === nodeA ? "gw-cluster-0" : "gw-cluster-1")
  clients.push(client)
  return client
}

const subscribe = async (client: Client, id: number, channel: string): Promise<void> => {
  client.send({ type: "subscribe", id, channel })
  expect(await client.answer(id)).toEqual({ type: "ack", id })
}

const seqOf = (frame: ServerFrame): unknown =>
  frame.type === "message" && typeof frame.data === "object" && frame.data !== null && "seq" in frame.data ? frame.data.seq : undefined

/** The `seq` of every message received on `channel` so far, in order (frames stay in place). */
const sequence = (client: Client, channel: string): Array<unknown> =>
  client.frames.flatMap((frame) => (frame.type === "message" && frame.channel === channel ? [seqOf(frame)] : []))

describe("tickets across the cluster", () => {
  it("a ticket issued by node A opens a WebSocket on node B, and only once in the whole cluster", async () => {
    const ticket = await ticketFor(nodeA.url(), { sub: "roamer", weft: { device: "laptop" } })
    const { client, welcome } = await connectWithTicket(nodeB.url(), ticket)
    clients.push(client)
    expect(welcome).toMatchObject({ user: "roamer", device: "laptop", node: "gw-cluster-1", conn: expect.stringMatching(/^conn\/gw-cluster-1\//) })
    await client.ping(1)

    for (const node of [nodeA, nodeB]) {
      const again = await tryConnect(wsUrl(node.url(), ticket), { protocols: ["weft.v1.msgpack"] })
      if (!isRefusal(again)) again.terminate()
      expect(isRefusal(again) ? again.status : "opened").toBe(401)
    }
  })
})

describe("fan-out across nodes", () => {
  it("every subscriber, on either node, gets each of 100 messages exactly once and in the publisher's order", async () => {
    const channel = "topic:fanout"
    const onA = await open(nodeA, "sub-a")
    const onB = await open(nodeB, "sub-b", "json")
    const alsoOnB = await open(nodeB, "sub-b2")
    const publisher = await open(nodeA, "publisher")
    await subscribe(onA, 1, channel)
    await subscribe(onB, 1, channel)
    await subscribe(alsoOnB, 1, channel)

    const count = 100
    for (let seq = 0; seq < count; seq++) publisher.send({ type: "publish", id: seq, channel, data: { seq } })
    for (let seq = 0; seq < count; seq++) expect(await publisher.answer(seq)).toEqual({ type: "ack", id: seq })
    // A last message on the same channel: after it, everything published before it has arrived.
    publisher.send({ type: "publish", id: count, channel, data: { seq: "end" } })
    expect(await publisher.answer(count)).toEqual({ type: "ack", id: count })

    const expected = [...Array.from({ length: count }, (_, seq) => seq), "end"]
    for (const subscriber of [onA, onB, alsoOnB]) {
      await waitUntil("the last message arrives", async () => sequence(subscriber, channel).includes("end"), 15_000)
      expect(sequence(subscriber, channel)).toEqual(expected)
      for (const frame of subscriber.frames) expect(frame).toMatchObject({ type: "message", channel, from: "publisher" })
    }
  })

  it("a publish on node B reaches a subscriber on node A", async () => {
    const channel = "topic:b-to-a"
    const onA = await open(nodeA, "listener-a")
    const publisher = await open(nodeB, "talker-b", "json")
    await subscribe(onA, 1, channel)
    publisher.send({ type: "publish", id: 1, channel, data: { seq: 0, text: "from B" } })
    expect(await publisher.answer(1)).toEqual({ type: "ack", id: 1 })
    expect(await onA.nextOf("message")).toMatchObject({ channel, data: { seq: 0, text: "from B" }, from: "talker-b" })
  })

  it("after unsubscribe, no more messages of the channel arrive; the other subscriptions keep theirs", async () => {
    const channel = "topic:leaving"
    const control = "topic:control"
    const leaver = await open(nodeB, "leaver")
    const stayer = await open(nodeA, "stayer")
    const publisher = await open(nodeA, "announcer")
    await subscribe(leaver, 1, channel)
    await subscribe(leaver, 2, control)
    await subscribe(stayer, 1, channel)

    publisher.send({ type: "publish", id: 1, channel, data: { seq: "before" } })
    expect(await leaver.nextOf("message", (frame) => frame.channel === channel)).toMatchObject({ data: { seq: "before" } })

    leaver.send({ type: "unsubscribe", id: 3, channel })
    expect(await leaver.answer(3)).toEqual({ type: "ack", id: 3 })
    publisher.send({ type: "publish", id: 2, channel, data: { seq: "after" } })
    expect(await publisher.answer(2)).toEqual({ type: "ack", id: 2 })
    // Published after the message above, by the same node: it arrives after it would have.
    publisher.send({ type: "publish", id: 3, channel: control, data: { seq: "marker" } })
    expect(await leaver.nextOf("message", (frame) => frame.channel === control)).toMatchObject({ data: { seq: "marker" } })
    expect(sequence(leaver, channel)).toEqual([])
    // The message was published: the remaining subscriber got it.
    await waitUntil("the remaining subscriber gets the message", async () => sequence(stayer, channel).includes("after"), 10_000)
    expect(sequence(stayer, channel)).toEqual(["before", "after"])
  })
})
