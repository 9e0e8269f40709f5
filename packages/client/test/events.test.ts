/**
 * The typed events against an in-memory socket that speaks the real codec:
 * `presence`, `notification` (user, room and broadcast), `read` and `signal`
 * from well-formed messages, besides the handlers and the `message` event;
 * malformed ones reported as errors; unknown kinds ignored; signals and
 * broadcasts routed without a subscription (and nothing else); no stored
 * notification twice, across a reconnect too.
 */
import type { ServerFrame } from "@weft/protocol"
import { describe, expect, it } from "vitest"
import type { ChannelMessage, NotificationEvent, Position, PresenceEvent, ReadEvent, SignalEvent, WeftError, WeftEvents } from "../src/index.ts"
import { flush, sentOfType } from "./support/fakes.ts"
import { advance, type Harness, harness } from "./support/harness.ts"

const at = (epoch: string, offset: number): Position => ({ epoch, offset })

/** Every typed event and `message` the client emits, by type, and the order of their types. */
const record = (h: Harness) => {
  const got = {
    order: [] as Array<keyof WeftEvents>,
    message: [] as Array<ChannelMessage>,
    presence: [] as Array<PresenceEvent>,
    notification: [] as Array<NotificationEvent>,
    read: [] as Array<ReadEvent>,
    signal: [] as Array<SignalEvent>
  }
  const listen = <K extends "message" | "presence" | "notification" | "read" | "signal">(type: K, into: Array<WeftEvents[K]>) =>
    h.client.on(type, (event) => {
      got.order.push(type)
      into.push(event)
    })
  listen("message", got.message)
  listen("presence", got.presence)
  listen("notification", got.notification)
  listen("read", got.read)
  listen("signal", got.signal)
  return got
}

/** Subscribes and acknowledges at once; returns what the handler receives. */
const subscribed = async (h: Harness, channel: string, position?: Position) => {
  const got: Array<ChannelMessage> = []
  const sub = h.client.subscribe(channel, (message) => got.push(message))
  const socket = h.ws.last()
  const frame = sentOfType(socket, "subscribe").find((f) => f.channel === channel)
  socket.receive({ type: "ack", id: frame!.id, ...(position === undefined ? {} : { position }) })
  await sub.ready
  return { sub, got }
}

const message = (channel: string, data: unknown, extra: Partial<Extract<ServerFrame, { readonly type: "message" }>> = {}): ServerFrame => ({
  type: "message",
  channel,
  data,
  at: 1_764_057_600_000,
  ...extra
})

const notification = (offset: number, id = `n-${offset}`): ServerFrame =>
  message("user:alice", { kind: "notification", id, type: "order.completed", data: { orderId: offset }, sender: "orders" }, {
    from: "orders",
    position: at("p2", offset),
    at: 1000 + offset
  })

describe("typed events from well-formed messages", () => {
  it("presence: join and leave on presence:room:<id>, besides the handler and the `message` event", async () => {
    const h = harness()
    await h.connectNow()
    const events = record(h)
    const { got } = await subscribed(h, "presence:room:general")
    const socket = h.ws.last()
    socket.receive(message("presence:room:general", { kind: "join", user: "bob", devices: 1 }, { at: 10 }))
    socket.receive(message("presence:room:general", { kind: "leave", user: "bob", devices: 0, extra: "ignored" }, { at: 20 }))
    const expected: Array<PresenceEvent> = [
      { room: "general", kind: "join", user: "bob", devices: 1, at: 10 },
      { room: "general", kind: "leave", user: "bob", devices: 0, at: 20 }
    ]
    expect(events.presence).toEqual(expected)
    expect(got.map((m) => m.data)).toEqual([{ kind: "join", user: "bob", devices: 1 }, { kind: "leave", user: "bob", devices: 0, extra: "ignored" }])
    // Each message: the `message` event first, then its typed event.
    expect(events.order).toEqual(["message", "presence", "message", "presence"])
    expect(h.errors).toEqual([])
  })

  it("on user:<me>: a notification (with its inbox position), a read and a signal", async () => {
    const h = harness()
    await h.connectNow()
    const events = record(h)
    const { got, sub } = await subscribed(h, "user:alice", undefined)
    const socket = h.ws.last()
    socket.receive(notification(12, "k-71052da0"))
    socket.receive(message("user:alice", { kind: "read", ids: ["k-71052da0"], unread: 0 }, { at: 2000 }))
    socket.receive(message("user:alice", { kind: "signal", data: { sdp: "v=0 ..." }, fromDevice: "phone" }, { from: "bob", at: 3000 }))
    socket.receive(message("user:alice", { kind: "signal", data: "no device" }, { from: "carol", at: 3001 }))
    const notifications: Array<NotificationEvent> = [
      { scope: "user", id: "k-71052da0", type: "order.completed", data: { orderId: 12 }, sender: "orders", position: at("p2", 12), at: 1012 }
    ]
    const reads: Array<ReadEvent> = [{ ids: ["k-71052da0"], unread: 0, at: 2000 }]
    const signals: Array<SignalEvent> = [
      { from: "bob", fromDevice: "phone", data: { sdp: "v=0 ..." }, at: 3000 },
      { from: "carol", data: "no device", at: 3001 }
    ]
    expect(events.notification).toEqual(notifications)
    expect(events.read).toEqual(reads)
    expect(events.signal).toEqual(signals)
    expect(got).toHaveLength(4)
    expect(sub.position).toEqual(at("p2", 12))
    expect(h.errors).toEqual([])
  })

  it("a room notification names the room; a broadcast arrives without any subscription", async () => {
    const h = harness()
    await h.connectNow()
    const events = record(h)
    await subscribed(h, "room:lobby", at("e", 3))
    const socket = h.ws.last()
    socket.receive(message("room:lobby", { kind: "notification", type: "sale", data: { off: 20 } }, { from: "shop", at: 5 }))
    // The room's own events are no typed event.
    socket.receive(message("room:lobby", { kind: "message", id: "e-4", body: "hi" }, { from: "bob", position: at("e", 4), at: 6 }))
    socket.receive(message("broadcast", { kind: "notification", type: "deploy", data: "v2" }, { from: "ops", at: 7 }))
    socket.receive(message("broadcast", { kind: "notification", type: "quiet", data: null }, { at: 8 }))
    const expected: Array<NotificationEvent> = [
      { scope: "room", room: "lobby", type: "sale", data: { off: 20 }, sender: "shop", at: 5 },
      { scope: "broadcast", type: "deploy", data: "v2", sender: "ops", at: 7 },
      { scope: "broadcast", type: "quiet", data: null, at: 8 }
    ]
    expect(events.notification).toEqual(expected)
    // Broadcasts are `message` events too, though nothing subscribed to them.
    expect(events.message.map((m) => m.channel)).toEqual([
      "room:lobby",
      "room:lobby",
      "broadcast",
      "broadcast"
    ])
    expect(h.errors).toEqual([])
  })

  it("speaks the same over JSON", async () => {
    const h = harness({ encoding: "json" })
    await h.connectNow()
    const events = record(h)
    h.ws.last().receive(message("user:alice", { kind: "signal", data: { ice: "candidate" } }, { from: "bob", at: 9 }))
    expect(events.signal).toEqual([{ from: "bob", data: { ice: "candidate" }, at: 9 }])
  })
})

describe("routing without a subscription", () => {
  it("signals on user:<me> reach the app unsubscribed; other user:<me> kinds, other users' channels and late messages do not", async () => {
    const h = harness()
    await h.connectNow()
    const events = record(h)
    const socket = h.ws.last()
    socket.receive(message("user:alice", { kind: "signal", data: 1 }, { from: "bob", at: 1 }))
    // Without a subscription these are late arrivals (after an unsubscribe): dropped.
    socket.receive(notification(1))
    socket.receive(message("user:alice", { kind: "read", ids: [], unread: 0 }, { at: 2 }))
    // Another user's channel is not this user's: no signal event, and dropped without a subscription.
    socket.receive(message("user:bob", { kind: "signal", data: 2 }, { from: "carol", at: 3 }))
    socket.receive(message("room:a", { kind: "notification", type: "t", data: 3 }, { at: 4 }))
    expect(events.order).toEqual(["message", "signal"])
    expect(events.message).toEqual([{ channel: "user:alice", data: { kind: "signal", data: 1 }, from: "bob", at: 1 }])
    expect(events.signal).toEqual([{ from: "bob", data: 1, at: 1 }])
    // Subscribed to someone else's channel (the JWT allows it): their signals are messages, not this user's signals.
    const { got } = await subscribed(h, "user:bob")
    socket.receive(message("user:bob", { kind: "signal", data: 4 }, { from: "carol", at: 5 }))
    expect(got.map((m) => m.data)).toEqual([{ kind: "signal", data: 4 }])
    expect(events.signal).toHaveLength(1)
    expect(h.errors).toEqual([])
  })

  it("a signal after unsubscribing user:<me> still arrives; a late notification does not", async () => {
    const h = harness()
    await h.connectNow()
    const events = record(h)
    const { sub } = await subscribed(h, "user:alice")
    const socket = h.ws.last()
    socket.receive(notification(1))
    const done = sub.unsubscribe()
    socket.receive({ type: "ack", id: sentOfType(socket, "unsubscribe")[0]!.id })
    await done
    socket.receive(notification(2))
    socket.receive(message("user:alice", { kind: "signal", data: "still" }, { from: "bob", at: 3 }))
    expect(events.notification.map((event) => (event.scope === "user" ? event.id : event.scope))).toEqual(["n-1"])
    expect(events.signal).toEqual([{ from: "bob", data: "still", at: 3 }])
  })
})

describe("malformed and unknown data", () => {
  it("a listed kind with the wrong shape is a protocol_error event (never a throw); the message still reaches handlers", async () => {
    const h = harness()
    await h.connectNow()
    const events = record(h)
    const presence = await subscribed(h, "presence:room:general")
    const user = await subscribed(h, "user:alice")
    await subscribed(h, "room:lobby")
    const socket = h.ws.last()
    const bad: Array<ServerFrame> = [
      message("presence:room:general", { kind: "join", user: 42, devices: 1 }),
      message("presence:room:general", { kind: "leave", user: "bob", devices: -1 }),
      message("presence:room:general", { kind: "join", user: "bob" }),
      // A stored notification needs its position (and id, type, sender).
      message("user:alice", { kind: "notification", id: "n", type: "t", data: 1, sender: "orders" }, { from: "orders" }),
      message("user:alice", { kind: "notification", type: "t", data: 1, sender: "orders" }, { position: at("p", 1) }),
      message("user:alice", { kind: "read", ids: "n-1", unread: 0 }),
      message("user:alice", { kind: "read", ids: ["n-1"], unread: 0.5 }),
      // A signal without its sender.
      message("user:alice", { kind: "signal", data: 1 }),
      message("user:alice", { kind: "signal", data: 1, fromDevice: 7 }, { from: "bob" }),
      message("room:lobby", { kind: "notification", data: 1 }),
      message("broadcast", { kind: "notification", type: ["not", "a", "string"] })
    ]
    for (const frame of bad) socket.receive(frame)
    expect(events.presence).toEqual([])
    expect(events.notification).toEqual([])
    expect(events.read).toEqual([])
    expect(events.signal).toEqual([])
    expect(h.errors).toHaveLength(bad.length)
    for (const [i, error] of h.errors.entries()) {
      const frame = bad[i]!
      expect(error).toMatchObject({ name: "protocol_error", code: 9006, origin: "client", channel: frame.type === "message" ? frame.channel : "" })
    }
    expect(h.errors[0]!.message).toContain(`a "join" event on presence:room:general has the wrong shape`)
    // The raw messages were delivered all the same: the app may read them itself.
    expect(presence.got).toHaveLength(3)
    expect(user.got).toHaveLength(6)
    expect(h.client.state).toBe("connected")
  })

  it("kinds it does not know, and data that is no event at all, are ignored without an error", async () => {
    const h = harness()
    await h.connectNow()
    const events = record(h)
    await subscribed(h, "presence:room:general")
    await subscribed(h, "user:alice")
    await subscribed(h, "room:lobby")
    const socket = h.ws.last()
    socket.receive(message("presence:room:general", { kind: "away", user: "bob" }))
    socket.receive(message("user:alice", { kind: "badge", count: 3 }))
    socket.receive(message("user:alice", "just a string"))
    socket.receive(message("room:lobby", { kind: "typing", device: "laptop" }, { from: "bob" }))
    socket.receive(message("room:lobby", { kind: 7 }))
    socket.receive(message("broadcast", { kind: "maintenance", at: "tonight" }))
    socket.receive(message("broadcast", new Uint8Array([1, 2])))
    expect(events.order).toEqual(Array(7).fill("message"))
    expect(h.errors).toEqual([])
  })

  it("a notification listener that throws is reported as handler_error and does not stop the others", async () => {
    const h = harness()
    await h.connectNow()
    const seen: Array<string> = []
    h.client.on("notification", () => {
      throw new Error("app bug")
    })
    h.client.on("notification", (event) => seen.push(event.type))
    h.ws.last().receive(message("broadcast", { kind: "notification", type: "deploy", data: 1 }))
    expect(seen).toEqual(["deploy"])
    expect(h.errors.map((error: WeftError) => error.name)).toEqual(["handler_error"])
  })
})

describe("stored notifications, once", () => {
  it("never emits a notification twice: on one connection, nor when the server replays after a reconnect", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 100 } })
    await h.connectNow()
    const events = record(h)
    await subscribed(h, "user:alice", at("p2", 0))
    let socket = h.ws.last()
    socket.receive(notification(1))
    socket.receive(notification(2))
    socket.receive(notification(2))
    socket.serverClose(1006)
    await flush()
    await advance(h, 100)
    socket = h.ws.last()
    socket.accept()
    await flush()
    const [again] = sentOfType(socket, "subscribe")
    expect(again).toMatchObject({ channel: "user:alice", since: at("p2", 2) })
    socket.receive({ type: "ack", id: again!.id, position: at("p2", 4), recovery: "ok" })
    // A server that replays too much (overlapping what was delivered) still gives each one once.
    for (const offset of [1, 2, 3, 4]) socket.receive(notification(offset))
    socket.receive(notification(5))
    const ids = events.notification.map((event) => (event.scope === "user" ? event.id : event.scope))
    expect(ids).toEqual(["n-1", "n-2", "n-3", "n-4", "n-5"])
    expect(events.message).toHaveLength(5)
    expect(h.errors).toEqual([])
  })
})
