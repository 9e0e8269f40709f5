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

/** What the transcript writes as `{"$base64": ...}` is bytes on the wire (§3). */
const fromJson = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(fromJson)
  if (!isFields(value)) return value
  const keys = Object.keys(value)
  if (keys.length === 1 && keys[0] === "$base64" && typeof value["$base64"] === "string") {
    return new Uint8Array(Buffer.from(value["$base64"], "base64"))
  }
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, fromJson(item)]))
}

/** Values that cannot be the same in two runs (addresses, times, history epochs), replaced by their kind. */
const normalize = (value: unknown, key = ""): unknown => {
  if (Array.isArray(value)) return value.map((item) => normalize(item))
  if (isFields(value)) return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, normalize(item, name)]))
  if (key === "conn" && typeof value === "string" && value.startsWith("conn/")) return "<conn>"
  if ((key === "at" || key === "after" || key === "offset" || key === "expiresAt" || key === "deadline") && typeof value === "number") {
    return `<${key}: number>`
  }
  if (key === "epoch" && typeof value === "string") return "<epoch: string>"
  return value
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

let node: RunningNode
const nodes: Array<RunningNode | undefined> = []
const sockets: Array<WebSocket> = []

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "node-a"])
  nodes.push(node)
})

afterAll(async () => {
  for (const socket of sockets) socket.terminate()
  await stopNodes(nodes)
})

/**
 * Plain pub/sub channels for the frame-by-frame checks: `room:` channels belong to the chat
 * role (history, membership), which the generic examples below are not about.
 */
const plain = "news:general"

interface SessionOptions {
  readonly user?: string
  readonly patterns?: ReadonlyArray<string>
  readonly on?: RunningNode
}

/** §2: trade the JWT for a ticket, open `/v1/ws?ticket=...` with the subprotocol, read the welcome. */
const session = async (protocol: "weft.v1.msgpack" | "weft.v1.json", options: SessionOptions = {}) => {
  const { user = "alice", patterns = ["news:*"], on = node } = options
  const jwt = await makeJwt({ sub: user, weft: { device: "phone", subscribe: patterns, publish: patterns } })
  const response = await fetch(`${on.url()}/v1/tickets`, { method: "POST", headers: { authorization: `Bearer ${jwt}` } })
  expect(response.status).toBe(200)
  const body: unknown = await response.json()
  if (!isFields(body) || typeof body["ticket"] !== "string") throw new Error(`no ticket in ${JSON.stringify(body)}`)
  expect(body["expiresIn"]).toBe(30)
  const client = await connect(`${on.url().replace(/^http/, "ws")}/v1/ws?ticket=${encodeURIComponent(body["ticket"])}`, protocol)
  sockets.push(client.socket)
  expect(client.socket.protocol).toBe(protocol)
  const welcome = await client.next((frame) => frame["type"] === "welcome")
  return { client, welcome }
}

/** The doc's example frame with another channel, for the same frame on a plain channel. */
const onChannel = (frame: Fields, channel: string): Fields => ({ ...frame, channel })

const decodedDoc = (info: string): Fields => {
  const value: unknown = decode(docBytes(info))
  if (!isFields(value)) throw new Error(`the doc's ${info} example is not a map`)
  return value
}

describe("a client built from docs/protocol.md with a plain msgpack library", () => {
  it("gets in with a ticket and reads the welcome (§2, §4.2)", async () => {
    const { welcome } = await session("weft.v1.msgpack")
    expect(welcome.raw).toBeInstanceOf(Uint8Array)
    expect(welcome.frame).toEqual({
      type: "welcome",
      protocol: "weft.v1",
      conn: expect.stringMatching(/^conn\/node-a\//),
      user: "alice",
      device: "phone",
      node: "node-a",
      heartbeat: 25_000,
      limits: { maxFrameBytes: 65_536, maxSubscriptions: 100, ratePerSecond: 100 },
      expiresAt: expect.any(Number)
    })
  })

  it("welcome.conn has the documented form conn/<node>/<id>", async () => {
    const { welcome } = await session("weft.v1.msgpack")
    expect(welcome.frame["conn"]).toMatch(/^conn\/node-a\/[^/]+$/)
  })

  it("subscribe/ack, publish/message, rpc/reply, ping/pong, errors: the frames and bytes the doc shows", async () => {
    const { client, welcome } = await session("weft.v1.msgpack")

    // A plain msgpack library writes the doc's client examples byte for byte.
    for (const info of ["client subscribe", "client publish", "client rpc", "client ping", "client unsubscribe"]) {
      expect(toHex(encode(decodedDoc(info))), info).toBe(toHex(docBytes(info)))
    }

    client.send(onChannel(decodedDoc("client subscribe"), plain))
    const ack = await client.next(answerTo(1))
    expect(ack.frame).toEqual({ type: "ack", id: 1 })
    expect(typeof ack.raw === "string" ? ack.raw : toHex(ack.raw)).toBe(toHex(docBytes("server ack")))

    client.send(onChannel(decodedDoc("client publish"), plain))
    expect((await client.next(answerTo(2))).frame).toEqual({ type: "ack", id: 2 })
    const message = await client.next((frame) => frame["type"] === "message")
    const documented = decodedDoc("server message")
    expect(message.frame).toEqual({ ...onChannel(documented, plain), at: expect.any(Number) })
    expect(Math.abs(Number(message.frame["at"]) - Date.now())).toBeLessThan(60_000)
    // The server's field order, and `at` as a float 64 (0xcb) followed by 8 bytes, as in the doc.
    expect(Object.keys(message.frame)).toEqual(Object.keys(documented))
    if (typeof message.raw === "string") throw new Error("a text message on the msgpack protocol")
    expect(message.raw[message.raw.length - 9]).toBe(0xcb)
    expect(docBytes("server message").at(-9)).toBe(0xcb)

    client.send(decodedDoc("client rpc"))
    expect((await client.next(answerTo(3))).frame).toEqual({
      ...decodedDoc("server reply"),
      result: { conn: welcome.frame["conn"], user: "alice", device: "phone", node: "node-a", subscriptions: [plain] }
    })

    client.send(decodedDoc("client ping"))
    const pong = await client.next((frame) => frame["type"] === "pong")
    expect(typeof pong.raw === "string" ? pong.raw : toHex(pong.raw)).toBe(toHex(docBytes("server pong")))
    client.send({ type: "ping" })
    expect((await client.next((frame) => frame["type"] === "pong")).frame).toEqual({ type: "pong" })

    const unsubscribe = onChannel(decodedDoc("client unsubscribe"), plain)
    client.send(unsubscribe)
    expect((await client.next(answerTo(5))).frame).toEqual({ type: "ack", id: 5 })
    // No longer subscribed: the doc's error example (its `message` is for people, not compared).
    client.send(unsubscribe)
    expect((await client.next(answerTo(5))).frame).toEqual({ ...decodedDoc("server error"), message: expect.any(String) })
    expect(client.received).toEqual([])
  })

  it("requests that fail get the catalogue's codes with their ids", async () => {
    const { client } = await session("weft.v1.msgpack")
    client.send({ type: "unsubscribe", id: 3, channel: "news:random" })
    expect((await client.next(answerTo(3))).frame).toMatchObject({ type: "error", id: 3, code: 2001, name: "not_subscribed" })
    client.send({ type: "subscribe", id: 4, channel: "secret:plans" })
    expect((await client.next(answerTo(4))).frame).toMatchObject({ type: "error", id: 4, code: 2000, name: "forbidden" })
    client.send({ type: "rpc", id: 5, method: "no.such.method" })
    expect((await client.next(answerTo(5))).frame).toMatchObject({ type: "error", id: 5, code: 4000, name: "unknown_method" })
    client.send({ type: "subscribe", id: 6, channel: plain })
    expect((await client.next(answerTo(6))).frame).toEqual({ type: "ack", id: 6 })
    client.send({ type: "subscribe", id: 7, channel: plain })
    expect((await client.next(answerTo(7))).frame).toMatchObject({ type: "error", id: 7, code: 2002, name: "already_subscribed" })
  })

  it("binary data from a msgpack client reaches a JSON client as {\"$base64\": ...} (§3)", async () => {
    const { client: json } = await session("weft.v1.json", { user: "carl" })
    const { client: msgpack } = await session("weft.v1.msgpack", { user: "bob" })
    json.send({ type: "subscribe", id: 1, channel: "news:sensor" })
    expect((await json.next(answerTo(1))).raw).toBe(docJson("server ack"))
    msgpack.send({ type: "subscribe", id: 1, channel: "news:sensor" })
    expect((await msgpack.next(answerTo(1))).frame).toEqual({ type: "ack", id: 1 })

    msgpack.send({ type: "publish", id: 2, channel: "news:sensor", data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) })
    expect((await msgpack.next(answerTo(2))).frame).toEqual({ type: "ack", id: 2 })
    const asJson = await json.next((frame) => frame["type"] === "message")
    expect(asJson.frame).toEqual({ type: "message", channel: "news:sensor", data: { $base64: "3q2+7w==" }, from: "bob", at: expect.any(Number) })
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

  it("the worked session of §13, replayed line by line against a node named node-a, gets the frames it shows", async () => {
    // A refresh margin longer than any JWT here: the server asks for new credentials at once, as the
    // transcript's `refresh-required` shows (it comes on the server's own timer).
    const replayNode = await startGatewayNode(["--node-id", "node-a", "--refresh-margin-ms", "86400000"])
    nodes.push(replayNode)
    // The patterns of the session's JWT (`"subscribe": ["news:*"], "publish": ["news:*"]`).
    const rooms = ["news:*"]
    const { client: alice, welcome } = await session("weft.v1.json", { patterns: rooms, on: replayNode })
    const others = new Map<string, PlainClient>()
    const publisher = async (user: string): Promise<PlainClient> => {
      const known = others.get(user)
      if (known !== undefined) return known
      const { client } = await session("weft.v1.msgpack", { user, patterns: rooms, on: replayNode })
      others.set(user, client)
      return client
    }

    let welcomed = false
    for (const line of example("weft-session").split("\n")) {
      if (line.startsWith(">> ")) {
        const sent: unknown = JSON.parse(line.slice(3))
        // The transcript's token is a placeholder: a refresh needs a JWT this node accepts.
        if (isFields(sent) && sent["type"] === "refresh") {
          const token = await makeJwt({ sub: "alice", expiresIn: "1h", weft: { device: "phone", subscribe: rooms, publish: rooms } })
          alice.socket.send(JSON.stringify({ ...sent, token }))
        } else alice.socket.send(line.slice(3))
        continue
      }
      if (!line.startsWith("<< ")) continue
      const value: unknown = JSON.parse(line.slice(3))
      if (!isFields(value)) throw new Error(`not a frame: ${line}`)
      const expected = value
      const type = expected["type"]
      let actual: Received
      if (type === "welcome" && !welcomed) {
        welcomed = true
        actual = welcome
      } else if (type === "ping") {
        // A server-initiated ping: nothing a client can provoke; the transcript's pong is sent anyway.
        continue
      } else if (type === "goodbye") {
        replayNode.kill("SIGTERM")
        actual = await alice.next((frame) => frame["type"] === "goodbye")
      } else if (type === "message" && expected["from"] !== "alice") {
        // Another user publishes it, as the transcript says.
        const other = await publisher(String(expected["from"]))
        other.send({ type: "publish", id: 1, channel: expected["channel"], data: fromJson(expected["data"]) })
        expect((await other.next(answerTo(1))).frame, line).toMatchObject({ type: "ack", id: 1 })
        actual = await alice.next((frame) => frame["type"] === "message" && frame["from"] === expected["from"])
      } else {
        actual = await alice.next((frame) =>
          frame["type"] === type &&
          (expected["id"] === undefined || frame["id"] === expected["id"]) &&
          (type !== "message" || (frame["channel"] === expected["channel"] && frame["from"] === expected["from"]))
        )
      }
      // Values that differ between runs are compared by kind; everything else must be equal, field for field.
      expect(normalize(actual.frame), line).toEqual(normalize(expected))
    }
    expect(welcomed).toBe(true)
    if (replayNode.process.exitCode === null && replayNode.process.signalCode === null) {
      // The transcript ends with the goodbye: the server closes with 1001.
      expect(await alice.closed).toBe(1001)
    }
  })
})
