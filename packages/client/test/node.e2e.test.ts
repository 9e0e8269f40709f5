/**
 * The SDK under Node (with `ws`) against a real Bun node: connect, subscribe,
 * publish and receive (a second client too, over JSON), typed errors from the
 * server, the offline queue's overflow, and a reconnect after the server
 * closes the socket: a new ticket, the room subscription restored from its
 * last position, the messages missed meanwhile delivered once and in order.
 *
 * `feed:*` channels are plain fan-out; `room:*` channels are the chat role's
 * rooms, with history and positions (their `data` is the room event,
 * `{kind: "message", id, body}` for a message).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../../../test/support/bunNode.ts"
import { type ChannelMessage, isWeftError, type Position, WeftError } from "../src/index.ts"
import { eventually, nextEvent, sdkClient, startSingleNode, stopAll, wsUrlOf } from "./support/nodes.ts"

// The server's heartbeat is 1 s: a client that stays silent is closed (4001) after 2 s.
let node: RunningNode
beforeAll(async () => {
  node = await startSingleNode(["--heartbeat-ms", "1000"])
}, 30_000)
afterAll(stopAll)

const rooms = { subscribe: ["feed:*", "room:*"], publish: ["feed:*", "room:*"] }
const unique = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 8)}`

/** The `body` of a room's `message` event, or undefined for other room events (typing...). */
const roomBody = (message: ChannelMessage): unknown =>
  typeof message.data === "object" && message.data !== null && "kind" in message.data && message.data.kind === "message" &&
    "body" in message.data
    ? message.data.body
    : undefined

describe("the SDK against a real node", () => {
  it("connects, subscribes, publishes and receives; a second client (over JSON) receives too", async () => {
    const alice = sdkClient(node.url(), { sub: "alice-basic", weft: { device: "laptop", ...rooms } })
    const bob = sdkClient(wsUrlOf(node), { sub: "bob-basic", weft: rooms }, { encoding: "json" })
    const info = await alice.client.connect()
    expect(info).toMatchObject({ user: "alice-basic", device: "laptop", heartbeat: 1000, url: wsUrlOf(node) })
    expect(info.conn).toMatch(/^conn\//)
    await bob.client.connect()
    const aliceGot: Array<unknown> = []
    const bobGot: Array<unknown> = []
    const subA = alice.client.subscribe("feed:basic", (message) => aliceGot.push(message.data))
    const subB = bob.client.subscribe("feed:basic", (message) => bobGot.push({ data: message.data, from: message.from }))
    await Promise.all([subA.ready, subB.ready])
    expect(subA.active).toBe(true)
    await expect(alice.client.publish("feed:basic", { text: "hello", n: 1 })).resolves.toEqual({})
    await bob.client.publish("feed:basic", ["from", "bob"])
    await eventually("both clients have both messages", () => aliceGot.length === 2 && bobGot.length === 2)
    expect(aliceGot).toEqual([{ text: "hello", n: 1 }, ["from", "bob"]])
    expect(bobGot).toEqual([{ data: { text: "hello", n: 1 }, from: "alice-basic" }, { data: ["from", "bob"], from: "bob-basic" }])
    // Bytes over msgpack stay bytes.
    await alice.client.publish("feed:basic", new Uint8Array([0xde, 0xad]))
    await eventually("the bytes arrive", () => aliceGot.length === 3)
    expect(aliceGot[2]).toEqual(new Uint8Array([0xde, 0xad]))
    await expect(alice.client.rpc("conn.info")).resolves.toMatchObject({ user: "alice-basic", subscriptions: ["feed:basic"] })
    await subA.unsubscribe()
    await expect(alice.client.rpc("conn.info")).resolves.toMatchObject({ subscriptions: [] })
    await bob.client.publish("feed:basic", "after unsubscribe")
    await eventually("bob has his own message", () => bobGot.length === 4)
    expect(aliceGot).toHaveLength(3)
    expect(alice.errors).toEqual([])
    expect(bob.errors).toEqual([])
  })

  it("maps the server's error frames to WeftError with the catalogue's code and name", async () => {
    const carol = sdkClient(node.url(), { sub: "carol-errors", weft: { subscribe: ["feed:*"] } })
    await carol.client.connect()
    const forbidden = carol.client.subscribe("secret:plans", () => undefined)
    const refusal = await forbidden.ready.catch((error: unknown) => error)
    expect(refusal).toBeInstanceOf(WeftError)
    expect(refusal).toMatchObject({ code: 2000, name: "forbidden", origin: "server", category: "channel", channel: "secret:plans" })
    const publish = await carol.client.publish("feed:x", 1).catch((error: unknown) => error)
    expect(publish).toMatchObject({ code: 2000, name: "forbidden", channel: "feed:x" })
    const rpc = await carol.client.rpc("no.such.method", { a: 1 }).catch((error: unknown) => error)
    expect(rpc).toMatchObject({ code: 4000, name: "unknown_method", category: "server", method: "no.such.method" })
    // The refused subscription is not kept: conn.info shows none.
    await expect(carol.client.rpc("conn.info")).resolves.toMatchObject({ subscriptions: [] })
  })

  it("offline queue overflow, drop-oldest: the oldest publishes are rejected with queue_full, the newest go out in order", async () => {
    const reader = sdkClient(node.url(), { sub: "reader-queue", weft: rooms })
    await reader.client.connect()
    const got: Array<unknown> = []
    await reader.client.subscribe("feed:queue-drop", (message) => got.push(message.data)).ready
    const writer = sdkClient(node.url(), { sub: "writer-queue", weft: rooms }, { offlineQueue: { max: 3, overflow: "drop-oldest" } })
    // Not connected yet: the publishes wait in the queue, which holds 3.
    const outcomes = [1, 2, 3, 4, 5].map((n) => writer.client.publish("feed:queue-drop", n).then(() => "acked", (error: unknown) => error))
    const dropped = await Promise.all(outcomes.slice(0, 2))
    for (const error of dropped) expect(isWeftError(error, "queue_full")).toBe(true)
    await writer.client.connect()
    expect(await Promise.all(outcomes.slice(2))).toEqual(["acked", "acked", "acked"])
    await eventually("the reader has the queued messages", () => got.length >= 3)
    expect(got).toEqual([3, 4, 5])
  })

  it("offline queue overflow, reject: publishes that find the queue full are rejected; the first ones go out", async () => {
    const reader = sdkClient(node.url(), { sub: "reader-queue2", weft: rooms })
    await reader.client.connect()
    const got: Array<unknown> = []
    await reader.client.subscribe("feed:queue-reject", (message) => got.push(message.data)).ready
    const writer = sdkClient(node.url(), { sub: "writer-queue2", weft: rooms }, { offlineQueue: { max: 3, overflow: "reject" } })
    const outcomes = [1, 2, 3, 4, 5].map((n) => writer.client.publish("feed:queue-reject", n).then(() => "acked", (error: unknown) => error))
    for (const error of await Promise.all(outcomes.slice(3))) expect(error).toMatchObject({ name: "queue_full", code: 9002 })
    await writer.client.connect()
    expect(await Promise.all(outcomes.slice(0, 3))).toEqual(["acked", "acked", "acked"])
    await eventually("the reader has the queued messages", () => got.length >= 3)
    expect(got).toEqual([1, 2, 3])
  })

  it("reconnects after the server closes the socket: new ticket, room restored from its position, missed messages once and in order", async () => {
    // No pings from this client: the server closes it (4001) after two of its 1 s heartbeats. It comes back 900 ms later.
    const dave = sdkClient(node.url(), { sub: "dave-reconnect", weft: rooms }, {
      heartbeat: false,
      reconnect: { baseMs: 1000, capMs: 1000 },
      random: () => 0.9
    })
    const erin = sdkClient(node.url(), { sub: "erin-reconnect", weft: rooms })
    await Promise.all([dave.client.connect(), erin.client.connect()])
    const room = `room:${unique("reconnect")}`
    const bodies: Array<unknown> = []
    const positions: Array<Position | undefined> = []
    const sub = dave.client.subscribe(room, (message) => {
      if (roomBody(message) === undefined) return
      bodies.push(roomBody(message))
      positions.push(message.position)
    })
    await sub.ready
    await erin.client.publish(room, "before")
    await eventually("dave has the first message", () => bodies.length === 1)

    const restored = nextEvent(dave.client, "subscribed", (event) => event.channel === room && event.restored, 10_000)
    await nextEvent(dave.client, "disconnected", () => true, 10_000)
    expect(dave.disconnects[0]).toMatchObject({ code: 4001 })
    // Published while dave is away: the server's history has them.
    for (const body of ["missed-1", "missed-2", "missed-3"]) await erin.client.publish(room, body)
    expect(dave.client.state).not.toBe("connected")
    const event = await restored
    expect(event).toMatchObject({ since: positions[0], recovery: "ok" })
    await erin.client.publish(room, "after")
    await eventually("dave has every message", () => bodies.length >= 5)
    expect(bodies).toEqual(["before", "missed-1", "missed-2", "missed-3", "after"])
    // Each once, in order: offsets grow one by one within the room's epoch.
    const epoch = positions[0]?.epoch
    expect(positions.map((position) => position?.epoch)).toEqual(Array(5).fill(epoch))
    const first = positions[0]?.offset ?? -1
    expect(positions.map((position) => position?.offset)).toEqual([0, 1, 2, 3, 4].map((n) => first + n))
    expect(sub.position).toEqual(positions[4])
    // A ticket per connection, each used once: the socket URLs carry them in order.
    expect(dave.tickets.length).toBeGreaterThanOrEqual(2)
    expect(new Set(dave.tickets).size).toBe(dave.tickets.length)
    expect(dave.socketUrls.map((url) => new URL(url).searchParams.get("ticket"))).toEqual(dave.tickets)
    expect(dave.states.map((state) => state.state)).toEqual(expect.arrayContaining(["connected", "reconnecting", "connecting"]))
    expect(dave.errors).toEqual([])
  })
})
