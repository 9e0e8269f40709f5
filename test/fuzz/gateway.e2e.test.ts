/**
 * Fuzzing a real node: thousands of random, mutated and hostile frames over two WebSockets (one
 * msgpack, one JSON). The oracle is the decoder itself, which the in-process fuzz checks against
 * the documented codes: every frame the decoder refuses gets exactly that error (code and id), in
 * order; every request it accepts gets exactly one answer; pings get their pongs. Meanwhile a
 * witness pair of connections keeps exchanging messages, the node stays up and ready, and its
 * resident memory stays within a bound. The rate limit is set out of the way (it has its own
 * tests in test/gateway/limits.test.ts).
 */
import { CloseCodes, Codec, type ServerFrame } from "@weft/protocol"
import { Either, FastCheck as fc } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { isServing, readiness, residentBytes, startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { type Client, clientFrameBytes, closeAll, connectAs, tcpSocket } from "../support/wsClient.ts"
import { e2eFrames, timeoutFor } from "./budget.ts"
import {
  brokenFrame,
  type Encoding,
  encodePlain,
  hugeLength,
  jsonLoneSurrogate,
  msgpackInvalidUtf8,
  mutatedFrame,
  nestedValue,
  requestId,
  validFrame
} from "./clientFrames.ts"
import { decodingCodes } from "./verdict.ts"

const maxFrameBytes = 65_536
/** Generous: the node's RSS may grow this much over the whole fuzz run (GC timing, allocator caches). */
const memoryBoundBytes = 96 * 1024 * 1024

let node: RunningNode
const clients: Array<Client> = []
let witness: { readonly publisher: Client; readonly subscriber: Client; sent: number }

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "fuzz-gw", "--rate-per-second", "1000000", "--rate-burst", "1000000"])
  const publisher = await open("witness-pub", "msgpack", { publish: ["topic:witness"] })
  const subscriber = await open("witness-sub", "json", { subscribe: ["topic:witness"] })
  subscriber.send({ type: "subscribe", id: 1, channel: "topic:witness" })
  expect(await subscriber.answer(1)).toEqual({ type: "ack", id: 1 })
  witness = { publisher, subscriber, sent: 0 }
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([node])
})

const open = async (sub: string, encoding: Encoding, weft?: { readonly subscribe?: ReadonlyArray<string>; readonly publish?: ReadonlyArray<string> }) => {
  const { client } = await connectAs(node.url(), { sub, ...(weft === undefined ? {} : { weft }) }, encoding)
  clients.push(client)
  return client
}

const witnessStillServed = async (): Promise<void> => {
  const seq = witness.sent++
  witness.publisher.send({ type: "publish", id: 10_000 + seq, channel: "topic:witness", data: { seq } })
  expect(await witness.publisher.answer(10_000 + seq)).toEqual({ type: "ack", id: 10_000 + seq })
  expect((await witness.subscriber.nextOf("message")).data).toEqual({ seq })
}

/** Inputs for one encoding: mostly broken, some valid, some hostile in the ways the issue lists. */
const inputs = (encoding: Encoding): fc.Arbitrary<Codec.Raw> =>
  fc.oneof(
    { weight: 4, arbitrary: mutatedFrame(encoding) },
    { weight: 4, arbitrary: brokenFrame(encoding).map((broken) => encodePlain(broken.frame, encoding)) },
    { weight: 3, arbitrary: validFrame(encoding).map((frame) => encodePlain(frame, encoding)) },
    { weight: 1, arbitrary: encoding === "msgpack" ? hugeLength.map((huge) => huge.bytes) : jsonLoneSurrogate.map((lone) => lone.text) },
    { weight: 1, arbitrary: encoding === "msgpack" ? msgpackInvalidUtf8.map((bad) => bad.bytes) : fc.string({ unit: "binary", maxLength: 100 }) },
    { weight: 1, arbitrary: fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.string({ maxLength: 60 })) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 50, max: 400 }), requestId).map(([levels, id]) =>
        encodePlain({ type: "publish", id, channel: "topic:deep", data: nestedValue(levels, [true, false]) }, encoding))
    }
  ).filter((raw) => Codec.toBytes(raw).length <= maxFrameBytes)

/** What the node must write at once for one input (errors and pongs), or `request` when the answer may come later. */
type Expected =
  | { readonly kind: "now"; readonly frame: ServerFrame }
  | { readonly kind: "request"; readonly id: number }
  | { readonly kind: "nothing" }

const expectedFor = (raw: Codec.Raw, encoding: Encoding): Expected => {
  const verdict = Codec.decodeClientFrame(raw, encoding)
  if (Either.isLeft(verdict)) {
    const { code, name, id } = verdict.left
    return { kind: "now", frame: { type: "error", ...(id === undefined ? {} : { id }), code, name, message: "" } }
  }
  const frame = verdict.right
  if (frame.type === "ping") return { kind: "now", frame: frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id } }
  if (frame.type === "pong") return { kind: "nothing" }
  return { kind: "request", id: frame.id }
}

/** Answers written at once: decoding errors and pongs (a request's answer may come any time later). */
const isImmediate = (frame: ServerFrame): boolean =>
  frame.type === "pong" || (frame.type === "error" && decodingCodes.has(frame.code))
const isRequestAnswer = (frame: ServerFrame): frame is Extract<ServerFrame, { readonly type: "ack" | "reply" | "error" }> =>
  frame.type === "ack" || frame.type === "reply" || (frame.type === "error" && !decodingCodes.has(frame.code))

/** Errors compare without their human-readable message. */
const comparable = (frame: ServerFrame): unknown => (frame.type === "error" ? { ...frame, message: "" } : frame)

const sentinelBase = 4_000_000_000

const fuzzConnection = async (encoding: Encoding, count: number, seed: number): Promise<void> => {
  const client = await open(`fuzz-${encoding}`, encoding)
  const raws = fc.sample(inputs(encoding), { numRuns: count, seed })
  const requests: Array<number> = []
  const batch = 50
  for (let start = 0, round = 0; start < raws.length; start += batch, round++) {
    const slice = raws.slice(start, start + batch)
    const expected: Array<unknown> = []
    for (const raw of slice) {
      client.sendRaw(raw)
      const outcome = expectedFor(raw, encoding)
      if (outcome.kind === "now") expected.push(comparable(outcome.frame))
      else if (outcome.kind === "request") requests.push(outcome.id)
    }
    // A sentinel ping: once its pong is here, every immediate answer of the batch is too, in order.
    const sentinel = sentinelBase + round
    client.send({ type: "ping", id: sentinel })
    await client.nextOf("pong", (frame) => frame.id === sentinel, 20_000)
    const immediate = client.frames.filter(isImmediate)
    for (const frame of immediate) client.frames.splice(client.frames.indexOf(frame), 1)
    const context = `seed ${seed}, ${encoding} batch ${round}`
    expect(immediate.map(comparable), context).toEqual(expected)
    expect(client.undecodable, context).toEqual([])
  }
  // Every accepted request gets exactly one answer (ack, reply, or an error of the request).
  const answers: Array<number> = []
  const deadline = Date.now() + 30_000
  while (answers.length < requests.length && Date.now() < deadline) {
    for (const frame of client.frames.splice(0)) if (isRequestAnswer(frame) && frame.id !== undefined) answers.push(frame.id)
    if (answers.length < requests.length) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // A last round trip, then anything still to come would be an extra answer.
  await client.ping(sentinelBase - 1)
  for (const frame of client.frames.splice(0)) if (isRequestAnswer(frame) && frame.id !== undefined) answers.push(frame.id)
  expect([...answers].sort((a, b) => a - b), `seed ${seed}, ${encoding}: one answer per accepted request`).toEqual([...requests].sort((a, b) => a - b))
  expect(client.socket.readyState).toBe(client.socket.OPEN)
}

describe(`a real node under ${e2eFrames} fuzzed frames`, () => {
  it("answers every bad frame with its documented error and every request once, stays up, keeps serving others, memory bounded", async () => {
    const seed = Number(process.env["FUZZ_SEED"] ?? Date.now() % 1_000_000)
    await witnessStillServed()
    const before = residentBytes(node)
    await fuzzConnection("msgpack", Math.ceil(e2eFrames / 2), seed)
    await witnessStillServed()
    await fuzzConnection("json", Math.ceil(e2eFrames / 2), seed + 1)
    await witnessStillServed()
    const after = residentBytes(node)
    expect(after - before, `RSS grew from ${before} to ${after} bytes (seed ${seed})`).toBeLessThan(memoryBoundBytes)
    expect(node.process.exitCode).toBeNull()
    expect(await isServing(node)).toBe(true)
    expect((await readiness(node)).ready).toBe(true)
    expect(witness.subscriber.undecodable).toEqual([])
  }, timeoutFor(e2eFrames, 20))

  it("a text message that is not UTF-8 closes only that connection (1007 invalid_payload, RFC 6455); the node serves on", async () => {
    const client = await open("fuzz-utf8", "json")
    tcpSocket(client.socket).write(clientFrameBytes(Uint8Array.of(0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d), 1))
    const closed = await client.closed
    expect(closed.code).toBe(CloseCodes.invalid_payload)
    await witnessStillServed()
    expect(await isServing(node)).toBe(true)
  })
})
