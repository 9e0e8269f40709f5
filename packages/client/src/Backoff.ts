/**
 * Reconnect delays, as docs/protocol.md section 7.3 asks: exponential backoff
 * with full jitter when the connection dropped without advice, and the
 * server's `goodbye.after` plus jitter when it said goodbye.
 */

export interface BackoffOptions {
  /** The first retry waits up to this long (ms). */
  readonly baseMs: number
  /** No retry waits longer than this (ms). */
  readonly capMs: number
}

export const defaultBackoff: BackoffOptions = { baseMs: 500, capMs: 30_000 }

/**
 * Full jitter: a uniformly random delay in [0, min(cap, base x 2^attempt)).
 * `attempt` counts from 0 (the first retry). `random` returns [0, 1).
 */
export const backoffDelay = (attempt: number, options: BackoffOptions, random: () => number): number => {
  // 2^attempt overflows to Infinity past ~1024, and min() then picks the cap: still correct.
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, attempt))
  return Math.floor(clamp01(random()) * ceiling)
}

/**
 * After a `goodbye` with `reconnect: true`: `after` ms plus a random jitter in
 * [0, after), or in [0, 1000) when `after` is 0 or absent, so clients told at
 * the same moment do not all come back at the same moment.
 */
export const goodbyeDelay = (after: number | undefined, random: () => number): number => {
  const base = after !== undefined && after > 0 ? after : 0
  const spread = base > 0 ? base : 1000
  return Math.floor(base + clamp01(random()) * spread)
}

const clamp01 = (value: number): number => (Number.isFinite(value) ? Math.min(Math.max(value, 0), 0.999_999_999) : 0)
