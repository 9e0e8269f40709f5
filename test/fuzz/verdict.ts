/**
 * What every decoder answer must satisfy, whatever the input: the decoder returns (never throws);
 * a refusal carries one of the codes decoding can give, and an id only when it is a usable one;
 * an accepted frame is one the node can send on to every client, in either encoding, unchanged.
 * Each check throws an Error that says what was wrong, for fast-check to shrink and report.
 */
import { type ClientFrame, Codec, type ProtocolError } from "@weft/protocol"
import { Either } from "effect"

/** The codes a decoder gives: 1003 (duplicate id) and 2xxx other than 2003 come from handling, not decoding. */
export const decodingCodes: ReadonlySet<number> = new Set([1000, 1001, 1002, 1004, 2003])

export type Verdict = Either.Either<ClientFrame, ProtocolError>

const show = (raw: Codec.Raw): string =>
  typeof raw === "string" ? JSON.stringify(raw.slice(0, 300)) : Buffer.from(raw.subarray(0, 200)).toString("hex")

/** Decodes without letting an exception escape unexplained. */
export const decodeClient = (raw: Codec.Raw, encoding: Codec.Encoding): Verdict => {
  try {
    return Codec.decodeClientFrame(raw, encoding)
  } catch (error) {
    throw new Error(`decodeClientFrame threw on ${encoding} ${show(raw)}: ${String(error)}`)
  }
}

const loneSurrogate = /\p{Cs}/u

/** Every string and key in `value` has a UTF-8 form (what msgpack subscribers must receive). */
const wellFormed = (value: unknown, depth = 0): boolean => {
  if (depth > 200) return false
  if (typeof value === "string") return !loneSurrogate.test(value)
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return true
  if (Array.isArray(value)) return value.every((item) => wellFormed(item, depth + 1))
  return Object.entries(value).every(([key, item]) => !loneSurrogate.test(key) && wellFormed(item, depth + 1))
}

/**
 * -0 and 0 are the same number on the wire of at least one encoding; bytes compare by content.
 * With `json`, a number JSON cannot write (a JSON client's `1e999` reads as Infinity) is null
 * after the round trip, as docs/protocol.md §3 says subscribers see it.
 */
const same = (a: unknown, b: unknown, json: boolean, depth = 0): boolean => {
  if (depth > 200) return false
  if (json && typeof a === "number" && !Number.isFinite(a)) return b === null
  if (typeof a === "number" && typeof b === "number") return a === b || (Number.isNaN(a) && Number.isNaN(b))
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b))
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => same(item, b[i], json, depth + 1))
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const keysA = Object.keys(a).filter((key) => Reflect.get(a, key) !== undefined).sort()
    const keysB = Object.keys(b).filter((key) => Reflect.get(b, key) !== undefined).sort()
    return keysA.length === keysB.length && keysA.every((key, i) => key === keysB[i] && same(Reflect.get(a, key), Reflect.get(b, key), json, depth + 1))
  }
  return Object.is(a, b)
}

/**
 * The invariants of any answer. For an accepted frame: it survives its own encoding unchanged,
 * and as the `data` of a `message` it encodes for msgpack subscribers as well-formed UTF-8 and
 * re-encodes for JSON subscribers, each readable by the client decoder.
 */
export const checkVerdict = (raw: Codec.Raw, encoding: Codec.Encoding, verdict: Verdict): void => {
  if (Either.isLeft(verdict)) {
    const { code, id } = verdict.left
    if (!decodingCodes.has(code)) throw new Error(`code ${code} is not a decoding code, for ${show(raw)}`)
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id <= 4_294_967_295)) throw new Error(`unusable id ${id} in the error`)
    return
  }
  const frame = verdict.right
  if (!wellFormed(frame)) throw new Error(`accepted a frame with a lone surrogate: ${show(raw)}`)
  const again = Codec.decodeClientFrame(Codec.encodeClientFrame(frame, encoding), encoding)
  if (Either.isLeft(again) || !same(frame, again.right, encoding === "json")) throw new Error(`accepted ${show(raw)} but it does not survive re-encoding`)
  const message = Codec.toBytes(Codec.encodeServerFrame({ type: "message", channel: "topic:fuzz", data: frame, at: 1 }, "msgpack"))
  const forMsgpack = Codec.decodeServerFrame(message, "msgpack")
  const forJson = Codec.decodeServerFrame(Codec.msgpackToJson(message), "json")
  if (Either.isLeft(forMsgpack) || Either.isLeft(forJson)) throw new Error(`accepted ${show(raw)} but subscribers could not read it`)
}

/** The refusal must be exactly `code` with exactly `id` (undefined: no id). */
export const expectRefusal = (verdict: Verdict, code: number, id: number | undefined, what: string): void => {
  if (Either.isRight(verdict)) throw new Error(`${what}: expected ${code}, but the frame was accepted: ${JSON.stringify(verdict.right).slice(0, 300)}`)
  if (verdict.left.code !== code || verdict.left.id !== id) {
    throw new Error(`${what}: expected ${code} with id ${id}, got ${verdict.left.code} with id ${verdict.left.id} (${verdict.left.detail})`)
  }
}
