/**
 * Fuzzing the frame decoders in process, at scale: random and mutated msgpack and JSON, truncated
 * frames, lengths that promise more than the frame holds, deep nesting, wrong types, unknown types,
 * invalid UTF-8 and lone surrogates. Every input gets an answer (no exception); refusals carry the
 * code (and id) docs/protocol.md documents for that kind of input; accepted frames can be sent on
 * to every client. The cases are shared out of `FUZZ_RUNS` (100,000 by default; see budget.ts).
 *
 * packages/protocol/test/codec.test.ts holds the codec's own properties (round trips, a few
 * thousand runs); this file adds the exact documented answer per kind of bad input, and the scale.
 */
import { Codec, type Frame } from "@weft/protocol"
import { Either, FastCheck as fc } from "effect"
import { describe, it } from "vitest"
import { shareOf, timeoutFor } from "./budget.ts"
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
  truncatedFrame,
  validFrame
} from "./clientFrames.ts"
import { assertAll } from "./assertAll.ts"
import { checkVerdict, decodeClient, expectRefusal } from "./verdict.ts"

const properties = 12
const runs = shareOf(properties)
const timeout = timeoutFor(runs, 2)
const encodings: ReadonlyArray<Encoding> = ["msgpack", "json"]


describe(`client frame decoder, ${runs} cases per property`, () => {
  it("valid frames of every type are accepted as they were sent", async () => {
    await assertAll(
      fc.property(fc.constantFrom(...encodings).chain((encoding) => fc.tuple(fc.constant(encoding), validFrame(encoding))), ([encoding, frame]) => {
        const raw = encodePlain(frame, encoding)
        const verdict = decodeClient(raw, encoding)
        if (Either.isLeft(verdict)) throw new Error(`refused a valid frame ${JSON.stringify(frame).slice(0, 200)}: ${verdict.left.message}`)
        checkVerdict(raw, encoding, verdict)
      }),
      runs
    )
  }, timeout)

  it("random bytes and text: an answer, never an exception; the wrong kind of message is 1004", async () => {
    const mapLike = fc.tuple(fc.constantFrom(0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x8f, 0xde, 0xdf), fc.uint8Array({ maxLength: 120 }))
      .map(([head, tail]) => Uint8Array.of(head, ...tail))
    const input = fc.oneof(fc.uint8Array({ maxLength: 200 }), mapLike, fc.string({ unit: "binary", maxLength: 200 }), fc.json({ maxDepth: 4 }))
    await assertAll(
      fc.property(input, (raw) => {
        for (const encoding of encodings) {
          const verdict = decodeClient(raw, encoding)
          checkVerdict(raw, encoding, verdict)
          const wrongKind = (encoding === "msgpack") === (typeof raw === "string")
          if (wrongKind) expectRefusal(verdict, 1004, undefined, "wrong kind of message")
        }
      }),
      runs
    )
  }, timeout)

  for (const encoding of encodings) {
    it(`mutated ${encoding} frames (set, insert, delete, repeat bytes): an answer, never an exception`, async () => {
      await assertAll(
        fc.property(mutatedFrame(encoding), (raw) => {
          checkVerdict(raw, encoding, decodeClient(raw, encoding))
        }),
        runs,
        // Found at 1,000,000 runs: a JSON number too big for a double reads as -Infinity.
        encoding === "json" ? [["{\"type\":\"publish\",\"id\":100,\"channel\":\"AA\",\"data\":-110137577332830861e+303}"]] : []
      )
    }, timeout)
  }

  it("every strict prefix of a msgpack frame is 1000 without an id", async () => {
    await assertAll(
      fc.property(truncatedFrame, (bytes) => {
        expectRefusal(decodeClient(bytes, "msgpack"), 1000, undefined, `prefix of ${bytes.length} bytes`)
      }),
      runs
    )
  }, timeout)

  it("a length or count beyond the frame's end (up to 2^32-1), in data or at the top: 1000 without an id", async () => {
    await assertAll(
      fc.property(hugeLength, ({ bytes, where }) => {
        expectRefusal(decodeClient(bytes, "msgpack"), 1000, undefined, where)
      }),
      runs
    )
  }, timeout)

  it("nesting: data nested up to 64 levels (the frame is 1) is accepted, deeper is 1000 with the id, in both encodings", async () => {
    const input = fc.tuple(
      fc.constantFrom(...encodings),
      fc.oneof(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 1000 })),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
      requestId,
      fc.boolean()
    )
    await assertAll(
      fc.property(input, ([encoding, levels, kinds, id, asParams]) => {
        const value = nestedValue(levels, kinds)
        const frame = asParams ? { type: "rpc", id, method: "m", params: value } : { type: "publish", id, channel: "topic:deep", data: value }
        const raw = encodePlain(frame, encoding)
        const verdict = decodeClient(raw, encoding)
        // The frame is level 1, so `levels` containers inside it reach level levels + 1.
        if (levels + 1 <= Codec.maxDepth) {
          if (Either.isLeft(verdict)) throw new Error(`${levels} levels refused: ${verdict.left.message}`)
          checkVerdict(raw, encoding, verdict)
        } else {
          expectRefusal(verdict, 1000, id, `${levels} levels in ${encoding}`)
        }
      }),
      runs
    )
  }, timeout)

  for (const encoding of encodings) {
    it(`one wrong, missing or unknown field (${encoding}): the documented code, with the id when readable`, async () => {
      await assertAll(
        fc.property(brokenFrame(encoding), ({ frame, what, code, id }) => {
          expectRefusal(decodeClient(encodePlain(frame, encoding), encoding), code, id, `${what} in ${JSON.stringify(frame).slice(0, 200)}`)
        }),
        runs
      )
    }, timeout)
  }

  it("invalid UTF-8 in msgpack strings is read as U+FFFD: in type 1001, in channel 2003, in data accepted and well-formed", async () => {
    await assertAll(
      fc.property(msgpackInvalidUtf8, ({ bytes, where, id }) => {
        const verdict = decodeClient(bytes, "msgpack")
        if (where === "type") expectRefusal(verdict, 1001, id, "invalid UTF-8 in type")
        else if (where === "channel") expectRefusal(verdict, 2003, id, "invalid UTF-8 in channel")
        else {
          if (Either.isLeft(verdict)) throw new Error(`invalid UTF-8 in ${where} refused: ${verdict.left.message}`)
          if (!JSON.stringify(verdict.right).includes("\ufffd")) throw new Error("the invalid bytes were not replaced with U+FFFD")
          checkVerdict(bytes, "msgpack", verdict)
        }
      }),
      runs
    )
  }, timeout)

  it("a lone surrogate escape anywhere in a JSON frame is 1000 with the id", async () => {
    await assertAll(
      fc.property(jsonLoneSurrogate, ({ text, where, id }) => {
        expectRefusal(decodeClient(text, "json"), 1000, id, `lone surrogate in ${where}: ${text}`)
      }),
      runs
    )
  }, timeout)
})

describe(`server frame decoder (the SDK's), ${runs} cases`, () => {
  const samples: ReadonlyArray<Frame.ServerFrame> = [
    { type: "welcome", protocol: "weft.v1", conn: "conn/a/1", user: "u", node: "a", heartbeat: 25_000, limits: { maxFrameBytes: 65_536, maxSubscriptions: 100, ratePerSecond: 100 } },
    { type: "ack", id: 1, position: { epoch: "e", offset: 3 }, recovery: "ok" },
    { type: "reply", id: 2, result: { a: [1, "b", null] } },
    { type: "error", id: 3, code: 2000, name: "forbidden", message: "no" },
    { type: "message", channel: "room:x", data: { kind: "message", id: "e-1", body: "hi" }, from: "bob", position: { epoch: "e", offset: 1 }, at: 1_764_057_600_000 },
    { type: "goodbye", reason: "draining", reconnect: true, after: 2000 },
    { type: "refresh-required", expiresAt: 1, deadline: 2 },
    { type: "unsubscribed", channel: "room:x", reason: "forbidden" }
  ]
  const mutations = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), { minLength: 1, maxLength: 4 })

  it("mutated server frames in both encodings: an answer, never an exception, 1000/1002/1004 only", async () => {
    await assertAll(
      fc.property(fc.constantFrom(...samples), fc.constantFrom(...encodings), mutations, (frame, encoding, changes) => {
        let bytes = Codec.toBytes(Codec.encodeServerFrame(frame, encoding))
        for (const [at, byte, insert] of changes) {
          const index = at % (bytes.length + 1)
          bytes = insert
            ? Uint8Array.from([...bytes.subarray(0, index), byte, ...bytes.subarray(index)])
            : Uint8Array.from([...bytes.subarray(0, index), ...bytes.subarray(index + 1)])
        }
        const raw = encoding === "msgpack" ? bytes : Buffer.from(bytes).toString("utf8")
        let verdict: Either.Either<unknown, { readonly code: number }>
        try {
          verdict = Codec.decodeServerFrame(raw, encoding)
        } catch (error) {
          throw new Error(`decodeServerFrame threw: ${String(error)}`)
        }
        if (Either.isLeft(verdict) && ![1000, 1002, 1004].includes(verdict.left.code)) throw new Error(`code ${verdict.left.code}`)
      }),
      runs
    )
  }, timeout)
})
