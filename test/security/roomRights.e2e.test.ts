/**
 * Nobody acts on a room beyond their rights, on a real node. test/rooms/operations.e2e.test.ts
 * covers the plain refusals (edit of another's message, delete without being author or
 * moderator, configure without moderate, publish without write). This file adds the hostile
 * ones: forging `from`, `moderator` or `by` in the params; pinning, unpinning, sending and typing
 * with read-only rights; reading a room (history, pins, presence) without read rights. After all
 * of it the message is intact, unpinned, and the history holds nothing the attempts caused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import type { Claims } from "../support/jwt.ts"
import { type Client, closeAll, connectAs, rpc } from "../support/wsClient.ts"

let node: RunningNode
const clients: Array<Client> = []

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "sec-rooms"])
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([node])
})

const connect = async (claims: Claims): Promise<Client> => {
  const { client } = await connectAs(node.url(), claims)
  clients.push(client)
  return client
}

const writer = (sub: string): Claims => ({ sub, weft: { subscribe: ["room:*"], publish: ["room:*"] } })

const refusedAs = async (client: Client, method: string, params: unknown): Promise<string | undefined> => {
  const answer = await rpc(client, method, params)
  return answer.type === "error" ? answer.name : undefined
}

/** What a call with a forged field may get: refused either way, never done. */
const forgedRefusal = /^(forbidden|invalid_params)$/

describe("room rights against hostile params", () => {
  it("forged from/moderator/by, read-only writers and outsiders are all refused; the message is untouched", async () => {
    const alice = await connect(writer("alice"))
    const bob = await connect(writer("bob"))
    const reader = await connect({ sub: "reader", weft: { subscribe: ["room:*"] } })
    const outsider = await connect({ sub: "outsider", weft: { subscribe: ["room:other"], publish: ["room:other"] } })
    const room = "rights"

    const sent = await rpc(alice, "room.send", { room, body: { text: "mine" } })
    if (sent.type !== "reply" || typeof sent.result !== "object" || sent.result === null || !("id" in sent.result)) {
      throw new Error(`room.send failed: ${JSON.stringify(sent)}`)
    }
    const id = String(sent.result.id)

    // Bob, a writer, is not the author and not a moderator, whatever he claims in the params.
    expect(await refusedAs(bob, "room.edit", { room, id, body: "bob's now" })).toBe("forbidden")
    // A forged field is not a right: the params are refused (invalid_params: they are not the method's).
    expect(await refusedAs(bob, "room.edit", { room, id, body: "bob's now", from: "alice" })).toMatch(forgedRefusal)
    expect(await refusedAs(bob, "room.delete", { room, id })).toBe("forbidden")
    expect(await refusedAs(bob, "room.delete", { room, id, moderator: true, from: "alice", by: "alice" })).toMatch(forgedRefusal)
    expect(await refusedAs(bob, "room.configure", { room, readOnly: true, moderator: true })).toMatch(forgedRefusal)
    expect(await refusedAs(bob, "room.configure", { room, readOnly: true })).toBe("forbidden")

    // A reader may read, not write: no pin, unpin, send, typing, edit or delete.
    for (const method of ["room.pin", "room.unpin", "room.delete"]) expect(await refusedAs(reader, method, { room, id }), method).toBe("forbidden")
    expect(await refusedAs(reader, "room.send", { room, body: "x" })).toBe("forbidden")
    expect(await refusedAs(reader, "room.typing", { room })).toBe("forbidden")
    expect(await refusedAs(reader, "room.edit", { room, id, body: "x" })).toBe("forbidden")

    // Someone with rights on another room only cannot read this one, nor act on it.
    for (const method of ["room.history", "room.pins", "room.presence"]) expect(await refusedAs(outsider, method, { room }), method).toBe("forbidden")
    expect(await refusedAs(outsider, "room.pin", { room, id })).toBe("forbidden")
    expect(await refusedAs(outsider, "room.send", { room, body: "x" })).toBe("forbidden")

    // Nothing happened: one event in the history, the message as sent, no pins.
    const history = await rpc(reader, "room.history", { room })
    expect(history).toMatchObject({ type: "reply", result: { messages: [{ data: { kind: "message", id, body: { text: "mine" } }, from: "alice" }] } })
    const messages = history.type === "reply" && typeof history.result === "object" && history.result !== null && "messages" in history.result
      ? history.result.messages
      : undefined
    expect(Array.isArray(messages) && messages.length).toBe(1)
    expect(await rpc(reader, "room.pins", { room })).toMatchObject({ type: "reply", result: [] })
  })
})
