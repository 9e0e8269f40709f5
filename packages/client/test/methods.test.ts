/**
 * The typed helpers over `rpc` against an in-memory socket that speaks the
 * real codec: each sends its method with the protocol's params (request
 * options stay out of them), resolves with the typed result, and rejects with
 * a `protocol_error` when the server's answer has the wrong shape.
 */
import { describe, expect, it } from "vitest"
import { isWeftError, type Position } from "../src/index.ts"
import { flush, sentOfType } from "./support/fakes.ts"
import { advance, type Harness, harness } from "./support/harness.ts"

const at = (epoch: string, offset: number): Position => ({ epoch, offset })

/** The last rpc the client sent, and a way to answer it. */
const lastRpc = (h: Harness) => {
  const frame = sentOfType(h.ws.last(), "rpc").at(-1)
  if (frame === undefined) throw new Error("no rpc sent")
  return {
    method: frame.method,
    params: frame.params,
    reply: (result: unknown) => h.ws.last().receive({ type: "reply", id: frame.id, result })
  }
}

/** Calls, checks the frame sent, answers with `result`, and resolves with the helper's outcome. */
const exchange = async <A>(h: Harness, call: () => Promise<A>, sent: { readonly method: string; readonly params: unknown }, result: unknown) => {
  const pending = call().then((value) => ({ value }), (error: unknown) => ({ error }))
  await flush(1)
  const rpc = lastRpc(h)
  expect({ method: rpc.method, params: rpc.params }).toEqual(sent)
  rpc.reply(result)
  return pending
}

const accepted = { position: at("k3v9q2", 43), at: 1_764_057_660_000 }

describe("room helpers", () => {
  it("send each room method with its params and resolve with the typed result", async () => {
    const h = harness()
    await h.connectNow()
    const rooms = h.client.rooms
    const sent = { id: "k3v9q2-42", position: at("k3v9q2", 42), at: 1_764_057_600_000 }
    expect(await exchange(h, () => rooms.send("general", { text: "See you at 10" }), {
      method: "room.send",
      params: { room: "general", body: { text: "See you at 10" } }
    }, sent)).toEqual({ value: sent })
    // Options for the request (timeout, abort signal) are not params.
    expect(await exchange(h, () => rooms.send("general", "re", { replyTo: "k3v9q2-40", thread: "k3v9q2-39", timeoutMs: 5000 }), {
      method: "room.send",
      params: { room: "general", body: "re", replyTo: "k3v9q2-40", thread: "k3v9q2-39" }
    }, sent)).toEqual({ value: sent })
    // Nothing has no wire form: an undefined body is sent as nil.
    expect(await exchange(h, () => rooms.send("general", undefined), {
      method: "room.send",
      params: { room: "general", body: null }
    }, sent)).toEqual({ value: sent })
    expect(await exchange(h, () => rooms.edit("general", "k3v9q2-42", { text: "See you at 11" }), {
      method: "room.edit",
      params: { room: "general", id: "k3v9q2-42", body: { text: "See you at 11" } }
    }, accepted)).toEqual({ value: accepted })
    for (const method of ["delete", "pin", "unpin"] as const) {
      expect(await exchange(h, () => rooms[method]("general", "k3v9q2-42"), {
        method: `room.${method}`,
        params: { room: "general", id: "k3v9q2-42" }
      }, accepted)).toEqual({ value: accepted })
    }
    const pins = [{ id: "k3v9q2-42", by: "alice", at: 5 }]
    expect(await exchange(h, () => rooms.pins("general"), { method: "room.pins", params: { room: "general" } }, pins)).toEqual({ value: pins })
    expect(await exchange(h, () => rooms.typing("general"), { method: "room.typing", params: { room: "general" } }, null)).toEqual({
      value: undefined
    })
    const members = [{ user: "alice", devices: 2 }, { user: "bob", devices: 1 }]
    expect(await exchange(h, () => rooms.presence("general"), { method: "room.presence", params: { room: "general" } }, members)).toEqual({
      value: members
    })
    expect(await exchange(h, () => rooms.configure("general", { readOnly: true }), {
      method: "room.configure",
      params: { room: "general", readOnly: true }
    }, accepted)).toEqual({ value: accepted })
  })

  it("history: before/after/limit as params; the messages as ChannelMessages", async () => {
    const h = harness()
    await h.connectNow()
    const page = {
      epoch: "k3v9q2",
      first: 1,
      last: 43,
      messages: [
        {
          type: "message",
          channel: "room:general",
          data: { kind: "message", id: "k3v9q2-41", body: "a" },
          from: "alice",
          position: at("k3v9q2", 41),
          at: 1
        },
        { type: "message", channel: "room:general", data: { kind: "edit", id: "k3v9q2-41", body: "b" }, from: "alice", position: at("k3v9q2", 42), at: 2 }
      ]
    }
    const outcome = await exchange(h, () => h.client.rooms.history("general", { before: 42, limit: 2, timeoutMs: 1000 }), {
      method: "room.history",
      params: { room: "general", before: 42, limit: 2 }
    }, page)
    expect(outcome).toEqual({
      value: {
        epoch: "k3v9q2",
        first: 1,
        last: 43,
        messages: [
          { channel: "room:general", data: { kind: "message", id: "k3v9q2-41", body: "a" }, from: "alice", position: at("k3v9q2", 41), at: 1 },
          { channel: "room:general", data: { kind: "edit", id: "k3v9q2-41", body: "b" }, from: "alice", position: at("k3v9q2", 42), at: 2 }
        ]
      }
    })
    expect(await exchange(h, () => h.client.rooms.history("general", { after: 0 }), {
      method: "room.history",
      params: { room: "general", after: 0 }
    }, { epoch: "k3v9q2", first: 1, last: 0, messages: [] })).toEqual({ value: { epoch: "k3v9q2", first: 1, last: 0, messages: [] } })
  })
})

describe("user helpers", () => {
  it("notifications.list, notifications.read (ids or all) and signal send their params and resolve typed", async () => {
    const h = harness()
    await h.connectNow()
    const notification = { kind: "notification", id: "k-1", type: "order.completed", data: { orderId: 7 }, sender: "orders" }
    const inbox = { entries: [{ position: at("p2", 12), at: 1000, read: false, notification }], unread: 1, position: at("p2", 12) }
    expect(await exchange(h, () => h.client.notifications.list({ before: 13, limit: 10 }), {
      method: "notifications.list",
      params: { before: 13, limit: 10 }
    }, inbox)).toEqual({
      value: {
        entries: [{ position: at("p2", 12), at: 1000, read: false, notification: { id: "k-1", type: "order.completed", data: { orderId: 7 }, sender: "orders" } }],
        unread: 1,
        position: at("p2", 12)
      }
    })
    expect(await exchange(h, () => h.client.notifications.list(), { method: "notifications.list", params: {} }, { ...inbox, entries: [] }))
      .toEqual({ value: { entries: [], unread: 1, position: at("p2", 12) } })
    expect(await exchange(h, () => h.client.notifications.read(["k-1"]), { method: "notifications.read", params: { ids: ["k-1"] } }, { unread: 0 }))
      .toEqual({ value: { unread: 0 } })
    expect(await exchange(h, () => h.client.notifications.read("all"), { method: "notifications.read", params: { all: true } }, { unread: 0 }))
      .toEqual({ value: { unread: 0 } })
    expect(await exchange(h, () => h.client.signal("bob", { sdp: "v=0 ..." }, { device: "laptop" }), {
      method: "signal.send",
      params: { user: "bob", device: "laptop", data: { sdp: "v=0 ..." } }
    }, { devices: 1 })).toEqual({ value: { devices: 1 } })
    expect(await exchange(h, () => h.client.signal("bob", "hi"), { method: "signal.send", params: { user: "bob", data: "hi" } }, { devices: 0 }))
      .toEqual({ value: { devices: 0 } })
  })
})

describe("answers of the wrong shape", () => {
  it("reject with a protocol_error naming the method; the client stays connected", async () => {
    const h = harness()
    await h.connectNow()
    const cases: Array<readonly [() => Promise<unknown>, unknown]> = [
      [() => h.client.rooms.send("general", "x"), { position: at("e", 1), at: 1 }],
      [() => h.client.rooms.send("general", "x"), null],
      [() => h.client.rooms.edit("general", "e-1", "y"), { position: { epoch: "e" }, at: 1 }],
      [() => h.client.rooms.delete("general", "e-1"), { position: at("e", 1), at: "yesterday" }],
      [() => h.client.rooms.pin("general", "e-1"), "ok"],
      [() => h.client.rooms.pins("general"), [{ id: "e-1", by: "alice" }]],
      [() => h.client.rooms.pins("general"), { id: "e-1", by: "alice", at: 1 }],
      [() => h.client.rooms.history("general"), { epoch: "e", first: 1, last: 2, messages: [{ channel: "room:general", data: 1 }] }],
      [() => h.client.rooms.history("general"), { epoch: "e", first: 1, last: 2 }],
      [() => h.client.rooms.presence("general"), [{ user: "bob", devices: "two" }]],
      [() => h.client.notifications.list(), { entries: [{ position: at("p", 1), at: 1, read: "no", notification: {} }], unread: 0, position: at("p", 1) }],
      [() => h.client.notifications.list(), { entries: [], unread: -1, position: at("p", 1) }],
      [() => h.client.notifications.read("all"), {}],
      [() => h.client.signal("bob", 1), { devices: null }]
    ]
    for (const [call, answer] of cases) {
      const pending = call().then(() => "resolved", (error: unknown) => error)
      await flush(1)
      const rpc = lastRpc(h)
      rpc.reply(answer)
      const error = await pending
      expect(isWeftError(error, "protocol_error"), `${rpc.method} answered ${JSON.stringify(answer)}`).toBe(true)
      expect(error).toMatchObject({ code: 9006, origin: "client", method: rpc.method })
      expect(error).toHaveProperty("message", expect.stringContaining(`the answer to ${rpc.method} is not`))
    }
    expect(sentOfType(h.ws.last(), "rpc")).toHaveLength(cases.length)
    expect(h.client.state).toBe("connected")
    expect(h.errors).toEqual([])
  })

  it("server refusals and request options pass through: forbidden, a timeout, an abort", async () => {
    const h = harness()
    await h.connectNow()
    const socket = h.ws.last()
    const refused = h.client.rooms.edit("general", "e-1", "mine now").catch((error: unknown) => error)
    await flush(1)
    const frame = sentOfType(socket, "rpc").at(-1)!
    socket.receive({ type: "error", id: frame.id, code: 2000, name: "forbidden", message: "only the author may edit a message" })
    expect(await refused).toMatchObject({ name: "forbidden", code: 2000, origin: "server", method: "room.edit" })
    const slow = h.client.rooms.pins("general", { timeoutMs: 50 }).catch((error: unknown) => error)
    await flush(1)
    await advance(h, 50)
    expect(await slow).toMatchObject({ name: "timeout", code: 9000, method: "room.pins" })
    const controller = new AbortController()
    const aborted = h.client.signal("bob", 1, { signal: controller.signal }).catch((error: unknown) => error)
    controller.abort()
    expect(await aborted).toMatchObject({ name: "aborted", method: "signal.send" })
    // The abort signal is an option, not a param.
    expect(sentOfType(socket, "rpc").at(-1)).toMatchObject({ method: "signal.send", params: { user: "bob", data: 1 } })
  })
})
