/**
 * The two encodings of the protocol, chosen per connection with the
 * WebSocket subprotocol: `weft.v1.msgpack` (binary frames, plain msgpack maps
 * that any msgpack library reads; no msgpackr records or extensions) and
 * `weft.v1.json` (text frames, the same maps as JSON objects).
 *
 * Decoding is total: bad input gives a `ProtocolError` with the catalogue
 * code (and the request id when one could be read), never an exception.
 */
import { Either, ParseResult, Schema } from "effect"
import { Packr, Unpackr } from "msgpackr"
import { isChannel } from "./Channel.ts"
import { ErrorCodes, type ErrorName } from "./ErrorCode.ts"
import {
  ClientFrame,
  clientFrameTypes,
  Ping,
  Pong,
  Publish,
  Refresh,
  RequestId,
  Rpc,
  ServerFrame,
  Subscribe,
  Unsubscribe
} from "./Frame.ts"

export type Encoding = "msgpack" | "json"

export const subprotocols = { msgpack: "weft.v1.msgpack", json: "weft.v1.json" } as const
/** The encoding when the client offers no Weft subprotocol. */
export const defaultEncoding: Encoding = "msgpack"

/**
 * Picks the encoding from a `Sec-WebSocket-Protocol` header. Returns
 * `undefined` when subprotocols are offered but none is Weft's (the upgrade
 * is refused), and the default when the header is absent or empty.
 */
export const negotiate = (header: string | null | undefined): Encoding | undefined => {
  const offered = (header ?? "").split(",").map((part) => part.trim()).filter((part) => part.length > 0)
  if (offered.length === 0) return defaultEncoding
  for (const protocol of offered) {
    if (protocol === subprotocols.msgpack) return "msgpack"
    if (protocol === subprotocols.json) return "json"
  }
  return undefined
}

/** A frame the server cannot accept, with the catalogue entry to answer it with. */
export class ProtocolError extends Schema.TaggedError<ProtocolError>()("ProtocolError", {
  code: Schema.Number,
  name: Schema.String,
  detail: Schema.String,
  /** The request id, when the frame had a readable one. */
  id: Schema.optional(RequestId)
}) {
  override get message(): string {
    return `${this.name} (${this.code}): ${this.detail}`
  }
}

export const protocolError = (name: ErrorName, detail: string, id?: number): ProtocolError =>
  new ProtocolError({ code: ErrorCodes[name], name, detail, ...(id === undefined ? {} : { id }) })

// Plain msgpack: maps stay maps (no record extension), so any msgpack library can read them.
// `undefined` is written the way JSON.stringify writes it, never as msgpackr's fixext 0: a map
// entry holding it is left out (`skipValues`, which msgpackr's typings omit), anywhere else it is nil.
const packrOptions = { useRecords: false, variableMapSize: true, encodeUndefinedAsNil: true, skipValues: [undefined] }
const packr = new Packr(packrOptions)
// 64-bit integers arrive as numbers (as every JSON peer would see them), never as BigInt.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" })
const textDecoder = new TextDecoder("utf-8", { fatal: true })
const textEncoder = new TextEncoder()

export type Raw = string | Uint8Array

const parse = (raw: Raw, encoding: Encoding): Either.Either<unknown, ProtocolError> => {
  if (encoding === "msgpack") {
    if (typeof raw === "string") return Either.left(protocolError("wrong_encoding", "a text frame on the msgpack protocol"))
    try {
      return Either.right(unpackr.unpack(raw))
    } catch {
      return Either.left(protocolError("malformed_frame", "not valid msgpack"))
    }
  }
  if (typeof raw !== "string") return Either.left(protocolError("wrong_encoding", "a binary frame on the JSON protocol"))
  try {
    return Either.right(JSON.parse(raw))
  } catch {
    return Either.left(protocolError("malformed_frame", "not valid JSON"))
  }
}

/** A plain map. (msgpackr decodes the reserved byte 0xc1 as a special object, which is not one.) */
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype

/** The deepest nesting of maps and arrays in a client frame, counting the frame itself as 1. */
export const maxDepth = 64

/**
 * Plain data: nil, booleans, numbers, strings, bytes, arrays and maps, with
 * maps and arrays nested at most `maxDepth` deep, and strings (and keys) that
 * have a UTF-8 form. msgpackr also decodes extension types (the timestamp, its
 * own typed arrays, sets, big integers, `undefined`) and the reserved byte 0xc1
 * into other values; refusing them (and deep nesting, which overflows the
 * stack when re-encoded) means that whatever a client sends can be sent on to
 * any client, in either encoding.
 * The recursion stops at `maxDepth`.
 */
const isPlain = (value: unknown, depth: number): boolean => {
  if (typeof value === "string") return isUtf8(value)
  if (value === null || typeof value === "number" || typeof value === "boolean") return true
  if (value instanceof Uint8Array) return true
  if (depth > maxDepth) return false
  if (Array.isArray(value)) return value.every((item) => isPlain(item, depth + 1))
  if (isRecord(value)) return Object.entries(value).every(([key, item]) => isUtf8(key) && isPlain(item, depth + 1))
  return false
}

/**
 * A lone surrogate (a JSON `"\ud800"` escape) has no UTF-8 form: re-encoded for msgpack
 * subscribers it would be invalid UTF-8, which strict msgpack libraries refuse to decode, so one
 * client could break every other client's stream. (msgpackr already replaces invalid UTF-8 in
 * msgpack strings, so this only refuses JSON escapes.) With `u`, a valid pair is one code point.
 */
const loneSurrogate = /\p{Cs}/u
const isUtf8 = (text: string): boolean => !loneSurrogate.test(text)

const readId = (value: Record<string, unknown>): number | undefined => {
  const id = value["id"]
  return Schema.is(RequestId)(id) ? id : undefined
}

const decodeOptions = { onExcessProperty: "ignore" } as const
// `exact`: a required field must be present, even one that takes any value (`data`).
const clientDecodeOptions = { onExcessProperty: "ignore", exact: true } as const

/** One decoder per client frame type: the `type` field picks the schema, so errors name the right fields. */
const clientDecoders: {
  readonly [K in ClientFrame["type"]]: (input: unknown) => Either.Either<ClientFrame, ParseResult.ParseIssue>
} = {
  subscribe: ParseResult.decodeUnknownEither(Subscribe, clientDecodeOptions),
  unsubscribe: ParseResult.decodeUnknownEither(Unsubscribe, clientDecodeOptions),
  publish: ParseResult.decodeUnknownEither(Publish, clientDecodeOptions),
  rpc: ParseResult.decodeUnknownEither(Rpc, clientDecodeOptions),
  ping: ParseResult.decodeUnknownEither(Ping, clientDecodeOptions),
  pong: ParseResult.decodeUnknownEither(Pong, clientDecodeOptions),
  refresh: ParseResult.decodeUnknownEither(Refresh, clientDecodeOptions)
}

/** `channel: Expected ..., actual 5`: short enough for an error frame. */
const describeIssue = (issue: ParseResult.ParseIssue): string =>
  ParseResult.ArrayFormatter.formatIssueSync(issue)
    .map((entry) => `${entry.path.length === 0 ? "frame" : entry.path.join(".")}: ${entry.message}`)
    .join("; ")

const isClientType = (type: unknown): type is ClientFrame["type"] =>
  typeof type === "string" && (clientFrameTypes as ReadonlyArray<string>).includes(type)

/** Decodes one frame from a client. */
export const decodeClientFrame = (raw: Raw, encoding: Encoding): Either.Either<ClientFrame, ProtocolError> =>
  Either.flatMap(parse(raw, encoding), (value) => {
    if (!isRecord(value)) return Either.left(protocolError("malformed_frame", "a frame must be a map"))
    const id = readId(value)
    if (!isPlain(value, 1)) {
      return Either.left(protocolError("malformed_frame", `not plain data (nested deeper than ${maxDepth}, a msgpack extension type, or a lone surrogate)`, id))
    }
    const type = value["type"]
    if (typeof type !== "string") return Either.left(protocolError("invalid_frame", "missing field `type`", id))
    if (!isClientType(type)) return Either.left(protocolError("unknown_type", `unknown frame type ${JSON.stringify(type)}`, id))
    return Either.mapLeft(clientDecoders[type](value), (issue) => {
      // A channel that is a string but not a channel name has its own code; any other bad field is invalid_frame.
      const channel = value["channel"]
      const hasChannel = type === "subscribe" || type === "unsubscribe" || type === "publish"
      return hasChannel && typeof channel === "string" && !isChannel(channel)
        ? protocolError("invalid_channel", describeIssue(issue), id)
        : protocolError("invalid_frame", describeIssue(issue), id)
    })
  })

const encodeServer = Schema.encodeSync(ServerFrame)
const encodeClient = Schema.encodeSync(ClientFrame)

/**
 * JSON has no bytes: a binary value (published by a msgpack client) is sent to
 * JSON clients as `{"$base64": "..."}`. The replacer looks at the holder's own
 * value because `JSON.stringify` applies `Buffer#toJSON` before it.
 */
function jsonReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key]
  return original instanceof Uint8Array ? { $base64: base64(original) } : value
}

const base64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

const serialize = (value: unknown, encoding: Encoding): Raw =>
  encoding === "msgpack" ? packr.pack(value) : JSON.stringify(value, jsonReplacer)

/** Encodes a frame for a client. */
export const encodeServerFrame = (frame: ServerFrame, encoding: Encoding): Raw => serialize(encodeServer(frame), encoding)

/** Encodes a frame for the server (used by clients and tests). */
export const encodeClientFrame = (frame: ClientFrame, encoding: Encoding): Raw => serialize(encodeClient(frame), encoding)

const decodeServer = ParseResult.decodeUnknownEither(ServerFrame, decodeOptions)

/** Decodes a frame from the server (used by clients and tests). */
export const decodeServerFrame = (raw: Raw, encoding: Encoding): Either.Either<ServerFrame, ProtocolError> =>
  Either.flatMap(parse(raw, encoding), (value) => {
    if (!isRecord(value)) return Either.left(protocolError("invalid_frame", "a frame must be a map"))
    // Schema's union lookup stringifies the discriminator, which throws for a map such as `{"toString": {}}`.
    if (typeof value["type"] !== "string") return Either.left(protocolError("invalid_frame", "missing field `type`"))
    return Either.mapLeft(decodeServer(value), (issue) => protocolError("invalid_frame", describeIssue(issue)))
  })

/** The bytes of a frame already encoded, as a WebSocket payload of the right kind. */
export const toBytes = (raw: Raw): Uint8Array => (typeof raw === "string" ? textEncoder.encode(raw) : raw)

/** Text of a UTF-8 payload, or `undefined` if it is not valid UTF-8. */
export const toText = (bytes: Uint8Array): string | undefined => {
  try {
    return textDecoder.decode(bytes)
  } catch {
    return undefined
  }
}

/** A msgpack-encoded frame re-encoded as JSON (once per node for its JSON subscribers, never per recipient). */
export const msgpackToJson = (bytes: Uint8Array): string => JSON.stringify(unpackr.unpack(bytes), jsonReplacer)
