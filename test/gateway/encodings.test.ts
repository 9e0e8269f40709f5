/**
 * One protocol, two encodings: the same session over `weft.v1.msgpack` (binary messages),
 * `weft.v1.json` (text messages) and no subprotocol at all (msgpack), and fan-out between
 * connections of different encodings.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { type Client, closeAll, connectAs, type Encoding } from "../support/wsClient.ts"

let node: RunningNode
const clients: Array<Client> = []

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "gw-enc"])
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([node])
})

const open = async (sub: string, encoding: Encoding) => {
  const opened = await connectAs(node.url(), { sub, weft: { device: `${encoding}-device`, subscribe: ["topic:*"], publish: ["topic:*"] } }, encoding)
  clients.push(opened.client)
  return opened
}

const sessions: ReadonlyArray<{ readonly encoding: Encoding; readonly subprotocol: string; readonly kind: "binary" | "text" }> = [
  { encoding: "msgpack", subprotocol: "weft.v1.msgpack", kind: "binary" },
  { encoding: "json", subprotocol: "weft.v1.json", kind: "text" },
  { encoding: "none", subprotocol: "", kind: "binary" }
]

describe("the same session in every encoding", () => {
  for (const { encoding, subprotocol, kind } of sessions) {
    it(`${encoding}: subscribe, publish, message, rpc and ping as ${kind} messages`, async () => {
      const user = `enc-${encoding}`
      const channel = `topic:session-${encoding}`
      const { client, welcome } = await open(user, encoding)
      // The 101 echoes the chosen subprotocol, and none when none was offered.
      expect(client.socket.protocol).toBe(subprotocol)
      expect(welcome).toMatchObject({ type: "welcome", user, device: `${encoding}-device`, node: "gw-enc" })

      client.send({ type: "subscribe", id: 1, channel })
      expect(await client.answer(1)).toEqual({ type: "ack", id: 1 })

      const data = { text: "héllo", n: 42, ratio: 0.5, list: [1, "two", null, true], nested: { deep: { ok: false } } }
      client.send({ type: "publish", id: 2, channel, data })
      expect(await client.answer(2)).toEqual({ type: "ack", id: 2 })
      const message = await client.nextOf("message")
      expect(message).toEqual({ type: "message", channel, data, from: user, at: expect.any(Number) })
      expect(Math.abs(message.at - Date.now())).toBeLessThan(60_000)

      client.send({ type: "rpc", id: 3, method: "conn.info" })
      expect(await client.answer(3)).toEqual({
        type: "reply",
        id: 3,
        result: { conn: welcome.conn, user, device: `${encoding}-device`, node: "gw-enc", subscriptions: [channel] }
      })

      client.send({ type: "rpc", id: 4, method: "no.such.method", params: { x: 1 } })
      expect(await client.answer(4)).toMatchObject({ type: "error", id: 4, code: 4000, name: "unknown_method" })

      client.send({ type: "ping", id: 5 })
      expect(await client.nextOf("pong")).toEqual({ type: "pong", id: 5 })
      client.send({ type: "ping" })
      expect(await client.nextOf("pong")).toEqual({ type: "pong" })

      client.send({ type: "unsubscribe", id: 6, channel })
      expect(await client.answer(6)).toEqual({ type: "ack", id: 6 })
      client.send({ type: "rpc", id: 7, method: "conn.info" })
      expect(await client.answer(7)).toMatchObject({ type: "reply", id: 7, result: { subscriptions: [] } })

      expect(client.undecodable).toEqual([])
      // welcome, 2 acks, message, reply, error, 2 pongs, ack, reply: all of the negotiated kind.
      expect(client.kinds).toEqual(Array.from({ length: 10 }, () => kind))
    })
  }
})

describe("fan-out across encodings", () => {
  it("a JSON subscriber gets what a msgpack client published, bytes as {\"$base64\": ...}, and the other way round", async () => {
    const channel = "topic:mixed"
    const { client: json } = await open("mix-json", "json")
    const { client: msgpack } = await open("mix-msgpack", "msgpack")
    const { client: plain } = await open("mix-none", "none")
    for (const [i, client] of [json, msgpack, plain].entries()) {
      client.send({ type: "subscribe", id: 10 + i, channel })
      expect(await client.answer(10 + i)).toEqual({ type: "ack", id: 10 + i })
    }

    const bytes = new Uint8Array([0xde, 0xad, 0xbe, 0xef])
    msgpack.send({ type: "publish", id: 20, channel, data: { bytes, text: "binary inside", list: [bytes] } })
    expect(await msgpack.answer(20)).toEqual({ type: "ack", id: 20 })

    const asJson = await json.nextOf("message", (frame) => frame.from === "mix-msgpack")
    expect(asJson.data).toEqual({ bytes: { $base64: "3q2+7w==" }, text: "binary inside", list: [{ $base64: "3q2+7w==" }] })
    for (const client of [msgpack, plain]) {
      const asMsgpack = await client.nextOf("message", (frame) => frame.from === "mix-msgpack")
      expect(asMsgpack.data).toEqual({ bytes, text: "binary inside", list: [bytes] })
    }

    json.send({ type: "publish", id: 21, channel, data: { text: "from json", n: 7 } })
    expect(await json.answer(21)).toEqual({ type: "ack", id: 21 })
    for (const client of [json, msgpack, plain]) {
      const message = await client.nextOf("message", (frame) => frame.from === "mix-json")
      expect(message).toMatchObject({ channel, data: { text: "from json", n: 7 } })
    }
    for (const client of [json, msgpack, plain]) expect(client.undecodable).toEqual([])
  })
})
