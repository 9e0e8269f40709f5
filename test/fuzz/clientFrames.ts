/**
 * Arbitraries of client frames for fuzzing: valid frames as plain values (so that a test can
 * break any field), values that docs/protocol.md says a field must not take, and the code and id
 * the protocol documents for each kind of breakage (§3, §4.1, §6.1: the first problem in the
 * order wrong encoding, unreadable, `type`, fields, is the one reported).
 */
import { encode as encodeMsgpack } from "@msgpack/msgpack"
import { Codec } from "@weft/protocol"
import { FastCheck as fc } from "effect"
import { jsonData, msgpackData } from "../../packages/protocol/test/helpers.ts"

export type Encoding = Codec.Encoding
export type Plain = Record<string, unknown>

export const clientTypes = ["subscribe", "unsubscribe", "publish", "rpc", "ping", "pong", "refresh"] as const
export type ClientType = (typeof clientTypes)[number]

const channelCharacters = [..."ABCZabcz0189._-:@/|+="]
export const channel = fc.string({ unit: fc.constantFrom(...channelCharacters), minLength: 1, maxLength: 40 })
export const requestId = fc.oneof(fc.nat({ max: 1000 }), fc.integer({ min: 0, max: 4_294_967_295 }), fc.constant(4_294_967_295))
const position = fc.record({ epoch: fc.string({ maxLength: 8 }), offset: fc.nat() })
const method = fc.string({ minLength: 1, maxLength: 100 })
const token = fc.string({ minLength: 1, maxLength: 300 })

export const dataFor = (encoding: Encoding): fc.Arbitrary<unknown> => (encoding === "msgpack" ? msgpackData : jsonData)

/** A valid client frame of each type, as the plain map a client would encode. */
export const validFrame = (encoding: Encoding): fc.Arbitrary<Plain> => {
  const data = dataFor(encoding)
  return fc.oneof(
    fc.record({ type: fc.constant("subscribe"), id: requestId, channel, since: position }, { requiredKeys: ["type", "id", "channel"] }),
    fc.record({ type: fc.constant("unsubscribe"), id: requestId, channel }),
    fc.record({ type: fc.constant("publish"), id: requestId, channel, data }),
    fc.record({ type: fc.constant("rpc"), id: requestId, method, params: data }, { requiredKeys: ["type", "id", "method"] }),
    fc.record({ type: fc.constant("ping"), id: requestId }, { requiredKeys: ["type"] }),
    fc.record({ type: fc.constant("pong"), id: requestId }, { requiredKeys: ["type"] }),
    fc.record({ type: fc.constant("refresh"), id: requestId, token })
  )
}

/** Plain msgpack (any msgpack library's) or JSON text; bytes only ever go to msgpack. */
export const encodePlain = (value: unknown, encoding: Encoding): Codec.Raw =>
  encoding === "msgpack" ? encodeMsgpack(value, { maxDepth: 100_000 }) : JSON.stringify(value)


// ---------------------------------------------------------------------------
// Values a field must not take
// ---------------------------------------------------------------------------

/** Values of every msgpack/JSON kind; `bytes` only for msgpack. */
const anyKind = (encoding: Encoding): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 10 }),
    fc.array(fc.nat(), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 4 }), fc.nat(), { maxKeys: 3, noNullPrototype: true }),
    ...(encoding === "msgpack" ? [fc.uint8Array({ maxLength: 8 })] : [])
  )

const isRequestId = (value: unknown): boolean =>
  typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 4_294_967_295

/** Not an id in [0, 2^32): negative, too big, fractional, or not a number. */
const wrongId = (encoding: Encoding) =>
  fc.oneof(
    fc.constantFrom(-1, 4_294_967_296, 1.5, 2 ** 53, -(2 ** 31), "7", ""),
    anyKind(encoding)
  ).filter((value) => !isRequestId(value))

const notString = (encoding: Encoding) => anyKind(encoding).filter((value) => typeof value !== "string")

/** A string that is not a channel name: empty, too long, or with a character outside the set. */
const badChannel = fc.oneof(
  fc.constant(""),
  fc.string({ unit: fc.constantFrom(...channelCharacters), minLength: 201, maxLength: 260 }),
  fc.tuple(channel, fc.constantFrom(" ", "*", "{", "}", "#", ",", "é", "\n", "\u0000", "ü", "\u{1F600}"), channel)
    .map(([before, bad, after]) => `${before}${bad}${after}`)
)

const wrongSince = (encoding: Encoding) =>
  fc.oneof(
    anyKind(encoding).filter((value) => typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array),
    fc.constantFrom({ epoch: 1, offset: 0 }, { epoch: "e", offset: -1 }, { epoch: "e", offset: 1.5 }, { epoch: "e" }, { offset: 3 }, {})
  )

/** A string that is not a client frame type: server types, other cases, near misses, anything. */
export const unknownType = fc.oneof(
  fc.constantFrom("welcome", "ack", "reply", "error", "message", "goodbye", "PING", "Subscribe", " ping", "ping ", "pings", "", "__proto__", "constructor", "toString"),
  fc.string({ maxLength: 20 })
).filter((type) => !(clientTypes as ReadonlyArray<string>).includes(type))

// ---------------------------------------------------------------------------
// One field broken, and what the server must answer
// ---------------------------------------------------------------------------

export interface Broken {
  readonly frame: Plain
  readonly what: string
  readonly code: number
  /** The id the error carries; undefined: none. */
  readonly id: number | undefined
}

const readableId = (frame: Plain): number | undefined => {
  const id = frame["id"]
  return typeof id === "number" && isRequestId(id) ? id : undefined
}

const isClientType = (type: unknown): type is ClientType => (clientTypes as ReadonlyArray<unknown>).includes(type)

const withField = (frame: Plain, field: string, value: unknown): Plain => ({ ...frame, [field]: value })
const without = (frame: Plain, field: string): Plain => Object.fromEntries(Object.entries(frame).filter(([key]) => key !== field))

const requiredOf: { readonly [K in ClientType]: ReadonlyArray<string> } = {
  subscribe: ["id", "channel"],
  unsubscribe: ["id", "channel"],
  publish: ["id", "channel", "data"],
  rpc: ["id", "method"],
  ping: [],
  pong: [],
  refresh: ["id", "token"]
}

/**
 * A valid frame with exactly one thing wrong, and the documented answer: `type` not a string
 * 1002, an unknown type 1001, an unusable id 1002 without id, a channel that is a string but not
 * a name 2003, any other wrong or missing field 1002; all with the id when it is readable.
 */
export const brokenFrame = (encoding: Encoding): fc.Arbitrary<Broken> =>
  fc.tuple(validFrame(encoding), fc.nat()).chain(([frame, pick]) => {
    const type = frame["type"]
    if (!isClientType(type)) throw new Error(`validFrame made a frame of type ${String(type)}`)
    const id = readableId(frame)
    const options: Array<fc.Arbitrary<Broken>> = [
      notString(encoding).map((value) => ({ frame: withField(frame, "type", value), what: "type not a string", code: 1002, id })),
      unknownType.map((value) => ({ frame: withField(frame, "type", value), what: "unknown type", code: 1001, id })),
      fc.constant({ frame: without(frame, "type"), what: "no type", code: 1002, id }),
      wrongId(encoding).map((value) => ({ frame: withField(frame, "id", value), what: "unusable id", code: 1002, id: undefined }))
    ]
    for (const field of requiredOf[type]) {
      options.push(fc.constant({ frame: without(frame, field), what: `no ${field}`, code: 1002, id: field === "id" ? undefined : id }))
    }
    if (type === "subscribe" || type === "unsubscribe" || type === "publish") {
      options.push(badChannel.map((value) => ({ frame: withField(frame, "channel", value), what: "invalid channel name", code: 2003, id })))
      options.push(notString(encoding).map((value) => ({ frame: withField(frame, "channel", value), what: "channel not a string", code: 1002, id })))
    }
    if (type === "subscribe") {
      options.push(wrongSince(encoding).map((value) => ({ frame: withField(frame, "since", value), what: "wrong since", code: 1002, id })))
    }
    if (type === "rpc") {
      const wrong = fc.oneof(fc.constant(""), fc.string({ minLength: 101, maxLength: 140 }), notString(encoding))
      options.push(wrong.map((value) => ({ frame: withField(frame, "method", value), what: "wrong method", code: 1002, id })))
    }
    if (type === "refresh") {
      const wrong = fc.oneof(fc.constant(""), fc.constant("t".repeat(8193)), notString(encoding))
      options.push(wrong.map((value) => ({ frame: withField(frame, "token", value), what: "wrong token", code: 1002, id })))
    }
    return options[pick % options.length]!
  })

// ---------------------------------------------------------------------------
// Deep nesting
// ---------------------------------------------------------------------------

/** `levels` maps and arrays (chosen by `kinds`) one inside the other around a scalar. */
export const nestedValue = (levels: number, kinds: ReadonlyArray<boolean>): unknown => {
  let value: unknown = "bottom"
  for (let i = 0; i < levels; i++) value = kinds[i % kinds.length] ? [value] : { k: value }
  return value
}

// ---------------------------------------------------------------------------
// msgpack headers that promise more than the frame holds
// ---------------------------------------------------------------------------

const header = (first: number, width: 1 | 2 | 4, length: number): Uint8Array => {
  const bytes = new Uint8Array(1 + width)
  bytes[0] = first
  const view = new DataView(bytes.buffer)
  if (width === 1) view.setUint8(1, length)
  else if (width === 2) view.setUint16(1, length)
  else view.setUint32(1, length)
  return bytes
}

/** The msgpack kinds with a length: str, bin, array, map, ext; byte and width of the length field. */
const lengthHeaders: ReadonlyArray<readonly [number, 1 | 2 | 4]> = [
  [0xd9, 1], [0xda, 2], [0xdb, 4], // str 8/16/32
  [0xc4, 1], [0xc5, 2], [0xc6, 4], // bin 8/16/32
  [0xdc, 2], [0xdd, 4], // array 16/32
  [0xde, 2], [0xdf, 4], // map 16/32
  [0xc7, 1], [0xc8, 2], [0xc9, 4] // ext 8/16/32
]

export interface HugeLength {
  readonly bytes: Uint8Array
  readonly where: string
}

/**
 * A publish whose `data` (or the whole frame) starts with a length or count bigger than the
 * bytes that follow, up to 2^32-1: the frame is truncated however it is read.
 */
export const hugeLength: fc.Arbitrary<HugeLength> = fc
  .tuple(fc.constantFrom(...lengthHeaders), fc.uint8Array({ maxLength: 40 }), fc.nat(), requestId, fc.boolean())
  .map(([[first, width], tail, extra, id, topLevel]) => {
    const max = width === 1 ? 0xff : width === 2 ? 0xffff : 0xffffffff
    // Every element takes at least one byte, so a count above the tail's length cannot be met.
    const claimed = Math.min(max, tail.length + 1 + (extra % max))
    const huge = header(first, width, claimed)
    if (topLevel) return { bytes: Uint8Array.from([...huge, ...tail]), where: `top level 0x${first.toString(16)} claiming ${claimed}` }
    const head = encodeMsgpack({ type: "publish", id, channel: "topic:x" })
    head[0] = 0x84 // four entries: the fourth is `data`
    return { bytes: Uint8Array.from([...head, ...encodeMsgpack("data"), ...huge, ...tail]), where: `data 0x${first.toString(16)} claiming ${claimed}` }
  })

// ---------------------------------------------------------------------------
// Invalid UTF-8 and lone surrogates
// ---------------------------------------------------------------------------

/** Byte sequences that are not UTF-8: stray continuation bytes, overlongs, surrogates, 0xfe/0xff, cut sequences. */
const invalidUtf8 = fc.constantFrom(
  [0xff], [0xfe], [0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98]
)

/** A msgpack str of `before`, the invalid bytes and `after` (ASCII). */
const rawStr = (before: string, bad: ReadonlyArray<number>, after: string): Uint8Array => {
  const body = Uint8Array.from([...Buffer.from(before), ...bad, ...Buffer.from(after)])
  return Uint8Array.from([...header(0xda, 2, body.length), ...body]) // str 16, whatever the length
}

export interface InvalidUtf8 {
  readonly bytes: Uint8Array
  readonly where: "type" | "channel" | "data" | "key"
  readonly id: number
}

/** A msgpack publish with invalid UTF-8 in its type, its channel, a string in `data` or a key in `data`. */
export const msgpackInvalidUtf8: fc.Arbitrary<InvalidUtf8> = fc
  .tuple(fc.constantFrom<InvalidUtf8["where"]>("type", "channel", "data", "key"), invalidUtf8, fc.string({ unit: fc.constantFrom("a", "b", ":"), maxLength: 6 }), requestId)
  .map(([where, bad, around, id]) => {
    const str = rawStr(around, bad, around)
    const enc = (value: unknown) => encodeMsgpack(value)
    const pairs: Array<Uint8Array> = [
      enc("type"), where === "type" ? str : enc("publish"),
      enc("id"), enc(id),
      enc("channel"), where === "channel" ? str : enc("topic:utf8"),
      enc("data"),
      where === "data" ? Uint8Array.from([0x91, ...str]) : where === "key" ? Uint8Array.from([0x81, ...str, 0x01]) : enc(null)
    ]
    return { bytes: Uint8Array.from([0x84, ...pairs.flatMap((part) => [...part])]), where, id }
  })

/** A lone surrogate as a JSON escape (`\ud800`, `\udfff`, ...). */
const loneSurrogate = fc.oneof(fc.integer({ min: 0xd800, max: 0xdbff }), fc.integer({ min: 0xdc00, max: 0xdfff }))
  .map((unit) => `\\u${unit.toString(16)}`)

export interface LoneSurrogate {
  readonly text: string
  readonly where: string
  readonly id: number
}

/** A JSON frame with a lone surrogate escape in one of its strings or keys. */
export const jsonLoneSurrogate: fc.Arbitrary<LoneSurrogate> = fc
  .tuple(fc.constantFrom("type", "channel", "data", "key", "method", "token", "nested"), loneSurrogate, requestId)
  .map(([where, escape, id]) => {
    const text = (() => {
      switch (where) {
        case "type": return `{"type":"pi${escape}ng","id":${id}}`
        case "channel": return `{"type":"subscribe","id":${id},"channel":"room:${escape}"}`
        case "data": return `{"type":"publish","id":${id},"channel":"topic:x","data":"a${escape}b"}`
        case "key": return `{"type":"publish","id":${id},"channel":"topic:x","data":{"k${escape}":1}}`
        case "method": return `{"type":"rpc","id":${id},"method":"conn.${escape}"}`
        case "token": return `{"type":"refresh","id":${id},"token":"ey${escape}J"}`
        default: return `{"type":"publish","id":${id},"channel":"topic:x","data":[{"a":[1,"${escape}"]}]}`
      }
    })()
    return { text, where, id }
  })

// ---------------------------------------------------------------------------
// Mutations of valid encoded frames
// ---------------------------------------------------------------------------

type Mutation =
  | { readonly kind: "set"; readonly at: number; readonly byte: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: "delete"; readonly at: number; readonly count: number }
  | { readonly kind: "repeat"; readonly at: number; readonly count: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0xc1, 0xd4, 0xd6, 0xc7, 0xdd, 0xdf, 0xdb, 0xc0, 0xff, 0x22, 0x5c, 0x7b, 0x7d)) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant("repeat" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) })
)

const apply = (bytes: Uint8Array, change: Mutation): Uint8Array => {
  const at = bytes.length === 0 ? 0 : change.at % (bytes.length + (change.kind === "insert" ? 1 : 0))
  switch (change.kind) {
    case "set": {
      if (bytes.length === 0) return bytes
      const copy = Uint8Array.from(bytes)
      copy[at] = change.byte
      return copy
    }
    case "insert": return Uint8Array.from([...bytes.subarray(0, at), ...change.bytes, ...bytes.subarray(at)])
    case "delete": return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + change.count)])
    case "repeat": return Uint8Array.from([...bytes.subarray(0, at + change.count), ...bytes.subarray(at)])
  }
}

/** A valid frame, encoded, then changed by one to four byte-level mutations (JSON as UTF-8 text, kept a string). */
export const mutatedFrame = (encoding: Encoding): fc.Arbitrary<Codec.Raw> =>
  fc.tuple(validFrame(encoding), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([frame, changes]) => {
    const start = Codec.toBytes(encodePlain(frame, encoding))
    const bytes = changes.reduce(apply, start)
    return encoding === "msgpack" ? bytes : Buffer.from(bytes).toString("utf8")
  })

/** A strict prefix of a valid msgpack frame. */
export const truncatedFrame: fc.Arbitrary<Uint8Array> = fc.tuple(validFrame("msgpack"), fc.nat()).map(([frame, cut]) => {
  const bytes = Codec.toBytes(encodePlain(frame, "msgpack"))
  return bytes.subarray(0, cut % bytes.length)
})
