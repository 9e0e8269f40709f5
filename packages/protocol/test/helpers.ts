/**
 * Shared by the protocol tests: hex, the JSON view of a value (bytes as
 * `{"$base64": ...}`, as JSON clients see them) and arbitraries of plain data.
 */
import { FastCheck as fc } from "effect"

/** `"82 a4 ..."` (any whitespace) to bytes; throws on anything that is not pairs of hex digits. */
export const bytesFromHex = (text: string): Uint8Array => {
  const pairs = text.split(/\s+/).filter((pair) => pair.length > 0)
  const bad = pairs.find((pair) => !/^[0-9a-f]{2}$/.test(pair))
  if (bad !== undefined) throw new Error(`not a hex byte: ${JSON.stringify(bad)}`)
  return Uint8Array.from(pairs, (pair) => Number.parseInt(pair, 16))
}

export const hexOf = (bytes: Uint8Array): string => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ")

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/** How deep `jsonView` and `isPlainData` look before giving up (the codec allows 64). */
const viewDepth = 100

/** A value as a JSON client sees it: bytes become `{"$base64": ...}`; maps become plain objects. */
export const jsonView = (value: unknown, depth = 0): unknown => {
  if (depth > viewDepth) throw new Error("jsonView: too deep")
  if (value instanceof Uint8Array) return { $base64: base64(value) }
  if (Array.isArray(value)) return value.map((item) => jsonView(item, depth + 1))
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, jsonView(item, depth + 1)]))
  }
  return value
}

/** Only nil, booleans, numbers, strings, bytes, arrays and plain maps (what any msgpack library makes of plain msgpack). */
export const isPlainData = (value: unknown, depth = 0): boolean => {
  if (depth > viewDepth) return false
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") return true
  if (value instanceof Uint8Array) return true
  if (Array.isArray(value)) return value.every((item) => isPlainData(item, depth + 1))
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value).every((item) => isPlainData(item, depth + 1))
  }
  return false
}

/** Map keys: any string but `__proto__` (which JavaScript objects cannot hold as a plain key). */
const key = fc.string({ unit: "binary", maxLength: 8 }).filter((text) => text !== "__proto__")

/** Finite numbers, without -0 (msgpack and JSON both write it as 0). */
const number = fc.oneof(
  fc.integer(),
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n))
)

const plain = (withBytes: boolean): fc.Arbitrary<unknown> => {
  const scalars: Array<fc.Arbitrary<unknown>> = [
    fc.constant(null),
    fc.boolean(),
    number,
    fc.string({ unit: "binary", maxLength: 20 })
  ]
  if (withBytes) scalars.push(fc.uint8Array({ maxLength: 20 }))
  return fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", maxDepth: 4 },
      ...scalars,
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(key, tie("value"), { maxKeys: 4, noNullPrototype: true })
    )
  })).value
}

/** Application data a msgpack client can send: includes bytes. */
export const msgpackData: fc.Arbitrary<unknown> = plain(true)
/** Application data a JSON client can send. */
export const jsonData: fc.Arbitrary<unknown> = plain(false)
