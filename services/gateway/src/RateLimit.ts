/**
 * A token bucket per connection, and the abuse counter that turns repeated
 * refusals into a close. Plain numbers on the connection's state: checked on
 * every inbound frame, so no allocation and no fiber hop.
 */
import { abuseThreshold, abuseWindowMs } from "./GatewayConfig.ts"

export interface Bucket {
  tokens: number
  refilledAt: number
  /** Times of recent refusals, oldest first (at most `abuseThreshold + 1`). */
  readonly refusals: Array<number>
}

export const makeBucket = (burst: number, now: number): Bucket => ({ tokens: burst, refilledAt: now, refusals: [] })

export type Verdict = "allow" | "refuse" | "abuse"

/** Takes one token; `refuse` when none is left, `abuse` when refusals are sustained. */
export const take = (bucket: Bucket, ratePerSecond: number, burst: number, now: number): Verdict => {
  const elapsed = now - bucket.refilledAt
  if (elapsed > 0) {
    bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * ratePerSecond) / 1000)
    bucket.refilledAt = now
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1
    return "allow"
  }
  const refusals = bucket.refusals
  refusals.push(now)
  while (refusals.length > 0 && refusals[0]! <= now - abuseWindowMs) refusals.shift()
  if (refusals.length > abuseThreshold) return "abuse"
  return "refuse"
}
