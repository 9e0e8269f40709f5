/**
 * A topic message as it travels through Redis: `[version][origin node id][payload]`.
 *
 * The origin id is there because Redis echoes a PUBLISH to every subscribed connection,
 * the publisher's own node included, and that node has already delivered the message to its
 * local subscribers without the round trip. Redis pub/sub has no "no local" flag, so the
 * node recognises its own echo by id and drops it.
 */
import { Buffer } from "node:buffer"
import { randomBytes } from "node:crypto"

const VERSION = 1
// 128 random bits: two live nodes sharing an id would silently drop each other's messages,
// so make that impossible in practice rather than merely unlikely.
const ORIGIN_BYTES = 16
const HEADER_BYTES = 1 + ORIGIN_BYTES

export type Origin = Buffer

export const makeOrigin = (): Origin => randomBytes(ORIGIN_BYTES)

/** One copy of the payload per publish, whatever the number of nodes and subscribers. */
export const encode = (origin: Origin, payload: Uint8Array): Buffer => {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.byteLength)
  frame[0] = VERSION
  origin.copy(frame, 1)
  frame.set(payload, HEADER_BYTES)
  return frame
}

/**
 * The payload (a view into `frame`, not a copy), `"own"` for this node's echo, or
 * `"malformed"` for anything that is not a frame of this version.
 */
export const decode = (origin: Origin, frame: Buffer): Uint8Array | "own" | "malformed" => {
  if (frame.length < HEADER_BYTES || frame[0] !== VERSION) return "malformed"
  if (origin.compare(frame, 1, HEADER_BYTES) === 0) return "own"
  return frame.subarray(HEADER_BYTES)
}
