/**
 * SHA-256 through web crypto (Bun, Node 20+, Deno, browsers): the package
 * stays free of `node:crypto`.
 */
import { Effect } from "effect"

const encoder = new TextEncoder()

/** SHA-256 of the UTF-8 bytes of `text`. */
export const sha256 = (text: string): Effect.Effect<Uint8Array> =>
  Effect.map(
    Effect.promise(() => crypto.subtle.digest("SHA-256", encoder.encode(text))),
    (digest) => new Uint8Array(digest)
  )

export const hex = (bytes: Uint8Array): string => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")

/** `bytes` random bytes, hex. */
export const randomHex = (bytes: number): string => hex(crypto.getRandomValues(new Uint8Array(bytes)))
