/**
 * Room message operations over the client protocol, on one real Bun node:
 * send, reply, follow-up, edit, delete, pin/unpin, typing, settings, history
 * paging, and the refusals.
 */
import type { ServerFrame } from "@weft/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningNode, startListeningNode } from "../support/bunNode.ts"
import { type Claims, type Client, connectAs, jwtSecret, request, requestId, rpc, sendTogether } from "../support/wsClient.ts"

let node: RunningNode
const clients: Array<Client> = []

beforeAll(async () => {
  node = await startListeningNode(["--jwt-secret", jwtSecret, "--node-id", "rooms-ops"])
})
afterAll(() => {
  for (const client of clients) client.close()
  node.kill()
})

const member = (sub: string, extra: Partial<NonNullable<Claims["weft"]>> = {}): Claims => ({
  sub,
  weft: { subscribe: ["room:*", "presence:room:*"], publish: ["room:*"], ...extra }
})

const connect = async (claims: Claims) => {
  const { client } = await connectAs(node.url(), claims)
  clients.push(client)
  return client
}

const resultOf = (frame: ServerFrame): Record<string, unknown> => {
  if (frame.type !== "reply") throw new Error(`expected a reply, got ${JSON.stringify(frame)}`)
  if (typeof frame.result !== "object" || frame.result === null) throw new Error("expected an object result")
  return frame.result as Record<string, unknown>
}

const errorName = (frame: ServerFrame): string | undefined => (frame.type === "error" ? frame.name : undefined)

/** The next room message on `channel` whose data has `kind`. */
const nextEvent = (client: Client, channel: string, kind: string) =>
  client.next((f) =>
    f.type === "message" && f.channel === channel && typeof f.data === "object" && f.data !== null &&
    "kind" in f.data && f.data.kind === kind
  )

const dataOf = (frame: ServerFrame): Record<string, unknown> => {
  if (frame.type !== "message" || typeof frame.data !== "object" || frame.data === null) throw new Error("not a message")
  return frame.data as Record<string, unknown>
}

describe("room message operations", () => {
  it("send, reply, follow-up, edit, delete, pin and typing reach every member with positions; refusals are typed", async () => {
    const channel = "room:ops"
    const alice = await connect(member("alice"))
    const bob = await connect(member("bob"))
    const mod = await connect(member("mod", { moderate: ["room:*"] }))
    const readOnlyUser = await connect({ sub: "reader", weft: { subscribe: ["room:*"], publish: [] } })
    for (const client of [alice, bob, mod, readOnlyUser]) {
      expect((await request(client, (id) => ({ type: "subscribe", id, channel }))).type).toBe("ack")
    }

    // Send: publish on the room channel; every member gets it with an id and a position.
    const sent = await request(alice, (id) => ({ type: "publish", id, channel, data: { text: "hi" } }))
    expect(sent.type === "ack" && sent.position?.offset).toBe(1)
    const [atAlice, atBob] = await Promise.all([nextEvent(alice, channel, "message"), nextEvent(bob, channel, "message")])
    const first = dataOf(atBob)
    expect(first["body"]).toEqual({ text: "hi" })
    expect(atBob.type === "message" && atBob.from).toBe("alice")
    expect(atBob.type === "message" && atBob.position?.offset).toBe(1)
    expect(atAlice.type === "message" && atAlice.position).toEqual(atBob.type === "message" && atBob.position)
    const firstId = String(first["id"])

    // Reply and follow-up reference existing messages; a missing one is refused.
    const reply = resultOf(await rpc(bob, "room.send", { room: "ops", body: { text: "re" }, replyTo: firstId }))
    expect(dataOf(await nextEvent(alice, channel, "message"))["replyTo"]).toBe(firstId)
    const followUp = await rpc(bob, "room.send", { room: "ops", body: { text: "more" }, thread: firstId })
    expect(followUp.type).toBe("reply")
    expect(dataOf(await nextEvent(alice, channel, "message"))["thread"]).toBe(firstId)
    const epoch = String(firstId.split("-")[0])
    expect(errorName(await rpc(bob, "room.send", { room: "ops", body: {}, replyTo: `${epoch}-999` }))).toBe("not_found")

    // Edit: the author only.
    expect(errorName(await rpc(bob, "room.edit", { room: "ops", id: firstId, body: { text: "mine now" } }))).toBe("forbidden")
    expect((await rpc(alice, "room.edit", { room: "ops", id: firstId, body: { text: "hi!" } })).type).toBe("reply")
    const edit = await nextEvent(bob, channel, "edit")
    expect(dataOf(edit)).toEqual({ kind: "edit", id: firstId, body: { text: "hi!" } })
    expect(edit.type === "message" && edit.at).toBeGreaterThan(0)

    // Delete: the author or a moderator; it leaves a tombstone, and edits after it are refused.
    const replyId = String(reply["id"])
    expect(errorName(await rpc(alice, "room.delete", { room: "ops", id: replyId }))).toBe("forbidden")
    expect((await rpc(mod, "room.delete", { room: "ops", id: replyId })).type).toBe("reply")
    expect(dataOf(await nextEvent(alice, channel, "delete"))).toEqual({ kind: "delete", id: replyId, by: "mod" })
    expect(errorName(await rpc(bob, "room.edit", { room: "ops", id: replyId, body: {} }))).toBe("not_found")

    // Pin and unpin, with the pinned list.
    expect((await rpc(bob, "room.pin", { room: "ops", id: firstId })).type).toBe("reply")
    await nextEvent(alice, channel, "pin")
    const pins = await rpc(alice, "room.pins", { room: "ops" })
    expect(pins.type === "reply" && Array.isArray(pins.result) && pins.result.map((p: { id: string }) => p.id)).toEqual([firstId])
    expect((await rpc(bob, "room.unpin", { room: "ops", id: firstId })).type).toBe("reply")
    await nextEvent(alice, channel, "unpin")
    const unpinned = await rpc(alice, "room.pins", { room: "ops" })
    expect(unpinned.type === "reply" && unpinned.result).toEqual([])

    // Typing: ephemeral, no position, not in history.
    expect((await rpc(alice, "room.typing", { room: "ops" })).type).toBe("reply")
    const typing = await nextEvent(bob, channel, "typing")
    expect(typing.type === "message" && typing.position).toBeUndefined()

    // Permissions: no publish permission; and the room's own read-only setting.
    expect(errorName(await request(readOnlyUser, (id) => ({ type: "publish", id, channel, data: "x" })))).toBe("forbidden")
    expect(errorName(await rpc(alice, "room.configure", { room: "ops", readOnly: true }))).toBe("forbidden")
    expect((await rpc(mod, "room.configure", { room: "ops", readOnly: true })).type).toBe("reply")
    expect(errorName(await request(alice, (id) => ({ type: "publish", id, channel, data: "x" })))).toBe("forbidden")
    expect((await request(mod, (id) => ({ type: "publish", id, channel, data: "announcement" }))).type).toBe("ack")
    expect((await rpc(mod, "room.configure", { room: "ops", readOnly: false })).type).toBe("reply")

    // History holds the stored events in order, typing excluded; paging by offsets.
    const all = resultOf(await rpc(bob, "room.history", { room: "ops", after: 0, limit: 100 }))
    const messages = all["messages"] as ReadonlyArray<ServerFrame>
    const kinds = messages.map((m) => String(dataOf(m)["kind"]))
    expect(kinds).toEqual(["message", "message", "message", "edit", "delete", "pin", "unpin", "settings", "message", "settings"])
    const offsets = messages.map((m) => (m.type === "message" ? m.position?.offset : undefined))
    expect(offsets).toEqual(offsets.map((_, i) => i + 1))
    const page = resultOf(await rpc(bob, "room.history", { room: "ops", before: 6, limit: 2 }))
    expect((page["messages"] as ReadonlyArray<ServerFrame>).map((m) => m.type === "message" && m.position?.offset)).toEqual([4, 5])
    const after = resultOf(await rpc(bob, "room.history", { room: "ops", after: 8, limit: 10 }))
    expect((after["messages"] as ReadonlyArray<ServerFrame>).map((m) => m.type === "message" && m.position?.offset)).toEqual([9, 10])

    // Bad params are refused with invalid_params.
    expect(errorName(await rpc(bob, "room.history", { room: "ops", limit: "ten" }))).toBe("invalid_params")
    expect(errorName(await rpc(bob, "room.nope", {}))).toBe("unknown_method")
  }, 60_000)

  it("recovers from a position: exactly the missed messages, then live ones, while others keep sending", async () => {
    const channel = "room:recovery"
    const sender = await connect(member("sender"))
    const listener = await connect(member("listener"))
    expect((await request(sender, (id) => ({ type: "subscribe", id, channel }))).type).toBe("ack")
    const subscribed = await request(listener, (id) => ({ type: "subscribe", id, channel }))
    expect(subscribed.type).toBe("ack")
    for (let i = 0; i < 5; i++) await request(sender, (id) => ({ type: "publish", id, channel, data: { n: i } }))
    let last = 0
    let epoch = ""
    for (let i = 0; i < 5; i++) {
      const message = await nextEvent(listener, channel, "message")
      if (message.type === "message" && message.position !== undefined) {
        last = message.position.offset
        epoch = message.position.epoch
      }
    }
    expect(last).toBe(5)
    listener.close()

    // While the listener is away: 10 messages.
    for (let i = 5; i < 15; i++) await request(sender, (id) => ({ type: "publish", id, channel, data: { n: i } }))

    // It comes back while a steady stream of live messages goes on.
    const back = await connect(member("listener"))
    let sending = true
    let sent = 15
    const live = (async () => {
      while (sending && sent < 200) {
        await request(sender, (id) => ({ type: "publish", id, channel, data: { n: sent } }))
        sent++
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, 30))
    const resumed = await request(back, (id) => ({ type: "subscribe", id, channel, since: { epoch, offset: last } }))
    expect(resumed.type === "ack" && resumed.recovery).toBe("ok")
    await new Promise((resolve) => setTimeout(resolve, 200))
    sending = false
    await live
    // Every message after offset 5 up to the last one sent, once each, in order.
    const received: Array<number> = []
    while (received.length === 0 || received[received.length - 1]! < sent) {
      const message = await nextEvent(back, channel, "message")
      if (message.type === "message" && message.position !== undefined) received.push(message.position.offset)
    }
    expect(received).toEqual(Array.from({ length: sent - 5 }, (_, i) => i + 6))
  }, 60_000)

  it("a connection that does not wait for acks: every publish is acked and stored in the order sent", async () => {
    const channel = "room:pipelined"
    const sender = await connect(member("pipeliner"))
    expect((await request(sender, (id) => ({ type: "subscribe", id, channel }))).type).toBe("ack")
    // Inside the default burst (200 frames), all in one TCP write: the node reads them at once.
    const ids = Array.from({ length: 150 }, () => requestId())
    sendTogether(sender, ids.map((id, n) => ({ type: "publish", id, channel, data: { n } })))
    const answers = await Promise.all(ids.map((id) => sender.answer(id)))
    const offsets = answers.map((answer) => (answer.type === "ack" ? answer.position?.offset : `${answer.type}`))
    expect(offsets).toEqual(Array.from({ length: 150 }, (_, n) => n + 1))
    const received: Array<unknown> = []
    while (received.length < 150) received.push(dataOf(await nextEvent(sender, channel, "message"))["body"])
    expect(received).toEqual(Array.from({ length: 150 }, (_, n) => ({ n })))
  })

  it("answers recovery failed for a position from another epoch", async () => {
    const channel = "room:other-epoch"
    const client = await connect(member("carol"))
    const answer = await request(client, (id) => ({ type: "subscribe", id, channel, since: { epoch: "nosuchepoch", offset: 3 } }))
    expect(answer.type === "ack" && answer.recovery).toBe("failed")
    // The subscription is live all the same.
    await request(client, (id) => ({ type: "publish", id, channel, data: "still here" }))
    expect(dataOf(await nextEvent(client, channel, "message"))["body"]).toBe("still here")
  }, 30_000)
})

describe("history bounds", () => {
  it("a position older than the retained history gets recovery failed", async () => {
    const small = await startListeningNode(["--jwt-secret", jwtSecret, "--history-max-length", "5"])
    try {
      const { client } = await connectAs(small.url(), member("dave"))
      clients.push(client)
      const channel = "room:short"
      await request(client, (id) => ({ type: "subscribe", id, channel }))
      let epoch = ""
      for (let i = 0; i < 12; i++) {
        const ack = await request(client, (id) => ({ type: "publish", id, channel, data: i }))
        if (ack.type === "ack" && ack.position !== undefined) epoch = ack.position.epoch
      }
      const tooOld = await request(client, (id) => ({ type: "subscribe", id, channel: "room:short", since: { epoch, offset: 2 } }))
      // Already subscribed on this connection: use a second one.
      expect(errorName(tooOld)).toBe("already_subscribed")
      const { client: other } = await connectAs(small.url(), member("erin"))
      clients.push(other)
      const failed = await request(other, (id) => ({ type: "subscribe", id, channel, since: { epoch, offset: 2 } }))
      expect(failed.type === "ack" && failed.recovery).toBe("failed")
      const history = resultOf(await rpc(other, "room.history", { room: "short", after: 0, limit: 100 }))
      expect(history["first"]).toBe(8)
      const { client: third } = await connectAs(small.url(), member("fay"))
      clients.push(third)
      const ok = await request(third, (id) => ({ type: "subscribe", id, channel, since: { epoch, offset: 9 } }))
      expect(ok.type === "ack" && ok.recovery).toBe("ok")
    } finally {
      small.kill()
    }
  }, 60_000)
})
