/**
 * The codec: every frame survives both encodings; the msgpack is plain (an
 * independent library reads it and writes what we read); bad input of every
 * kind gets its catalogue code, keeps the id when one is readable, and never
 * throws; subprotocol negotiation; channel names and permission patterns.
 */
import { decode as plainDecode, encode as plainEncode } from "@msgpack/msgpack"
import { Channel, Codec, ErrorCodes, Frame, ProtocolError } from "@weft/protocol"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { bytesFromHex, isPlainData, jsonData, msgpackData } from "./helpers.ts"

type Encoding = Codec.Encoding
const encodings: ReadonlyArray<Encoding> = ["msgpack", "json"]
const catalogue: ReadonlyArray<number> = Object.values(ErrorCodes)

// ---------------------------------------------------------------------------
// Arbitraries: each frame's own Schema, with application data drawn from plain values
// ---------------------------------------------------------------------------

const dataOf = (data: fc.Arbitrary<unknown>) => Schema.Unknown.annotations({ arbitrary: () => () => data })

const clientSchemas = (data: fc.Arbitrary<unknown>) => {
  const Data = dataOf(data)
  return {
    subscribe: Frame.Subscribe,
    unsubscribe: Frame.Unsubscribe,
    publish: Schema.Struct({ ...Frame.Publish.fields, data: Data }),
    rpc: Schema.Struct({ ...Frame.Rpc.fields, params: Schema.optional(Data) }),
    ping: Frame.Ping,
    pong: Frame.Pong,
    refresh: Frame.Refresh
  } as const
}

const serverSchemas = (data: fc.Arbitrary<unknown>) => {
  const Data = dataOf(data)
  return {
    welcome: Frame.Welcome,
    ack: Frame.Ack,
    reply: Schema.Struct({ ...Frame.Reply.fields, result: Data }),
    error: Frame.ErrorFrame,
    message: Schema.Struct({ ...Frame.Message.fields, data: Data }),
    ping: Frame.Ping,
    pong: Frame.Pong,
    goodbye: Frame.Goodbye,
    "refresh-required": Frame.RefreshRequired,
    unsubscribed: Frame.Unsubscribed
  } as const
}

/** Numbers both encodings carry exactly: finite, and not -0 (written as 0). Bounded by the codec's depth. */
const exactNumbers = (value: unknown, depth = 0): boolean => {
  if (depth > Codec.maxDepth) return false
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0)
  if (value instanceof Uint8Array) return true
  if (Array.isArray(value)) return value.every((item) => exactNumbers(item, depth + 1))
  if (typeof value === "object" && value !== null) return Object.values(value).every((item) => exactNumbers(item, depth + 1))
  return true
}

const dataFor = (encoding: Encoding) => (encoding === "msgpack" ? msgpackData : jsonData)

/** The client frames of one type, for one encoding. */
const clientFrames = (type: Frame.ClientFrame["type"], encoding: Encoding): fc.Arbitrary<Frame.ClientFrame> => {
  const schemas = clientSchemas(dataFor(encoding))
  const arbitraries: { readonly [K in Frame.ClientFrame["type"]]: fc.Arbitrary<Frame.ClientFrame> } = {
    subscribe: Arbitrary.make(schemas.subscribe),
    unsubscribe: Arbitrary.make(schemas.unsubscribe),
    publish: Arbitrary.make(schemas.publish),
    rpc: Arbitrary.make(schemas.rpc),
    ping: Arbitrary.make(schemas.ping),
    pong: Arbitrary.make(schemas.pong),
    refresh: Arbitrary.make(schemas.refresh)
  }
  return arbitraries[type].filter((frame) => exactNumbers(frame))
}

const serverFrames = (type: Frame.ServerFrame["type"], encoding: Encoding): fc.Arbitrary<Frame.ServerFrame> => {
  const schemas = serverSchemas(dataFor(encoding))
  const arbitraries: { readonly [K in Frame.ServerFrame["type"]]: fc.Arbitrary<Frame.ServerFrame> } = {
    welcome: Arbitrary.make(schemas.welcome),
    ack: Arbitrary.make(schemas.ack),
    reply: Arbitrary.make(schemas.reply),
    error: Arbitrary.make(schemas.error),
    message: Arbitrary.make(schemas.message),
    ping: Arbitrary.make(schemas.ping),
    pong: Arbitrary.make(schemas.pong),
    goodbye: Arbitrary.make(schemas.goodbye),
    "refresh-required": Arbitrary.make(schemas["refresh-required"]),
    unsubscribed: Arbitrary.make(schemas.unsubscribed)
  }
  return arbitraries[type].filter((frame) => exactNumbers(frame))
}

/** Both decoders, for properties that hold of each. */
const decoders: ReadonlyArray<(raw: Codec.Raw, encoding: Encoding) => Either.Either<unknown, ProtocolError>> = [
  Codec.decodeClientFrame,
  Codec.decodeServerFrame
]

const serverTypes = Frame.ServerFrame.members.map((member) => member.fields.type.literals[0])

const anyClientFrame = (encoding: Encoding) => fc.oneof(...Frame.clientFrameTypes.map((type) => clientFrames(type, encoding)))
const anyServerFrame = (encoding: Encoding) => fc.oneof(...serverTypes.map((type) => serverFrames(type, encoding)))

/** Buffers (what msgpack decoders return for bin) as plain Uint8Arrays, so that equality compares bytes. */
const normalize = (value: unknown, depth = 0): unknown => {
  if (depth > 100) throw new Error("normalize: too deep")
  if (value instanceof Uint8Array) return Uint8Array.from(value)
  if (Array.isArray(value)) return value.map((item) => normalize(item, depth + 1))
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).filter(([, item]) => item !== undefined).map(([key, item]) => [key, normalize(item, depth + 1)])
    )
  }
  return value
}

const msgpackBytes = (raw: Codec.Raw): Uint8Array => {
  if (typeof raw === "string") throw new Error("expected binary output for msgpack")
  return raw
}

const refused = (result: Either.Either<unknown, ProtocolError>): ProtocolError => {
  if (Either.isRight(result)) throw new Error(`expected a refusal, got ${JSON.stringify(result.right)}`)
  return result.left
}

const codeAndId = (error: ProtocolError): readonly [number, number | undefined] => [error.code, error.id]

const accepted = <A>(result: Either.Either<A, ProtocolError>): A => {
  if (Either.isLeft(result)) throw new Error(`expected a frame, got ${result.left.message}`)
  return result.right
}

/** What `decodeClientFrame` says about a JSON text or msgpack bytes. */
const clientJson = (text: string) => Codec.decodeClientFrame(text, "json")
const clientMsgpack = (bytes: Uint8Array | ReadonlyArray<number>) => Codec.decodeClientFrame(Uint8Array.from(bytes), "msgpack")

/** Arrays nested `levels` deep around 1: `[[[1]]]` for 3. */
const nested = (levels: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < levels; i++) value = [value]
  return value
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

describe("round trips", () => {
  for (const encoding of encodings) {
    for (const type of Frame.clientFrameTypes) {
      it(`client ${type} survives ${encoding}`, () => {
        fc.assert(
          fc.property(clientFrames(type, encoding), (frame) => {
            const raw = Codec.encodeClientFrame(frame, encoding)
            expect(typeof raw).toBe(encoding === "json" ? "string" : "object")
            const decoded = accepted(Codec.decodeClientFrame(raw, encoding))
            expect(decoded.type).toBe(type)
            expect(normalize(decoded)).toEqual(normalize(frame))
          }),
          { numRuns: 150 }
        )
      })
    }
    for (const type of serverTypes) {
      it(`server ${type} survives ${encoding}`, () => {
        fc.assert(
          fc.property(serverFrames(type, encoding), (frame) => {
            const decoded = accepted(Codec.decodeServerFrame(Codec.encodeServerFrame(frame, encoding), encoding))
            expect(decoded.type).toBe(type)
            expect(normalize(decoded)).toEqual(normalize(frame))
          }),
          { numRuns: 150 }
        )
      })
    }
  }

  it("a msgpack frame re-encoded for JSON subscribers is the frame's JSON encoding", () => {
    fc.assert(
      fc.property(anyServerFrame("msgpack"), (frame) => {
        const bytes = msgpackBytes(Codec.encodeServerFrame(frame, "msgpack"))
        expect(Codec.msgpackToJson(bytes)).toBe(Codec.encodeServerFrame(frame, "json"))
      }),
      { numRuns: 300 }
    )
  })

  it("bytes reach JSON clients as {\"$base64\": ...}, wherever they are", () => {
    const big = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 256)
    const frame: Frame.ServerFrame = {
      type: "message",
      channel: "sensor:1",
      data: { small: Uint8Array.of(0xde, 0xad, 0xbe, 0xef), list: [Uint8Array.of(), big], buffer: Buffer.from("hi") },
      at: 1
    }
    const json: unknown = JSON.parse(String(Codec.encodeServerFrame(frame, "json")))
    expect(json).toEqual({
      type: "message",
      channel: "sensor:1",
      data: {
        small: { $base64: "3q2+7w==" },
        list: [{ $base64: "" }, { $base64: Buffer.from(big).toString("base64") }],
        buffer: { $base64: "aGk=" }
      },
      at: 1
    })
    // On msgpack they are bin values.
    const decoded = accepted(Codec.decodeServerFrame(Codec.encodeServerFrame(frame, "msgpack"), "msgpack"))
    expect(normalize(decoded)).toEqual(normalize(frame))
  })

  it("a JSON client's {\"$base64\": ...} stays a map", () => {
    const frame = accepted(clientJson(`{"type":"publish","id":1,"channel":"a","data":{"$base64":"AQI="}}`))
    expect(frame).toEqual({ type: "publish", id: 1, channel: "a", data: { $base64: "AQI=" } })
  })

  it("undefined is written the way JSON.stringify writes it, in both encodings", () => {
    const frame: Frame.ServerFrame = { type: "reply", id: 1, result: { gone: undefined, list: [undefined, 1] } }
    const bytes = msgpackBytes(Codec.encodeServerFrame(frame, "msgpack"))
    expect(plainDecode(bytes)).toEqual({ type: "reply", id: 1, result: { list: [null, 1] } })
    expect(Codec.encodeServerFrame(frame, "json")).toBe(`{"type":"reply","id":1,"result":{"list":[null,1]}}`)
  })

  it("numbers: integers in [-2^31, 2^32) are msgpack integers, the rest float 64; NaN becomes null in JSON", () => {
    const encodeAt = (at: number) => msgpackBytes(Codec.encodeServerFrame({ type: "message", channel: "c", data: null, at }, "msgpack"))
    const atBytes = (at: number) => {
      const bytes = encodeAt(at)
      return Array.from(bytes.subarray(bytes.length - 9))
    }
    expect(atBytes(1764072000000)).toEqual([0xcb, 0x42, 0x79, 0xab, 0xae, 0x28, 0xa0, 0x00, 0x00])
    expect(Array.from(encodeAt(4294967295).slice(-5))).toEqual([0xce, 0xff, 0xff, 0xff, 0xff])
    expect(Array.from(encodeAt(-2147483648).slice(-5))).toEqual([0xd2, 0x80, 0x00, 0x00, 0x00])
    const nan: Frame.ServerFrame = { type: "message", channel: "c", data: [Number.NaN, Infinity], at: 1 }
    expect(Codec.encodeServerFrame(nan, "json")).toBe(`{"type":"message","channel":"c","data":[null,null],"at":1}`)
    const back = accepted(Codec.decodeServerFrame(Codec.encodeServerFrame(nan, "msgpack"), "msgpack"))
    expect(back.type === "message" ? back.data : undefined).toEqual([Number.NaN, Infinity])
  })

  it("reads every msgpack integer and float format for ids", () => {
    const frameWithId = (idBytes: ReadonlyArray<number>) => [
      0x82, 0xa4, ...Buffer.from("type"), 0xa4, ...Buffer.from("ping"), 0xa2, ...Buffer.from("id"), ...idBytes
    ]
    const cases: ReadonlyArray<readonly [ReadonlyArray<number>, number]> = [
      [[0x05], 5],
      [[0xcc, 0x05], 5],
      [[0xcd, 0x00, 0x05], 5],
      [[0xce, 0xff, 0xff, 0xff, 0xff], 4294967295],
      [[0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05], 5],
      [[0xd0, 0x05], 5],
      [[0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05], 5],
      [[0xca, 0x40, 0xa0, 0x00, 0x00], 5],
      [[0xcb, 0x40, 0x14, 0, 0, 0, 0, 0, 0], 5]
    ]
    for (const [idBytes, id] of cases) {
      expect(accepted(clientMsgpack(frameWithId(idBytes)))).toEqual({ type: "ping", id })
    }
  })

  it("ignores unknown fields in both directions", () => {
    for (const encoding of encodings) {
      const raw = (value: unknown): Codec.Raw => encoding === "json" ? JSON.stringify(value) : plainEncode(value)
      expect(accepted(Codec.decodeClientFrame(raw({ type: "subscribe", id: 3, channel: "a", extra: [1], v: 2 }), encoding)))
        .toStrictEqual({ type: "subscribe", id: 3, channel: "a" })
      expect(accepted(Codec.decodeServerFrame(raw({ type: "ack", id: 3, future: { x: 1 } }), encoding)))
        .toStrictEqual({ type: "ack", id: 3 })
    }
  })
})

// ---------------------------------------------------------------------------
// Plain msgpack
// ---------------------------------------------------------------------------

describe("plain msgpack (read and written by @msgpack/msgpack)", () => {
  it("an independent library reads every server frame we write, as plain values", () => {
    fc.assert(
      fc.property(anyServerFrame("msgpack"), (frame) => {
        const read = plainDecode(msgpackBytes(Codec.encodeServerFrame(frame, "msgpack")))
        // An extension type would come back as ExtData or Date: not plain.
        expect(isPlainData(read)).toBe(true)
        expect(normalize(read)).toEqual(normalize(frame))
      }),
      { numRuns: 400 }
    )
  })

  it("an independent library reads every client frame we write", () => {
    fc.assert(
      fc.property(anyClientFrame("msgpack"), (frame) => {
        const read = plainDecode(msgpackBytes(Codec.encodeClientFrame(frame, "msgpack")))
        expect(isPlainData(read)).toBe(true)
        expect(normalize(read)).toEqual(normalize(frame))
      }),
      { numRuns: 400 }
    )
  })

  it("we read what an independent library writes", () => {
    fc.assert(
      fc.property(anyClientFrame("msgpack"), (frame) => {
        const bytes = plainEncode(frame, { ignoreUndefined: true })
        expect(normalize(accepted(Codec.decodeClientFrame(bytes, "msgpack")))).toEqual(normalize(frame))
      }),
      { numRuns: 400 }
    )
    fc.assert(
      fc.property(anyServerFrame("msgpack"), (frame) => {
        const bytes = plainEncode(frame, { ignoreUndefined: true })
        expect(normalize(accepted(Codec.decodeServerFrame(bytes, "msgpack")))).toEqual(normalize(frame))
      }),
      { numRuns: 400 }
    )
  })
})

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

describe("bad input", () => {
  const subscribeHeader = [0xa4, ...Buffer.from("type"), 0xa9, ...Buffer.from("subscribe")]
  const idEntry = (id: number) => [0xa2, ...Buffer.from("id"), id]
  const channelEntry = [0xa7, ...Buffer.from("channel"), 0xa1, 0x61]
  /** A publish map whose `data` is the given msgpack bytes. */
  const publishWithData = (id: number, data: ReadonlyArray<number>) => [
    0x84,
    0xa4, ...Buffer.from("type"), 0xa7, ...Buffer.from("publish"),
    ...idEntry(id),
    ...channelEntry,
    0xa4, ...Buffer.from("data"), ...data
  ]

  it("malformed msgpack: 1000, no id", () => {
    const cases: ReadonlyArray<ReadonlyArray<number>> = [
      [0xc1], // reserved
      [], // nothing
      [0x82, ...subscribeHeader], // truncated: 2 entries announced, 1 given
      [0xa5, 0x61], // truncated string
      [0x81, 0xa1, 0x61, 0xc4, 0x05, 0x01], // truncated bin
      [0x80, 0x80], // bytes after the value
      [0xd4, 0x05, 0x01], // unknown extension, top level
      [0x81, 0x91, 0x01, 0x02], // an array as a map key
      [0x81, 0x80, 0x02] // a map as a map key
    ]
    for (const bytes of cases) {
      const error = refused(clientMsgpack(bytes))
      expect([error.code, error.name, error.id], Buffer.from(bytes).toString("hex")).toEqual([1000, "malformed_frame", undefined])
    }
  })

  it("values that are not maps: 1000, no id", () => {
    const values: ReadonlyArray<unknown> = [[], [1, 2], ["type", "ping"], 1, -1, 1.5, null, true, "ping", Uint8Array.of(1)]
    for (const value of values) {
      expect(refused(clientMsgpack(plainEncode(value))).code).toBe(1000)
      if (!(value instanceof Uint8Array)) expect(refused(clientJson(JSON.stringify(value))).code).toBe(1000)
    }
  })

  it("the reserved byte 0xc1 and extension types inside a frame: 1000, with the id", () => {
    const insides: ReadonlyArray<ReadonlyArray<number>> = [
      [0xc1], // reserved
      [0xd6, 0xff, 0x00, 0x00, 0x00, 0x01], // timestamp 32
      [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1], // timestamp 64
      [0xd4, 0x00, 0x00], // msgpackr's undefined
      [0xd4, 0x42, 0x01], // msgpackr's BigInt
      [0xc7, 0x02, 0x74, 0x00, 0x01], // msgpackr's Int8Array
      [0x91, 0xd6, 0xff, 0x00, 0x00, 0x00, 0x01] // nested in an array
    ]
    for (const inside of insides) {
      const error = refused(clientMsgpack(publishWithData(7, inside)))
      expect([error.code, error.id], Buffer.from(inside).toString("hex")).toEqual([1000, 7])
    }
    // An extension msgpackr does not know cannot be parsed at all: no id.
    expect(codeAndId(refused(clientMsgpack(publishWithData(7, [0xd4, 0x05, 0x01]))))).toEqual([1000, undefined])
  })

  it("every truncation of a frame: 1000, no id", () => {
    fc.assert(
      fc.property(anyClientFrame("msgpack"), fc.nat(), (frame, cut) => {
        const bytes = msgpackBytes(Codec.encodeClientFrame(frame, "msgpack"))
        const error = refused(Codec.decodeClientFrame(bytes.subarray(0, cut % bytes.length), "msgpack"))
        expect([error.code, error.id]).toEqual([1000, undefined])
      }),
      { numRuns: 300 }
    )
  })

  it("invalid JSON: 1000, no id", () => {
    for (const text of ["", "{", "{\"type\":\"ping\",\"id\":1", "{type: 'ping'}", "{\"type\":\"ping\"} {}", "NaN", "\u0000"]) {
      expect(codeAndId(refused(clientJson(text)))).toEqual([1000, undefined])
    }
  })

  it("text on the msgpack protocol, binary on the JSON protocol: 1004", () => {
    expect(refused(Codec.decodeClientFrame(`{"type":"ping"}`, "msgpack"))).toMatchObject({ code: 1004, name: "wrong_encoding" })
    const bytes = Codec.toBytes(`{"type":"ping"}`)
    expect(refused(Codec.decodeClientFrame(bytes, "json"))).toMatchObject({ code: 1004, name: "wrong_encoding" })
  })

  it("an unknown type: 1001, keeping a readable id", () => {
    for (const encoding of encodings) {
      const raw = (value: unknown): Codec.Raw => encoding === "json" ? JSON.stringify(value) : plainEncode(value)
      expect(codeAndId(refused(Codec.decodeClientFrame(raw({ type: "hello", id: 10 }), encoding)))).toEqual([1001, 10])
      expect(codeAndId(refused(Codec.decodeClientFrame(raw({ type: "welcome", id: 11 }), encoding)))).toEqual([1001, 11])
      expect(codeAndId(refused(Codec.decodeClientFrame(raw({ type: "Subscribe", id: 0 }), encoding)))).toEqual([1001, 0])
      expect(codeAndId(refused(Codec.decodeClientFrame(raw({ type: "hello", id: -1 }), encoding)))).toEqual([1001, undefined])
      expect(codeAndId(refused(Codec.decodeClientFrame(raw({ type: "hello" }), encoding)))).toEqual([1001, undefined])
    }
  })

  it("missing or wrongly typed fields: 1002, keeping a readable id", () => {
    const cases: ReadonlyArray<readonly [unknown, number | undefined]> = [
      [{ id: 1 }, 1], // no type
      [{ type: 5, id: 2 }, 2], // type not a string
      [{ type: null, id: 3 }, 3],
      [{ type: "subscribe", id: 4 }, 4], // no channel
      [{ type: "subscribe", id: 5, channel: 42 }, 5],
      [{ type: "subscribe", id: 6, channel: "a", since: { epoch: "e" } }, 6],
      [{ type: "subscribe", id: 7, channel: "a", since: { epoch: "e", offset: -1 } }, 7],
      [{ type: "subscribe", id: 8, channel: "a", since: { epoch: "e", offset: 1.5 } }, 8],
      [{ type: "subscribe", id: 8, channel: "a", since: null }, 8], // null is not absent
      [{ type: "unsubscribe", id: 9 }, 9],
      [{ type: "publish", id: 10, channel: "a" }, 10], // no data
      [{ type: "publish", id: 11, data: 1 }, 11], // no channel
      [{ type: "rpc", id: 12 }, 12], // no method
      [{ type: "rpc", id: 13, method: "" }, 13],
      [{ type: "rpc", id: 14, method: "m".repeat(101) }, 14],
      [{ type: "rpc", id: 15, method: 7 }, 15],
      [{ type: "refresh", id: 16 }, 16], // no token
      [{ type: "refresh", id: 17, token: "" }, 17],
      [{ type: "refresh", id: 18, token: "t".repeat(8193) }, 18],
      [{ type: "refresh", id: 19, token: 1 }, 19],
      [{ type: "ping", id: "1" }, undefined], // an id that is not a number is no id
      [{ type: "ping", id: null }, undefined],
      [{ type: "subscribe", channel: "a" }, undefined], // no id
      [{ type: "subscribe", id: "4", channel: "a" }, undefined]
    ]
    for (const encoding of encodings) {
      for (const [value, id] of cases) {
        const raw = encoding === "json" ? JSON.stringify(value) : plainEncode(value)
        const error = refused(Codec.decodeClientFrame(raw, encoding))
        expect([error.code, error.name, error.id], `${encoding} ${JSON.stringify(value)}`).toEqual([1002, "invalid_frame", id])
      }
    }
  })

  it("ids outside [0, 2^32) or not integers are unusable: 1002 without an id", () => {
    for (const id of [-1, 4294967296, 2 ** 53, 0.5, 1e300]) {
      expect(codeAndId(refused(clientJson(JSON.stringify({ type: "rpc", id, method: "m" }))))).toEqual([1002, undefined])
      expect(codeAndId(refused(clientMsgpack(plainEncode({ type: "rpc", id, method: "m" }))))).toEqual([1002, undefined])
    }
    // The edges are fine.
    expect(accepted(clientJson(`{"type":"rpc","id":0,"method":"m"}`))).toMatchObject({ id: 0 })
    expect(accepted(clientJson(`{"type":"rpc","id":4294967295,"method":"m"}`))).toMatchObject({ id: 4294967295 })
    // uint64 and NaN in msgpack.
    const uint64 = [0x82, 0xa4, ...Buffer.from("type"), 0xa4, ...Buffer.from("ping"), 0xa2, ...Buffer.from("id")]
    expect(codeAndId(refused(clientMsgpack([...uint64, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0])))).toEqual([1002, undefined])
    expect(codeAndId(refused(clientMsgpack([...uint64, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0])))).toEqual([1002, undefined])
  })

  it("an invalid channel name: 2003 with the id; 1-200 channel characters are fine", () => {
    for (const type of ["subscribe", "unsubscribe", "publish"] as const) {
      for (const channel of ["", "room general", "room:é", "room:*", "x".repeat(201), "a\n"]) {
        const value = { type, id: 21, channel, data: 1 }
        for (const encoding of encodings) {
          const raw = encoding === "json" ? JSON.stringify(value) : plainEncode(value)
          expect(refused(Codec.decodeClientFrame(raw, encoding)), `${type} ${JSON.stringify(channel)}`)
            .toMatchObject({ code: 2003, name: "invalid_channel", id: 21 })
        }
      }
      expect(accepted(clientJson(JSON.stringify({ type, id: 1, channel: "x".repeat(200), data: 1 }))).type).toBe(type)
    }
    // `channel` is not a field of these: ignored, whatever it holds.
    expect(accepted(clientJson(`{"type":"ping","channel":"no such channel"}`))).toEqual({ type: "ping" })
    expect(accepted(clientJson(`{"type":"refresh","id":2,"token":"t","channel":"no such channel"}`))).toEqual({ type: "refresh", id: 2, token: "t" })
  })

  it(`nesting: ${Codec.maxDepth} levels are fine, one more is 1000 with the id`, () => {
    // The frame is level 1, so data with maxDepth - 1 levels of arrays is the deepest allowed.
    const deepest = { type: "publish", id: 30, channel: "a", data: nested(Codec.maxDepth - 1) }
    const tooDeep = { type: "publish", id: 31, channel: "a", data: nested(Codec.maxDepth) }
    const inMap = { type: "publish", id: 32, channel: "a", data: { a: { b: nested(Codec.maxDepth - 2) } } }
    for (const encoding of encodings) {
      const raw = (value: unknown): Codec.Raw => encoding === "json" ? JSON.stringify(value) : plainEncode(value)
      expect(accepted(Codec.decodeClientFrame(raw(deepest), encoding))).toEqual(deepest)
      expect(codeAndId(refused(Codec.decodeClientFrame(raw(tooDeep), encoding)))).toEqual([1000, 31])
      expect(codeAndId(refused(Codec.decodeClientFrame(raw(inMap), encoding)))).toEqual([1000, 32])
    }
  })

  it("huge nesting within the frame size limit never throws and is 1000", () => {
    // JSON: 30000 levels fit in 64 KiB.
    const json = `{"type":"publish","id":40,"channel":"a","data":${"[".repeat(30_000)}${"]".repeat(30_000)}}`
    expect(json.length).toBeLessThan(65_536)
    expect(refused(clientJson(json)).code).toBe(1000)
    // msgpack: 60000 one-element arrays. Deep enough to overflow the decoder's stack on some
    // engines, in which case the id cannot be read.
    const bytes = [...publishWithData(41, []), ...new Array<number>(60_000).fill(0x91), 0x01]
    expect(bytes.length).toBeLessThan(65_536)
    const error = refused(clientMsgpack(bytes))
    expect(error.code).toBe(1000)
    expect([41, undefined]).toContain(error.id)
    // The top level, too.
    expect(refused(clientMsgpack([...new Array<number>(65_535).fill(0x91), 0x01])).code).toBe(1000)
    expect(refused(clientJson(`${"[".repeat(32_000)}${"]".repeat(32_000)}`)).code).toBe(1000)
  })

  it("random bytes never throw, and every refusal is a catalogue code", () => {
    const mapLike = fc.tuple(fc.constantFrom(0x81, 0x82, 0x83, 0x84, 0x85, 0xde), fc.uint8Array({ maxLength: 200 }))
      .map(([head, tail]) => Uint8Array.of(head, ...tail))
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mapLike), (bytes) => {
        for (const decode of decoders) {
          const result = decode(bytes, "msgpack")
          if (Either.isLeft(result)) expect(catalogue).toContain(result.left.code)
          expect(Either.isLeft(decode(bytes, "json"))).toBe(true)
        }
      }),
      { numRuns: 2000 }
    )
  })

  it("corrupted frames never throw", () => {
    fc.assert(
      fc.property(anyClientFrame("msgpack"), fc.nat(), fc.integer({ min: 0, max: 255 }), (frame, at, byte) => {
        const bytes = Uint8Array.from(msgpackBytes(Codec.encodeClientFrame(frame, "msgpack")))
        bytes[at % bytes.length] = byte
        const result = Codec.decodeClientFrame(bytes, "msgpack")
        if (Either.isLeft(result)) expect(catalogue).toContain(result.left.code)
      }),
      { numRuns: 1000 }
    )
  })

  it("random text and random JSON never throw", () => {
    const frameish = fc.record({
      type: fc.oneof(fc.constantFrom(...Frame.clientFrameTypes), fc.jsonValue()),
      id: fc.oneof(fc.nat(), fc.jsonValue()),
      channel: fc.oneof(fc.string(), fc.jsonValue()),
      data: fc.jsonValue(),
      method: fc.oneof(fc.string(), fc.jsonValue())
    }, { requiredKeys: [] })
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary" }), fc.json(), frameish.map((value) => JSON.stringify(value))), (text) => {
        for (const decode of decoders) {
          const result = decode(text, "json")
          if (Either.isLeft(result)) expect(catalogue).toContain(result.left.code)
          expect(Either.getLeft(decode(text, "msgpack"))).toMatchObject({ _tag: "Some", value: { code: 1004 } })
        }
      }),
      {
        numRuns: 2000,
        // Found by this property: Schema's union lookup stringified a discriminator without `toString`.
        examples: [[`{"type":{"toString":{}}}`], [`{"type":{"valueOf":{},"toString":{}}}`], [`{"type":"error","code":{"toString":{}}}`]]
      }
    )
  })

  it("a refusal is a ProtocolError with the catalogue's code and name", () => {
    const error = refused(clientJson(`{"type":"hello","id":3}`))
    expect(error).toBeInstanceOf(ProtocolError)
    expect(error.code).toBe(ErrorCodes.unknown_type)
    expect(error.message).toBe(`unknown_type (1001): unknown frame type "hello"`)
    expect(Codec.protocolError("rate_limited", "slow down", 4)).toMatchObject({ code: 3000, name: "rate_limited", id: 4 })
    expect("id" in Codec.protocolError("timeout", "late")).toBe(false)
  })

  it("server frames: wrong frames are invalid_frame, never a throw", () => {
    expect(refused(Codec.decodeServerFrame(`{"type":"subscribe","id":1,"channel":"a"}`, "json")).code).toBe(1002)
    expect(refused(Codec.decodeServerFrame(`{"type":"goodbye","reason":"bored","reconnect":true}`, "json")).code).toBe(1002)
    expect(refused(Codec.decodeServerFrame(Uint8Array.of(0xc1), "msgpack")).code).toBe(1002)
    expect(refused(Codec.decodeServerFrame(Uint8Array.of(0x82), "msgpack")).code).toBe(1000)
  })
})

// ---------------------------------------------------------------------------
// Bytes and text
// ---------------------------------------------------------------------------

describe("toBytes and toText", () => {
  it("round trip UTF-8 and refuse invalid UTF-8", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (text) => {
      expect(Codec.toText(Codec.toBytes(text))).toBe(text)
    }))
    expect(Codec.toText(bytesFromHex("ff fe"))).toBeUndefined()
    expect(Codec.toText(bytesFromHex("ed a0 80"))).toBeUndefined() // an encoded lone surrogate
    const bytes = Uint8Array.of(1, 2)
    expect(Codec.toBytes(bytes)).toBe(bytes)
  })
})

// ---------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------

describe("negotiate", () => {
  const cases: ReadonlyArray<readonly [string | null | undefined, Encoding | undefined]> = [
    [null, "msgpack"],
    [undefined, "msgpack"],
    ["", "msgpack"],
    ["  ", "msgpack"],
    [" , ,", "msgpack"],
    ["weft.v1.msgpack", "msgpack"],
    ["weft.v1.json", "json"],
    ["weft.v1.json, weft.v1.msgpack", "json"],
    ["weft.v1.msgpack,weft.v1.json", "msgpack"],
    ["chat, weft.v1.json", "json"],
    ["  weft.v1.json  ", "json"],
    ["chat", undefined],
    ["chat, superchat", undefined],
    ["WEFT.V1.JSON", undefined],
    ["weft.v1", undefined],
    ["weft.v2.msgpack", undefined],
    ["weft.v1.msgpack2", undefined],
    ["weft.v1.json;q=1", undefined]
  ]
  it.each(cases)("%j → %s", (header, expected) => {
    expect(Codec.negotiate(header)).toBe(expected)
  })

  it("names the subprotocols", () => {
    expect(Codec.subprotocols).toEqual({ msgpack: "weft.v1.msgpack", json: "weft.v1.json" })
    expect(Codec.defaultEncoding).toBe("msgpack")
  })
})

// ---------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------

/**
 * The reference semantics of a pattern: split at `*` into literal parts
 * (`{user}` replaced by the user id, characters all literal), with "any run"
 * between them. A plain dynamic-programming glob match over those tokens.
 */
const referenceMatch = (pattern: string, user: string, channel: string): boolean => {
  const tokens: Array<string | null> = [] // null: any run
  pattern.split("*").forEach((part, index) => {
    if (index > 0) tokens.push(null)
    for (const char of part.replaceAll("{user}", user)) tokens.push(char)
  })
  const chars = Array.from(channel)
  let previous: Array<boolean> = chars.map(() => false)
  previous.unshift(true)
  for (const token of tokens) {
    const current: Array<boolean> = new Array<boolean>(chars.length + 1).fill(false)
    current[0] = token === null && previous[0] === true
    for (let j = 1; j <= chars.length; j++) {
      current[j] = token === null
        ? previous[j] === true || current[j - 1] === true
        : previous[j - 1] === true && chars[j - 1] === token
    }
    previous = current
  }
  return previous[chars.length] === true
}

describe("Channel", () => {
  it("accepts 1-200 of A-Z a-z 0-9 . _ - : @ / | + =", () => {
    const valid = ["a", "room:general", "user:alice@example.com", "order:12/status", "user:auth0|123", "a+b=c", "A-Z_a.z:0@9/|+=", "x".repeat(200)]
    for (const channel of valid) {
      expect(Channel.isChannel(channel), channel).toBe(true)
    }
    for (const channel of ["", "x".repeat(201), "room general", "room:é", "room:*", "user:{user}", "a#b", "a\n", "a,b", "a%20b", "a{b", "a}b"]) {
      expect(Channel.isChannel(channel), JSON.stringify(channel)).toBe(false)
    }
    fc.assert(fc.property(Arbitrary.make(Channel.Channel), (channel) => {
      expect(channel.length).toBeGreaterThanOrEqual(1)
      expect(channel.length).toBeLessThanOrEqual(200)
      expect(/^[A-Za-z0-9._\-:@/|+=]+$/.test(channel)).toBe(true)
    }))
  })

  it("patterns are channel characters, `*` and `{user}`, at most 200 characters", () => {
    const isPattern = Schema.is(Channel.Pattern)
    for (const pattern of ["*", "room:*", "user:{user}", "chat:{user}:*", "org:*:admin", "auth0|{user}", "x".repeat(200)]) {
      expect(isPattern(pattern), pattern).toBe(true)
    }
    for (const pattern of ["", "x".repeat(201), "room:{", "room:}", "{usr}", "{USER}", "room:(a)", "room general", "a,b", "room:é"]) {
      expect(isPattern(pattern), JSON.stringify(pattern)).toBe(false)
    }
  })

  it("an empty list denies everything; `*` allows everything", () => {
    fc.assert(fc.property(fc.string(), fc.string(), (user, channel) => {
      expect(Channel.matcher([], user)(channel)).toBe(false)
      expect(Channel.matcher(["*"], user)(channel)).toBe(true)
      expect(Channel.matcher(["room:x", "*"], user)(channel)).toBe(true)
    }))
  })

  it("`*` matches any run of characters, and the whole channel must match", () => {
    const rooms = Channel.matcher(["room:*"], "alice")
    expect(rooms("room:general")).toBe(true)
    expect(rooms("room:")).toBe(true)
    expect(rooms("room:a/b:c")).toBe(true)
    expect(rooms("xroom:general")).toBe(false)
    expect(rooms("room")).toBe(false)
    expect(rooms("Room:general")).toBe(false)
    const middle = Channel.matcher(["org:*:admin"], "alice")
    expect(middle("org:acme:admin")).toBe(true)
    expect(middle("org::admin")).toBe(true)
    expect(middle("org:acme:admins")).toBe(false)
    const dots = Channel.matcher(["room.general"], "alice")
    expect(dots("room.general")).toBe(true)
    expect(dots("roomXgeneral")).toBe(false)
  })

  it("`{user}` is the user id, literally", () => {
    expect(Channel.matcher(["user:{user}"], "alice")("user:alice")).toBe(true)
    expect(Channel.matcher(["user:{user}"], "alice")("user:bob")).toBe(false)
    expect(Channel.matcher(["user:{user}"], "a.b")("user:a.b")).toBe(true)
    expect(Channel.matcher(["user:{user}"], "a.b")("user:aXb")).toBe(false)
    expect(Channel.matcher(["user:{user}"], "a*b")("user:aab")).toBe(false)
    expect(Channel.matcher(["user:{user}"], "a*b")("user:b")).toBe(false)
    expect(Channel.matcher(["user:{user}"], "a*b")("user:a*b")).toBe(true)
    expect(Channel.matcher(["user:{user}"], "x|.*")("user:anything")).toBe(false)
    expect(Channel.matcher(["user:{user}"], "(a)+")("user:aa")).toBe(false)
    expect(Channel.matcher(["chat:{user}:*", "dm:*:{user}"], "bob")("chat:bob:1")).toBe(true)
    expect(Channel.matcher(["chat:{user}:*", "dm:*:{user}"], "bob")("dm:alice:bob")).toBe(true)
    expect(Channel.matcher(["chat:{user}:*", "dm:*:{user}"], "bob")("dm:bob:alice")).toBe(false)
    // Any user id, however special, matches its own channel and nothing else.
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 12 }), fc.string({ unit: "binary", maxLength: 14 }), (user, other) => {
      const own = Channel.matcher(["user:{user}"], user)
      expect(own(`user:${user}`)).toBe(true)
      expect(own(`user:${other}`)).toBe(other === user)
    }), { numRuns: 500 })
  })

  it("agrees with the reference glob semantics", () => {
    const special = fc.constantFrom("a", "b", ":", ".", "*", "+", "?", "(", ")", "|", "[", "]", "\\", "^", "$", "{", "}", "/")
    const user = fc.string({ unit: special, maxLength: 4 })
    const pattern = fc.array(fc.constantFrom("a", "b", ":", ".", "/", "*", "{user}", "(", "+"), { maxLength: 6 }).map((parts) => parts.join(""))
    const patterns = fc.array(pattern, { maxLength: 3 })
    const filler = fc.string({ unit: fc.constantFrom("a", "b", ":", "."), maxLength: 3 })
    /** A channel made from one of the patterns (so that matches are common), or a random one. */
    const channelFor = (list: ReadonlyArray<string>, id: string) =>
      fc.oneof(
        fc.string({ unit: special, maxLength: 8 }),
        fc.tuple(fc.nat(), fc.array(filler, { minLength: 7, maxLength: 7 })).map(([pick, fills]) => {
          const chosen = list[pick % Math.max(1, list.length)] ?? ""
          return chosen.split("*").map((part) => part.replaceAll("{user}", id)).reduce((acc, part, index) => acc + (fills[index % 7] ?? "") + part)
        })
      )
    fc.assert(
      fc.property(
        patterns.chain((list) => user.chain((id) => channelFor(list, id).map((channel) => [list, id, channel] as const))),
        ([list, id, channel]) => {
          const expected = list.some((one) => referenceMatch(one, id, channel))
          expect(Channel.matcher(list, id)(channel)).toBe(expected)
        }
      ),
      { numRuns: 3000 }
    )
  })
})
