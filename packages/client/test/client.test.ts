/**
 * The client against an in-memory socket that speaks the real codec:
 * requests and their answers, typed errors, timeouts, the offline queue,
 * positions (resubscribe with `since`, no message twice), heartbeats, and
 * frames it must ignore or report.
 */
import { Codec } from "@weft/protocol"
import { describe, expect, it } from "vitest"
import { type ChannelMessage, isWeftError, type Position, WeftError } from "../src/index.ts"
import { flush, sentOfType, welcomeFrame } from "./support/fakes.ts"
import { advance, harness } from "./support/harness.ts"

const settled = async <A>(promise: Promise<A>): Promise<{ readonly value?: A; readonly error?: unknown; readonly done: boolean }> => {
  let result: { value?: A; error?: unknown; done: boolean } = { done: false }
  promise.then((value) => (result = { value, done: true }), (error: unknown) => (result = { error, done: true }))
  await flush()
  return result
}

/** A fresh ArrayBuffer holding exactly these bytes (a Buffer's `.buffer` may be a larger shared pool). */
const bytesOf = (bytes: string | Uint8Array): ArrayBuffer => {
  if (typeof bytes === "string") throw new Error("expected bytes")
  return new Uint8Array(bytes).buffer
}

const at = (epoch: string, offset: number): Position => ({ epoch, offset })

describe("requests and answers", () => {
  it("publish resolves with the ack (and its position); rpc with the reply's result", async () => {
    const h = harness()
    await h.connectNow()
    const socket = h.ws.last()
    const published = h.client.publish("room:general", { text: "hi" })
    const withPosition = h.client.publish("room:general", undefined)
    const called = h.client.rpc("conn.info")
    const empty = h.client.rpc("chat.history", { limit: 2 })
    const [p1, p2] = sentOfType(socket, "publish")
    const [r1, r2] = sentOfType(socket, "rpc")
    expect(p1).toMatchObject({ channel: "room:general", data: { text: "hi" } })
    // `undefined` has no wire form: it is published as nil.
    expect(p2).toMatchObject({ channel: "room:general", data: null })
    expect(r1).toEqual({ type: "rpc", id: r1!.id, method: "conn.info" })
    expect(r2).toEqual({ type: "rpc", id: r2!.id, method: "chat.history", params: { limit: 2 } })
    expect(new Set([p1!.id, p2!.id, r1!.id, r2!.id]).size).toBe(4)
    // Answers in any order, matched by id.
    socket.receive({ type: "reply", id: r1!.id, result: { node: "node-a" } })
    socket.receive({ type: "ack", id: p2!.id, position: at("e", 7) })
    socket.receive({ type: "ack", id: p1!.id })
    // A reply without `result` (a method that returns nothing) reads as nil.
    socket.receiveRaw(bytesOf(Codec.encodeServerFrame({ type: "reply", id: r2!.id, result: undefined }, "msgpack")))
    await expect(published).resolves.toEqual({})
    await expect(withPosition).resolves.toEqual({ position: at("e", 7) })
    await expect(called).resolves.toEqual({ node: "node-a" })
    await expect(empty).resolves.toBe(null)
  })

  it("an error frame rejects with a WeftError carrying the catalogue code and name", async () => {
    const h = harness()
    await h.connectNow()
    const socket = h.ws.last()
    const publish = h.client.publish("secret:plans", 1)
    const rpc = h.client.rpc("nope")
    const [p] = sentOfType(socket, "publish")
    const [r] = sentOfType(socket, "rpc")
    socket.receive({ type: "error", id: p!.id, code: 2000, name: "forbidden", message: "not allowed to publish to secret:plans" })
    socket.receive({ type: "error", id: r!.id, code: 4999, name: "brand_new", message: "a code this SDK does not know" })
    const forbidden = await publish.catch((error: unknown) => error)
    expect(forbidden).toBeInstanceOf(WeftError)
    expect(forbidden).toMatchObject({ code: 2000, name: "forbidden", origin: "server", category: "channel", channel: "secret:plans" })
    expect(forbidden).toHaveProperty("message", "not allowed to publish to secret:plans")
    expect(await rpc.catch((error: unknown) => error)).toMatchObject({ code: 4999, name: "brand_new", category: "server", method: "nope" })
    // An error without an id answers nothing: it is an event.
    socket.receive({ type: "error", code: 1000, name: "malformed_frame", message: "not valid msgpack" })
    expect(h.errors).toEqual([expect.objectContaining({ code: 1000, name: "malformed_frame", origin: "server", category: "frame" })])
  })

  it("times out a request with no answer (client-side `timeout`), and ignores the late answer", async () => {
    const h = harness({ requestTimeoutMs: 1000 })
    await h.connectNow(welcomeFrame("node-a", 1_000_000))
    const socket = h.ws.last()
    const rpc = h.client.rpc("slow.method")
    const short = h.client.publish("room:a", 1, { timeoutMs: 200 })
    await advance(h, 199)
    expect((await settled(short)).done).toBe(false)
    await advance(h, 1)
    expect((await settled(short)).error).toMatchObject({ name: "timeout", code: 9000, origin: "client", category: "client" })
    await advance(h, 799)
    expect((await settled(rpc)).done).toBe(false)
    await advance(h, 1)
    const outcome = await settled(rpc)
    expect(isWeftError(outcome.error, "timeout")).toBe(true)
    socket.receive({ type: "reply", id: sentOfType(socket, "rpc")[0]!.id, result: "too late" })
    expect(h.errors).toEqual([])
    expect(h.client.state).toBe("connected")
  })

  it("rejects requests in flight with `disconnected` when the connection drops", async () => {
    const h = harness()
    await h.connectNow()
    const publish = h.client.publish("room:a", 1)
    const rpc = h.client.rpc("conn.info")
    h.ws.last().serverClose(1006)
    expect(await publish.catch((error: unknown) => error)).toMatchObject({ name: "disconnected", code: 9001 })
    expect(await rpc.catch((error: unknown) => error)).toMatchObject({ name: "disconnected" })
  })

  it("refuses what the server would refuse before sending: bad channel names, frames over maxFrameBytes", async () => {
    const h = harness()
    await h.connectNow(welcomeFrame("node-a", 25_000, 200))
    const socket = h.ws.last()
    expect(await h.client.publish("room general", 1).catch((error: unknown) => error)).toMatchObject({
      code: 2003,
      name: "invalid_channel",
      origin: "client"
    })
    expect(await h.client.publish("room:a", "x".repeat(500)).catch((error: unknown) => error)).toMatchObject({ name: "frame_too_large" })
    const sub = h.client.subscribe("no spaces", () => undefined)
    expect(await sub.ready.catch((error: unknown) => error)).toMatchObject({ name: "invalid_channel" })
    expect(socket.sent.filter((frame) => frame.type !== "ping")).toEqual([])
  })

  it("an aborted request leaves the queue, or stops waiting for its answer", async () => {
    const h = harness()
    const controller = new AbortController()
    const queued = h.client.publish("room:a", "never sent", { signal: controller.signal })
    const kept = h.client.publish("room:a", "sent")
    controller.abort()
    expect(await queued.catch((error: unknown) => error)).toMatchObject({ name: "aborted", code: 9004 })
    await h.connectNow()
    expect(sentOfType(h.ws.last(), "publish").map((frame) => frame.data)).toEqual(["sent"])
    const second = new AbortController()
    const inFlight = h.client.rpc("slow", undefined, { signal: second.signal })
    second.abort()
    expect(await inFlight.catch((error: unknown) => error)).toMatchObject({ name: "aborted" })
    h.ws.last().receive({ type: "ack", id: sentOfType(h.ws.last(), "publish")[0]!.id })
    await expect(kept).resolves.toEqual({})
  })
})

describe("the offline queue", () => {
  it("drop-oldest: the oldest queued publish is rejected with queue_full, the rest go out in order once connected", async () => {
    const h = harness({ offlineQueue: { max: 3, overflow: "drop-oldest" } })
    const results = [1, 2, 3, 4, 5].map((n) => h.client.publish("room:a", n).then(() => "acked", (error: unknown) => error))
    await flush()
    h.client.subscribe("room:b", () => undefined)
    await h.connectNow()
    const socket = h.ws.last()
    // Subscriptions first, then the queue in order.
    expect(socket.sent.map((frame) => frame.type)).toEqual(["subscribe", "publish", "publish", "publish"])
    const published = sentOfType(socket, "publish")
    expect(published.map((frame) => frame.data)).toEqual([3, 4, 5])
    for (const frame of published) socket.receive({ type: "ack", id: frame.id })
    const outcomes = await Promise.all(results)
    expect(outcomes.slice(2)).toEqual(["acked", "acked", "acked"])
    for (const dropped of outcomes.slice(0, 2)) expect(dropped).toMatchObject({ name: "queue_full", code: 9002, channel: "room:a" })
  })

  it("reject: a publish that finds the queue full is rejected at once; the queue keeps the first ones", async () => {
    const h = harness({ offlineQueue: { max: 3, overflow: "reject" } })
    const results = [1, 2, 3, 4, 5].map((n) => h.client.publish("room:a", n).then(() => "acked", (error: unknown) => error))
    const refused = await Promise.all(results.slice(3))
    for (const error of refused) expect(error).toMatchObject({ name: "queue_full" })
    await h.connectNow()
    expect(sentOfType(h.ws.last(), "publish").map((frame) => frame.data)).toEqual([1, 2, 3])
  })

  it("max 0: nothing is queued; a publish while disconnected is rejected with `disconnected`", async () => {
    const h = harness({ offlineQueue: { max: 0 } })
    expect(await h.client.publish("room:a", 1).catch((error: unknown) => error)).toMatchObject({ name: "disconnected" })
  })

  it("queues while reconnecting too, and rejects the queue when the client gives up or is closed", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 100, maxAttempts: 1 } })
    await h.connectNow()
    h.ws.last().serverClose(1006)
    await flush()
    expect(h.client.state).toBe("reconnecting")
    const waiting = h.client.publish("room:a", 1)
    await advance(h, 100)
    h.ws.last().refuse()
    expect(await waiting.catch((error: unknown) => error)).toMatchObject({ name: "connect_failed" })
    const c = harness()
    const queued = c.client.rpc("conn.info")
    await c.client.close()
    expect(await queued.catch((error: unknown) => error)).toMatchObject({ name: "closed", code: 9003 })
    expect(c.client.state).toBe("closed")
    expect(await c.client.publish("room:a", 1).catch((error: unknown) => error)).toMatchObject({ name: "closed" })
  })
})

describe("subscriptions and positions", () => {
  it("re-subscribes after a reconnect with `since` = the last delivered position, and never delivers a message twice", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 100 } })
    await h.connectNow()
    const received: Array<ChannelMessage> = []
    const seen: Array<unknown> = []
    h.client.on("message", (message) => seen.push(message.data))
    const subscribed: Array<unknown> = []
    h.client.on("subscribed", (event) => subscribed.push(event))
    const sub = h.client.subscribe("room:a", (message) => received.push(message))
    let socket = h.ws.last()
    const [first] = sentOfType(socket, "subscribe")
    expect(first).toEqual({ type: "subscribe", id: first!.id, channel: "room:a" })
    socket.receive({ type: "ack", id: first!.id, position: at("e1", 0) })
    await sub.ready
    expect(sub.active).toBe(true)
    const message = (offset: number, epoch = "e1") =>
      socket.receive({ type: "message", channel: "room:a", data: `${epoch}/${offset}`, from: "bob", position: at(epoch, offset), at: 1000 + offset })
    message(1)
    message(2)
    message(3)
    // A duplicate on the same connection is dropped too.
    message(2)
    expect(sub.position).toEqual(at("e1", 3))

    socket.serverClose(1006)
    await flush()
    expect(sub.active).toBe(false)
    await advance(h, 100)
    socket = h.ws.last()
    socket.accept()
    await flush()
    const [again] = sentOfType(socket, "subscribe")
    expect(again).toEqual({ type: "subscribe", id: again!.id, channel: "room:a", since: at("e1", 3) })
    socket.receive({ type: "ack", id: again!.id, position: at("e1", 5), recovery: "ok" })
    // The server replays after `since` (overlapping what was seen), then live messages follow.
    for (const offset of [2, 3, 4, 5, 6]) message(offset)
    // Without a position: delivered as is.
    socket.receive({ type: "message", channel: "room:a", data: "no position", at: 2000 })
    // A new epoch starts the count again.
    message(0, "e2")
    message(1, "e2")
    message(1, "e2")
    expect(received.map((m) => m.data)).toEqual(["e1/1", "e1/2", "e1/3", "e1/4", "e1/5", "e1/6", "no position", "e2/0", "e2/1"])
    expect(seen).toEqual(received.map((m) => m.data))
    expect(received[0]).toEqual({ channel: "room:a", data: "e1/1", from: "bob", position: at("e1", 1), at: 1001 })
    expect(subscribed).toEqual([
      { channel: "room:a", restored: false, position: at("e1", 0) },
      { channel: "room:a", restored: true, since: at("e1", 3), position: at("e1", 5), recovery: "ok" }
    ])
  })

  it("after a failed recovery, resumes from the position the server gave, not the stale one", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 100 } })
    await h.connectNow()
    const got: Array<unknown> = []
    const recoveries: Array<unknown> = []
    h.client.on("subscribed", (event) => recoveries.push(event.recovery))
    const sub = h.client.subscribe("room:a", (message) => got.push(message.data), { since: at("old", 7) })
    let socket = h.ws.last()
    const [first] = sentOfType(socket, "subscribe")
    expect(first).toMatchObject({ since: at("old", 7) })
    // Another epoch: nothing can be replayed; live from e2/3 on.
    socket.receive({ type: "ack", id: first!.id, position: at("e2", 3), recovery: "failed" })
    await sub.ready
    expect(sub.position).toEqual(at("e2", 3))
    socket.receive({ type: "message", channel: "room:a", data: "e2/4", position: at("e2", 4), at: 1 })
    socket.serverClose(1006)
    await advance(h, 100)
    socket = h.ws.last()
    socket.accept()
    await flush()
    const [second] = sentOfType(socket, "subscribe")
    expect(second).toMatchObject({ since: at("e2", 4) })
    // Live messages may come before the answer: a failed recovery then does not move the position back.
    socket.receive({ type: "message", channel: "room:a", data: "e3/8", position: at("e3", 8), at: 1 })
    socket.receive({ type: "ack", id: second!.id, position: at("e3", 7), recovery: "failed" })
    expect(sub.position).toEqual(at("e3", 8))
    socket.receive({ type: "message", channel: "room:a", data: "e3/8", position: at("e3", 8), at: 1 })
    expect(got).toEqual(["e2/4", "e3/8"])
    expect(recoveries).toEqual(["failed", "failed"])
  })

  it("starts from a position the app gives, and shares one server subscription between handlers", async () => {
    const h = harness()
    await h.connectNow()
    const a: Array<unknown> = []
    const b: Array<unknown> = []
    const subA = h.client.subscribe("room:a", (message) => a.push(message.data), { since: at("e", 10) })
    const subB = h.client.subscribe("room:a", (message) => b.push(message.data))
    const socket = h.ws.last()
    const subscribes = sentOfType(socket, "subscribe")
    expect(subscribes).toEqual([{ type: "subscribe", id: subscribes[0]!.id, channel: "room:a", since: at("e", 10) }])
    socket.receive({ type: "ack", id: subscribes[0]!.id })
    await Promise.all([subA.ready, subB.ready])
    socket.receive({ type: "message", channel: "room:a", data: 10, position: at("e", 10), at: 1 })
    socket.receive({ type: "message", channel: "room:a", data: 11, position: at("e", 11), at: 1 })
    expect(a).toEqual([11])
    expect(b).toEqual([11])
    await subA.unsubscribe()
    expect(sentOfType(socket, "unsubscribe")).toEqual([])
    socket.receive({ type: "message", channel: "room:a", data: 12, position: at("e", 12), at: 1 })
    expect(a).toEqual([11])
    expect(b).toEqual([11, 12])
    const done = subB.unsubscribe()
    const [unsubscribe] = sentOfType(socket, "unsubscribe")
    expect(unsubscribe).toMatchObject({ channel: "room:a" })
    // Nothing reaches a handler after unsubscribe(), even before the server's ack.
    socket.receive({ type: "message", channel: "room:a", data: 13, position: at("e", 13), at: 1 })
    socket.receive({ type: "ack", id: unsubscribe!.id })
    await done
    expect(b).toEqual([11, 12])
  })

  it("a refused subscription rejects `ready` and is not restored; a transient failure is retried", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 100 } })
    await h.connectNow()
    const socket = h.ws.last()
    const forbidden = h.client.subscribe("secret:x", () => undefined)
    const flaky = h.client.subscribe("room:a", () => undefined)
    const [s1, s2] = sentOfType(socket, "subscribe")
    socket.receive({ type: "error", id: s1!.id, code: 2000, name: "forbidden", message: "no" })
    socket.receive({ type: "error", id: s2!.id, code: 4002, name: "unavailable", message: "try later" })
    expect(await forbidden.ready.catch((error: unknown) => error)).toMatchObject({ name: "forbidden", channel: "secret:x" })
    expect(h.errors.map((error) => error.name)).toEqual(["unavailable"])
    await advance(h, 100)
    const retry = sentOfType(socket, "subscribe")[2]
    expect(retry).toMatchObject({ channel: "room:a" })
    socket.receive({ type: "ack", id: retry!.id })
    await flaky.ready
    socket.serverClose(1006)
    await advance(h, 100)
    h.ws.last().accept()
    await flush()
    expect(sentOfType(h.ws.last(), "subscribe").map((frame) => frame.channel)).toEqual(["room:a"])
  })

  it("a handler that throws is reported and does not stop the others", async () => {
    const h = harness()
    await h.connectNow()
    const got: Array<unknown> = []
    h.client.subscribe("room:a", () => {
      throw new Error("app bug")
    })
    h.client.subscribe("room:a", (message) => got.push(message.data))
    h.ws.last().receive({ type: "message", channel: "room:a", data: 1, at: 1 })
    expect(got).toEqual([1])
    expect(h.errors).toEqual([expect.objectContaining({ name: "handler_error", channel: "room:a" })])
  })
})

describe("heartbeat and frames", () => {
  it("pings every interval; a connection that answers nothing within the timeout is closed and replaced", async () => {
    const h = harness({ heartbeat: { intervalMs: 500, timeoutMs: 800 }, reconnect: { baseMs: 100, capMs: 100 } })
    const disconnected: Array<unknown> = []
    h.client.on("disconnected", (event) => disconnected.push(event))
    await h.connectNow(welcomeFrame("node-a", 10_000))
    const socket = h.ws.last()
    await advance(h, 500)
    const [ping] = sentOfType(socket, "ping")
    expect(ping).toEqual({ type: "ping", id: ping!.id })
    socket.receive({ type: "pong", id: ping!.id })
    // The answer counts: the first ping's deadline (1300) passes.
    await advance(h, 500)
    expect(sentOfType(socket, "ping")).toHaveLength(2)
    // Silence from now on: the ping sent at 1000 gets nothing by 1800.
    await advance(h, 799)
    expect(sentOfType(socket, "ping")).toHaveLength(3)
    expect(h.client.state).toBe("connected")
    await advance(h, 1)
    expect(socket.closedByClient).toMatchObject({ code: 4000 })
    expect(h.client.state).toBe("reconnecting")
    expect(disconnected).toEqual([{ code: 4000, reason: expect.stringContaining("no frame within 800 ms") }])
    await advance(h, 100)
    expect(h.ws.sockets).toHaveLength(2)
  })

  it("never pings less often than half the server's heartbeat", async () => {
    const h = harness({ heartbeat: { intervalMs: 60_000 } })
    await h.connectNow(welcomeFrame("node-a", 1000))
    await advance(h, 500)
    expect(sentOfType(h.ws.last(), "ping")).toHaveLength(1)
  })

  it("answers the server's ping with a pong echoing its id", async () => {
    const h = harness()
    await h.connectNow()
    h.ws.last().receive({ type: "ping", id: 42 })
    h.ws.last().receive({ type: "ping" })
    expect(sentOfType(h.ws.last(), "pong")).toEqual([{ type: "pong", id: 42 }, { type: "pong" }])
  })

  it("ignores frame types it does not know (newer servers) and reports frames it cannot read", async () => {
    const h = harness()
    await h.connectNow()
    const socket = h.ws.last()
    const { Packr } = await import("msgpackr")
    socket.receiveRaw(bytesOf(new Packr({ useRecords: false }).pack({ type: "presence.join", channel: "room:a", user: "bob" })))
    expect(h.errors).toEqual([])
    socket.receiveRaw(new Uint8Array([0xc1]).buffer)
    socket.receiveRaw("text on the msgpack protocol")
    expect(h.errors.map((error) => error.name)).toEqual(["protocol_error", "protocol_error"])
    expect(h.client.state).toBe("connected")
  })

  it("speaks JSON when asked: the weft.v1.json subprotocol and text frames", async () => {
    const h = harness({ encoding: "json" })
    await h.connectNow()
    const socket = h.ws.last()
    expect(socket.protocols).toEqual(["weft.v1.json"])
    const got: Array<unknown> = []
    h.client.subscribe("room:a", (message) => got.push(message.data))
    socket.receive({ type: "ack", id: sentOfType(socket, "subscribe")[0]!.id })
    socket.receive({ type: "message", channel: "room:a", data: { text: "hi" }, at: 1 })
    expect(got).toEqual([{ text: "hi" }])
    expect(socket.undecodable).toEqual([])
  })

  it("close() closes the socket with 1000, stops reconnecting and rejects what is pending", async () => {
    const h = harness()
    await h.connectNow()
    const sub = h.client.subscribe("room:a", () => undefined)
    const rpc = h.client.rpc("conn.info")
    await h.client.close()
    expect(h.ws.last().closedByClient).toMatchObject({ code: 1000 })
    expect(await rpc.catch((error: unknown) => error)).toMatchObject({ name: "closed" })
    expect(await sub.ready.catch((error: unknown) => error)).toMatchObject({ name: "closed" })
    expect(h.states.at(-1)).toMatchObject({ state: "closed" })
    await advance(h, 600_000)
    expect(h.ws.sockets).toHaveLength(1)
    await expect(h.client.connect()).rejects.toMatchObject({ name: "closed" })
  })
})
