/**
 * Bad input from a client: every bad frame gets its documented error code (with the request
 * id when one was readable), the connection stays usable (a ping gets its pong after each),
 * and other connections are not affected (a witness keeps receiving messages throughout).
 * Only a frame over `--max-frame-bytes` closes the connection (1009), and the node serves on.
 *
 * The node runs over Redis (a one-node cluster) so that a publish or subscribe waits on I/O:
 * that keeps a request in flight while its duplicate is read, deterministically.
 */
import { encode } from "@msgpack/msgpack"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { type GatewayCluster, isServing, readiness, startGatewayCluster } from "../support/gatewayNodes.ts"
import type { Claims } from "../support/jwt.ts"
import { type Client, closeAll, connectAs, type Encoding, sendTogether } from "../support/wsClient.ts"

let cluster: GatewayCluster
let node: RunningNode
const clients: Array<Client> = []
const everything: Claims = { sub: "mallory", weft: { subscribe: ["*"], publish: ["*"] } }

let witness: { readonly publisher: Client; readonly subscriber: Client; sent: number }

beforeAll(async () => {
  cluster = await startGatewayCluster("gw-bad", 1, ["--max-frame-bytes", "1024"])
  node = cluster.nodes[0]!
  const publisher = await open({ sub: "witness-pub", weft: { publish: ["topic:witness"] } })
  const subscriber = await open({ sub: "witness-sub", weft: { subscribe: ["topic:witness"] } }, "json")
  subscriber.send({ type: "subscribe", id: 1, channel: "topic:witness" })
  expect(await subscriber.answer(1)).toEqual({ type: "ack", id: 1 })
  witness = { publisher, subscriber, sent: 0 }
})

afterAll(async () => {
  await closeAll(clients)
  await cluster?.stop()
})

const open = async (claims: Claims, encoding: Encoding = "msgpack"): Promise<Client> => {
  const { client } = await connectAs(node.url(), claims, encoding)
  clients.push(client)
  return client
}

/** Another connection still gets messages: the witness publishes one and its subscriber receives it. */
const witnessStillServed = async (): Promise<void> => {
  const seq = witness.sent++
  witness.publisher.send({ type: "publish", id: 1000 + seq, channel: "topic:witness", data: { seq } })
  expect(await witness.publisher.answer(1000 + seq)).toEqual({ type: "ack", id: 1000 + seq })
  const message = await witness.subscriber.nextOf("message")
  expect(message.data).toEqual({ seq })
}

let pingId = 1
const stillUsable = (client: Client): Promise<void> => client.ping(pingId++)

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))

interface Case {
  readonly name: string
  readonly payload: Uint8Array | string
  readonly code: number
  readonly error: string
  /** The id the error must carry; none when absent. */
  readonly id?: number
}

const pingBytes = encode({ type: "ping", id: 1 })
const nested = (depth: number): unknown => (depth === 0 ? "bottom" : [nested(depth - 1)])

const msgpackCases: ReadonlyArray<Case> = [
  { name: "the reserved byte 0xc1", payload: hex("c1"), code: 1000, error: "malformed_frame" },
  { name: "a map cut short after its first key", payload: hex("82 a4 74 79 70 65"), code: 1000, error: "malformed_frame" },
  { name: "a frame missing its last bytes", payload: pingBytes.subarray(0, pingBytes.length - 2), code: 1000, error: "malformed_frame" },
  { name: "bytes after the value", payload: new Uint8Array([...pingBytes, 0x00]), code: 1000, error: "malformed_frame" },
  { name: "an empty message", payload: new Uint8Array(0), code: 1000, error: "malformed_frame" },
  { name: "an array", payload: hex("92 a4 70 69 6e 67 07"), code: 1000, error: "malformed_frame" },
  { name: "a number", payload: encode(42), code: 1000, error: "malformed_frame" },
  { name: "a string", payload: encode("ping"), code: 1000, error: "malformed_frame" },
  { name: "nil", payload: hex("c0"), code: 1000, error: "malformed_frame" },
  {
    name: "a timestamp extension in data",
    payload: hex("84 a4 74 79 70 65 a7 70 75 62 6c 69 73 68 a2 69 64 0d a7 63 68 61 6e 6e 65 6c ac 72 6f 6f 6d 3a 67 65 6e 65 72 61 6c a4 64 61 74 61 d6 ff 00 00 00 01"),
    code: 1000,
    error: "malformed_frame",
    id: 13
  },
  {
    name: "data nested deeper than 64",
    payload: encode({ type: "publish", id: 30, channel: "topic:deep", data: nested(70) }),
    code: 1000,
    error: "malformed_frame",
    id: 30
  },
  { name: "a text message on the msgpack protocol", payload: "{\"type\":\"ping\",\"id\":1}", code: 1004, error: "wrong_encoding" },
  { name: "an unknown type", payload: encode({ type: "hello", id: 10 }), code: 1001, error: "unknown_type", id: 10 },
  { name: "an unknown type without id", payload: encode({ type: "hello" }), code: 1001, error: "unknown_type" },
  { name: "no type", payload: encode({ id: 15, channel: "topic:x" }), code: 1002, error: "invalid_frame", id: 15 },
  { name: "a type that is not a string", payload: encode({ type: 7, id: 16 }), code: 1002, error: "invalid_frame", id: 16 },
  { name: "a missing channel", payload: encode({ type: "subscribe", id: 11 }), code: 1002, error: "invalid_frame", id: 11 },
  { name: "a channel that is a number", payload: encode({ type: "publish", id: 14, channel: 42, data: "x" }), code: 1002, error: "invalid_frame", id: 14 },
  { name: "a publish without data", payload: encode({ type: "publish", id: 17, channel: "topic:x" }), code: 1002, error: "invalid_frame", id: 17 },
  { name: "an empty rpc method", payload: encode({ type: "rpc", id: 18, method: "" }), code: 1002, error: "invalid_frame", id: 18 },
  { name: "an rpc method of 101 characters", payload: encode({ type: "rpc", id: 19, method: "m".repeat(101) }), code: 1002, error: "invalid_frame", id: 19 },
  { name: "a request without id", payload: encode({ type: "subscribe", channel: "topic:x" }), code: 1002, error: "invalid_frame" },
  { name: "an id of 2^32", payload: encode({ type: "rpc", id: 2 ** 32, method: "conn.info" }), code: 1002, error: "invalid_frame" },
  { name: "a negative id", payload: encode({ type: "rpc", id: -1, method: "conn.info" }), code: 1002, error: "invalid_frame" },
  { name: "a fractional id", payload: encode({ type: "rpc", id: 1.5, method: "conn.info" }), code: 1002, error: "invalid_frame" },
  { name: "an id that is a string", payload: encode({ type: "rpc", id: "7", method: "conn.info" }), code: 1002, error: "invalid_frame" },
  { name: "a ping with an id out of range", payload: encode({ type: "ping", id: -5 }), code: 1002, error: "invalid_frame" }
]

const jsonCases: ReadonlyArray<Case> = [
  { name: "invalid JSON", payload: "{\"type\":\"subscribe\",\"id\":9,\"channel\":\"topic:general\"", code: 1000, error: "malformed_frame" },
  { name: "a binary message on the JSON protocol", payload: pingBytes, code: 1004, error: "wrong_encoding" },
  { name: "an array", payload: "[\"ping\",7]", code: 1000, error: "malformed_frame" },
  { name: "a number", payload: "42", code: 1000, error: "malformed_frame" },
  { name: "a string", payload: "\"ping\"", code: 1000, error: "malformed_frame" },
  { name: "null", payload: "null", code: 1000, error: "malformed_frame" },
  { name: "an unknown type", payload: "{\"type\":\"hello\",\"id\":10}", code: 1001, error: "unknown_type", id: 10 },
  { name: "a missing channel", payload: "{\"type\":\"subscribe\",\"id\":11}", code: 1002, error: "invalid_frame", id: 11 },
  { name: "an id that is a string", payload: "{\"type\":\"rpc\",\"id\":\"3\",\"method\":\"conn.info\"}", code: 1002, error: "invalid_frame" },
  { name: "an id of 2^32", payload: "{\"type\":\"rpc\",\"id\":4294967296,\"method\":\"conn.info\"}", code: 1002, error: "invalid_frame" }
]

const runCases = async (encoding: Encoding, cases: ReadonlyArray<Case>): Promise<void> => {
  const client = await open(everything, encoding)
  for (const { name, payload, code, error, id } of cases) {
    client.sendRaw(payload)
    const answer = await client.nextOf("error")
    expect(answer, name).toEqual({
      type: "error",
      ...(id === undefined ? {} : { id }),
      code,
      name: error,
      message: expect.any(String)
    })
    await stillUsable(client)
    await witnessStillServed()
  }
  // One answer per bad frame, nothing else.
  expect(client.frames).toEqual([])
  expect(client.undecodable).toEqual([])
  client.send({ type: "rpc", id: 99, method: "conn.info" })
  expect(await client.answer(99)).toMatchObject({ type: "reply", id: 99 })
}

describe("bad frames get their documented error and the connection stays usable", () => {
  it("on the msgpack protocol", async () => {
    await runCases("msgpack", msgpackCases)
  })

  it("on the JSON protocol", async () => {
    await runCases("json", jsonCases)
  })
})

describe("request ids in flight", () => {
  it("a publish reusing the id of one in flight gets 1003 and is not carried out; the first still gets its ack", async () => {
    const client = await open(everything)
    client.send({ type: "subscribe", id: 1, channel: "topic:dup" })
    expect(await client.answer(1)).toEqual({ type: "ack", id: 1 })

    sendTogether(client, [
      { type: "publish", id: 7, channel: "topic:dup", data: "first" },
      { type: "publish", id: 7, channel: "topic:dup", data: "second" }
    ])
    const answers = [await client.answer(7), await client.answer(7)]
    expect(answers).toContainEqual({ type: "ack", id: 7 })
    expect(answers).toContainEqual({ type: "error", id: 7, code: 1003, name: "duplicate_id", message: expect.any(String) })
    expect(await client.nextOf("message")).toMatchObject({ channel: "topic:dup", data: "first" })

    // Answered, the id is free again.
    client.send({ type: "publish", id: 7, channel: "topic:dup", data: "third" })
    expect(await client.answer(7)).toEqual({ type: "ack", id: 7 })
    expect(await client.nextOf("message")).toMatchObject({ data: "third" })
    expect(client.frames).toEqual([])
    await witnessStillServed()
  })

  it("a subscribe reusing the id of one in flight gets 1003, not already_subscribed, and subscribes once", async () => {
    const client = await open(everything)
    sendTogether(client, [
      { type: "subscribe", id: 8, channel: "topic:dup-sub" },
      { type: "subscribe", id: 8, channel: "topic:dup-sub" }
    ])
    const answers = [await client.answer(8), await client.answer(8)]
    expect(answers).toContainEqual({ type: "ack", id: 8 })
    expect(answers).toContainEqual({ type: "error", id: 8, code: 1003, name: "duplicate_id", message: expect.any(String) })
    client.send({ type: "rpc", id: 9, method: "conn.info" })
    expect(await client.answer(9)).toMatchObject({ type: "reply", result: { subscriptions: ["topic:dup-sub"] } })
    await stillUsable(client)
  })
})

describe("frame size", () => {
  it("a frame of exactly --max-frame-bytes is served; a bigger one closes the connection with 1009 and nothing else", async () => {
    const client = await open(everything)
    const publishOfSize = (size: number, id: number): Uint8Array => {
      for (let n = 0; n < size; n++) {
        const bytes = encode({ type: "publish", id, channel: "topic:size", data: "a".repeat(n) })
        if (bytes.length === size) return bytes
      }
      throw new Error(`no publish frame of exactly ${size} bytes`)
    }
    client.sendRaw(publishOfSize(1024, 1))
    expect(await client.answer(1)).toEqual({ type: "ack", id: 1 })

    client.sendRaw(publishOfSize(1025, 2))
    const closed = await client.closed
    expect(closed.code).toBe(1009)
    expect(client.frames).toEqual([])
    await witnessStillServed()
  })
})

describe("after all of it", () => {
  it("the node is alive and serving: health, readiness, old and new connections", async () => {
    expect(node.process.exitCode).toBeNull()
    expect(await isServing(node)).toBe(true)
    expect((await readiness(node)).ready).toBe(true)
    await stillUsable(witness.publisher)
    const fresh = await open(everything, "json")
    await stillUsable(fresh)
    await witnessStillServed()
    // The witness saw every message, once and in order, throughout.
    expect(witness.subscriber.frames.filter((frame) => frame.type === "message")).toEqual([])
    expect(witness.subscriber.undecodable).toEqual([])
    expect(witness.sent).toBeGreaterThan(msgpackCases.length + jsonCases.length)
  })
})
