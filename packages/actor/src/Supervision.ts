/**
 * Supervision strategies: what happens when a handler (or the actor's start-up)
 * dies with a defect. Expected failures declared in a message's `failure`
 * schema are replies, not crashes, and never trigger supervision.
 */
import { Duration } from "effect"

/** Exponential backoff with full jitter: the n-th restart waits a random time in [0, min(max, base * 2^(n-1))]. */
export interface Backoff {
  readonly base: Duration.Duration
  readonly max: Duration.Duration
}

export interface Restart {
  readonly _tag: "Restart"
  /** Restarts allowed within `within`; one more crash goes to `onLimit`. */
  readonly maxRestarts: number
  readonly within: Duration.Duration
  readonly backoff: Backoff
  /** At the limit: stop the actor (watchers are told), or stop it and crash its parent. */
  readonly onLimit: "stop" | "escalate"
}

export interface Stop {
  readonly _tag: "Stop"
}

export interface Escalate {
  readonly _tag: "Escalate"
}

export type Strategy = Restart | Stop | Escalate

/**
 * Restart with fresh state, backing off exponentially with full jitter.
 *
 * @example
 * Supervision.restart({ maxRestarts: 3, within: "1 minute", backoff: { base: "50 millis", max: "5 seconds" } })
 */
export const restart = (options?: {
  readonly maxRestarts?: number
  readonly within?: Duration.DurationInput
  readonly backoff?: { readonly base?: Duration.DurationInput; readonly max?: Duration.DurationInput }
  readonly onLimit?: "stop" | "escalate"
}): Restart => ({
  _tag: "Restart",
  maxRestarts: options?.maxRestarts ?? 5,
  within: Duration.decode(options?.within ?? "1 minute"),
  backoff: {
    base: Duration.decode(options?.backoff?.base ?? "10 millis"),
    max: Duration.decode(options?.backoff?.max ?? "5 seconds")
  },
  onLimit: options?.onLimit ?? "stop"
})

/** Stop on the first crash; watchers receive `Crashed`. */
export const stop: Stop = { _tag: "Stop" }

/** Stop on the first crash and crash the parent, whose own strategy then applies. */
export const escalate: Escalate = { _tag: "Escalate" }

/** The default: restart up to 5 times a minute, 10 ms to 5 s backoff, then stop. */
export const defaultStrategy: Restart = restart()

/** Upper bound of the delay before the `attempt`-th restart (1-based), before jitter. */
export const backoffCeiling = (backoff: Backoff, attempt: number): number => {
  const base = Duration.toMillis(backoff.base)
  const max = Duration.toMillis(backoff.max)
  return Math.min(max, base * 2 ** Math.min(attempt - 1, 30))
}
