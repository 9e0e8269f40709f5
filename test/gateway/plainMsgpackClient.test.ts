/**
 * A client written from docs/protocol.md alone: `fetch` for the ticket, `ws` for the socket,
 * `@msgpack/msgpack` (a standard msgpack library) and `JSON` for the frames, which are plain
 * objects built the way the doc describes them. Nothing from Weft's own packages. Where the doc
 * shows the exact bytes or text of a frame, the test compares the wire with it.
 */
import { decode, encode } from "@msgpack/msgpack"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import WebSocket from "ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { repoRoot, type RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { makeJwt } from "../support/jwt.ts"

// ---------------------------------------------------------------------------
// The doc's examples
// ---------------------------------------------------------------------------

interface Example {
  readonly info: string
  readonly content: string
}

const doc = readFileSync(join(repoRoot, "docs", "protocol.md"), "utf8")
const examples: ReadonlyArray<Example> = Array.from(doc.matchAll(/^```([^\n]*)\n([\s\S]*?)^```/gm), (match) => ({
  info: match[1]!.trim(),
  content: match[2]!
}))

const example = (info: string): string => {
  const found = examples.find((candidate) => candidate.info === info)
  if (found === undefined) throw new Error(`docs/protocol.md has no \`\`\`${info} example`)
  return found.content
}

const hexBytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))
const docBytes = (info: string): Uint8Array => hexBytes(example(`msgpack-hex ${info}`))
const docJson = (info: string): string => example(`json ${info}`).trim()
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

interface BadExample {
  readonly info: string
  readonly payload: Uint8Array | string
  readonly code: number
  readonly id: number | undefined
}

/** `msgpack-hex bad-client 1000 [id=13]` / `json bad-client 1001 id=10`: a frame and the error it gets. */
const badExamples = (format: "msgpack-hex" | "json"): ReadonlyArray<BadExample> =>
  examples.flatMap(({ info, content }) => {
    const match = new RegExp(`^${format} bad-client (\\d+)(?: id=(\\d+))?$`).exec(info)
    if (match === null) return []
    return [{
      info,
      payload: format === "json" ? content.trim() : hexBytes(content),
      code: Number(match[1]),
      id: match[2] === undefined ? undefined : Number(match[2])
    }]
  })

// ---------------------------------------------------------------------------
// A plain client
// ---------------------------------------------------------------------------

type Fields = Record<string, unknown>

const isFields = (value: unknown): value is Fields => typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)

interface Received {
  /** The message as it came: bytes for a binary message, text for a text message. */
  readonly raw: Uint8Array | string
  readonly frame: Fields
}

interface PlainClient {
  readonly socket: WebSocket
  readonly received: Array<Received>
  readonly send: (frame: Fields) => void
  /** The first message (so far or later) whose frame matches, removed from `received`. */
  readonly next: (predicate: (frame: Fields) => boolean, timeoutMs?: number) => Promise<Received>
  readonly closed: Promise<number>
}

/** Opens the WebSocket and collects every message from the start (the server speaks first). */
const connect = (url: string, protocol: "weft.v1.msgpack" | "weft.v1.json"): Promise<PlainClient> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url, [protocol])
    const received: Array<Received> = []
    const waiters = new Set<() => void>()
    socket.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data)
      const raw = isBinary ? new Uint8Array(bytes) : bytes.toString("utf8")
      const value: unknown = typeof raw === "string" ? JSON.parse(raw) : decode(raw)
      if (!isFields(value)) throw new Error(`the server sent a frame that is not a map: ${String(value)}`)
      received.push({ raw, frame: value })
      for (const waiter of waiters) waiter()
    })
    const closed = new Promise<number>((done) => socket.once("close", (code: number) => done(code)))
    const next = (predicate: (frame: Fields) => boolean, timeoutMs = 10_000): Promise<Received> =>
      new Promise((found, fail) => {
        const check = () => {
          const index = received.findIndex((message) => predicate(message.frame))
          if (index === -1) return
          const [message] = received.splice(index, 1)
          cleanup()
          found(message!)
        }
        const timer = setTimeout(() => {
          cleanup()
          fail(new Error(`no matching frame within ${timeoutMs} ms; have ${JSON.stringify(received.map((message) => message.frame))}`))
        }, timeoutMs)
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      })
    socket.once("open", () =>
      resolve({
        socket,
        received,
        send: (frame) => socket.send(protocol === "weft.v1.json" ? JSON.stringify(frame) : encode(frame)),
        next,
        closed
      }))
    socket.once("unexpected-response", (_request, response) => reject(new Error(`refused: HTTP ${response.statusCode}`)))
    socket.once("error", reject)
  })

const answerTo = (id: number) => (frame: Fields): boolean =>
  (frame["type"] === "ack" || frame["type"] === "reply" || frame["type"] === "error") && frame["id"] === id

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

let node: RunningNode
const sockets: Array<WebSocket> = []

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "node-a"])
})

afterAll(async () => {
  for (const socket of sockets) socket.terminate()
  await stopNodes([node])
})

/** §2: trade the JWT for a ticket, open `/v1/ws?ticket=...` with the subprotocol, read the welcome. */
const session = async (protocol: "weft.v1.msgpack" | "weft.v1.json", user = "alice") => {
  const jwt = await makeJwt({ sub: user, weft: { device: "phone", subscribe: ["room:*"], publish: ["room:*"] } })
  const response = await fetch(`${node.url()}/v1/tickets`, { method: "POST", headers: { authorization: `Bearer ${jwt}` } })
  expect(response.status).toBe(200)
  const body: unknown = await response.json()
  if (!isFields(body) || typeof body["ticket"] !== "string") throw new Error(`no ticket in ${JSON.stringify(body)}`)
  expect(body["expiresIn"]).toBe(30)
  const client = await connect(`${node.url().replace(/^http/, "ws")}/v1/ws?ticket=${encodeURIComponent(body["ticket"])}`, protocol)
  sockets.push(client.socket)
  expect(client.socket.protocol).toBe(protocol)
  const welcome = await client.next((frame) => frame["type"] === "welcome")
  return { client, welcome }
}

describe("a client built from docs/protocol.md with a plain msgpack library", () => {
  it("gets in with a ticket and reads the welcome", async () => {
    const { welcome } = await session("weft.v1.msgpack")
    expect(welcome.raw).toBeInstanceOf(Uint8Array)
    expect(welcome.frame).toEqual({
      type: "welcome",
      protocol: "weft.v1",
      conn: expect.stringMatching(/^conn\/node-a\/\d+$/),
      user: "alice",
      device: "phone",
      node: "node-a",
      heartbeat: 25_000,
      limits: { maxFrameBytes: 65_536, maxSubscriptions: 100, ratePerSecond: 100 }
    })
  })

  it("subscribe/ack, publish/message, rpc/reply, ping/pong: the frames and bytes the doc shows", async () => {
    const { client, welcome } = await session("weft.v1.msgpack")

    const subscribe = { type: "subscribe", id: 1, channel: "room:general" }
    expect(toHex(encode(subscribe))).toBe(toHex(docBytes("client subscribe")))
    client.send(subscribe)
    const ack = await client.next(answerTo(1))
    expect(ack.frame).toEqual({ type: "ack", id: 1 })
    expect(typeof ack.raw === "string" ? ack.raw : toHex(ack.raw)).toBe(toHex(docBytes("server ack")))

    const publish = { type: "publish", id: 2, channel: "room:general", data: { text: "hello", n: 1 } }
    expect(toHex(encode(publish))).toBe(toHex(docBytes("client publish")))
    client.send(publish)
    expect((await client.next(answerTo(2))).frame).toEqual({ type: "ack", id: 2 })
    const message = await client.next((frame) => frame["type"] === "message")
    expect(message.frame).toEqual({ type: "message", channel: "room:general", data: { text: "hello", n: 1 }, from: "alice", at: expect.any(Number) })
    expect(Math.abs(Number(message.frame["at"]) - Date.now())).toBeLessThan(60_000)
    // The same bytes as the doc's example up to `at`, which is a float 64 (0xcb) and 8 bytes of time.
    if (typeof message.raw === "string") throw new Error("a text message on the msgpack protocol")
    const documented = docBytes("server message")
    expect(toHex(message.raw.subarray(0, message.raw.length - 8))).toBe(toHex(documented.subarray(0, documented.length - 8)))
    expect(message.raw[message.raw.length - 9]).toBe(0xcb)

    const rpc = { type: "rpc", id: 3, method: "conn.info" }
    expect(toHex(encode(rpc))).toBe(toHex(docBytes("client rpc")))
    client.send(rpc)
    expect((await client.next(answerTo(3))).frame).toEqual({
      type: "reply",
      id: 3,
      result: { conn: welcome.frame["conn"], user: "alice", device: "phone", node: "node-a", subscriptions: ["room:general"] }
    })

    const ping = { type: "ping", id: 7 }
    expect(toHex(encode(ping))).toBe(toHex(docBytes("client ping")))
    client.send(ping)
    const pong = await client.next((frame) => frame["type"] === "pong")
    expect(typeof pong.raw === "string" ? pong.raw : toHex(pong.raw)).toBe(toHex(docBytes("server pong")))
    client.send({ type: "ping" })
    expect((await client.next((frame) => frame["type"] === "pong")).frame).toEqual({ type: "pong" })

    const unsubscribe = { type: "unsubscribe", id: 5, channel: "room:general" }
    expect(toHex(encode(unsubscribe))).toBe(toHex(docBytes("client unsubscribe")))
    client.send(unsubscribe)
    expect((await client.next(answerTo(5))).frame).toEqual({ type: "ack", id: 5 })
    // Unsubscribed: the doc's error example (its `message` is for people, and not compared).
    client.send(unsubscribe)
    const error = await client.next(answerTo(5))
    const documentedError: unknown = decode(docBytes("server error"))
    if (!isFields(documentedError)) throw new Error("the doc's error example is not a map")
    expect(error.frame).toEqual({ ...documentedError, message: expect.any(String) })
    expect(client.received).toEqual([])
  })

  it("requests that fail get the catalogue's codes with their ids (§11)", async () => {
    const { client } = await session("weft.v1.msgpack")
    client.send({ type: "unsubscribe", id: 3, channel: "room:random" })
    expect((await client.next(answerTo(3))).frame).toMatchObject({ type: "error", id: 3, code: 2001, name: "not_subscribed" })
    client.send({ type: "subscribe", id: 4, channel: "secret:plans" })
    expect((await client.next(answerTo(4))).frame).toMatchObject({ type: "error", id: 4, code: 2000, name: "forbidden" })
    client.send({ type: "rpc", id: 5, method: "chat.nothing" })
    expect((await client.next(answerTo(5))).frame).toMatchObject({ type: "error", id: 5, code: 4000, name: "unknown_method" })
    client.send({ type: "subscribe", id: 6, channel: "room:general", since: { epoch: "k3x9", offset: 41 } })
    expect((await client.next(answerTo(6))).frame).toEqual({ type: "ack", id: 6 })
    client.send({ type: "subscribe", id: 7, channel: "room:general" })
    expect((await client.next(answerTo(7))).frame).toMatchObject({ type: "error", id: 7, code: 2002, name: "already_subscribed" })
  })

  it("binary data from a msgpack client reaches a JSON client as {\"$base64\": ...} (§3)", async () => {
    const { client: json } = await session("weft.v1.json", "carl")
    const { client: msgpack } = await session("weft.v1.msgpack", "bob")
    json.send({ type: "subscribe", id: 1, channel: "room:sensor" })
    expect((await json.next(answerTo(1))).raw).toBe(docJson("server ack"))
    msgpack.send({ type: "subscribe", id: 1, channel: "room:sensor" })
    expect((await msgpack.next(answerTo(1))).frame).toEqual({ type: "ack", id: 1 })

    msgpack.send({ type: "publish", id: 2, channel: "room:sensor", data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) })
    expect((await msgpack.next(answerTo(2))).frame).toEqual({ type: "ack", id: 2 })
    const asJson = await json.next((frame) => frame["type"] === "message")
    expect(asJson.frame).toEqual({ type: "message", channel: "room:sensor", data: { $base64: "3q2+7w==" }, from: "bob", at: expect.any(Number) })
    // Integers are plain JSON numbers.
    expect(asJson.raw).toMatch(/"at":\d+\}$/)
    const asMsgpack = await msgpack.next((frame) => frame["type"] === "message")
    expect(asMsgpack.frame["data"]).toEqual(new Uint8Array([0xde, 0xad, 0xbe, 0xef]))

    json.send({ type: "ping", id: 7 })
    expect((await json.next((frame) => frame["type"] === "pong")).raw).toBe(docJson("server pong"))
  })

  for (const [format, protocol] of [["msgpack-hex", "weft.v1.msgpack"], ["json", "weft.v1.json"]] as const) {
    it(`every \`${format} bad-client\` example of §6.2 gets its code, and the connection stays usable`, async () => {
      const bad = badExamples(format)
      expect(bad.length).toBeGreaterThan(0)
      const { client } = await session(protocol)
      let pingId = 100
      for (const { info, payload, code, id } of bad) {
        client.socket.send(payload)
        const error = await client.next((frame) => frame["type"] === "error")
        expect(error.frame, info).toEqual({ type: "error", ...(id === undefined ? {} : { id }), code, name: expect.any(String), message: expect.any(String) })
        const ping = ++pingId
        client.send({ type: "ping", id: ping })
        expect((await client.next((frame) => frame["type"] === "pong")).frame, info).toEqual({ type: "pong", id: ping })
      }
      expect(client.received).toEqual([])
    })
  }
})
