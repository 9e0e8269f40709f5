/**
 * When a connection's credentials run out. A connection opened with a JWT
 * that has an `exp` gets a countdown: `marginMs` before `exp` it is told to
 * ask the client for a new JWT (`refresh-required`), and `graceMs` after
 * `exp`, unless a refresh started a new countdown meanwhile, it is told that
 * the credentials expired (the connection then says goodbye and closes with
 * 4003). Credentials without `exp` never expire: no countdown.
 *
 * Pure Effect (time from `Clock`, so `TestClock` drives it); the connection
 * actor runs one per connection in its own scope and hands the two moments to
 * itself as messages, so they are handled in order with everything else.
 */
import { Clock, Effect, FiberHandle } from "effect"
import type { Scope } from "effect"

export interface Options {
  /** How long before `exp` to ask for a new JWT (ms, 0 or more). */
  readonly marginMs: number
  /** How long after `exp` a connection without a refresh is kept (ms, 0 or more). */
  readonly graceMs: number
  /** It is time to ask for a refresh (`expiresAt - marginMs`, or at once when that has passed). */
  readonly refreshRequired: (expiresAt: number, deadline: number) => Effect.Effect<void>
  /** The credentials expired `graceMs` ago and were not replaced. */
  readonly expired: (expiresAt: number) => Effect.Effect<void>
}

export interface CredentialExpiry {
  /**
   * Starts the countdown for credentials that expire at `expiresAt` (ms since the epoch),
   * replacing the one running; `undefined`: the credentials never expire (no countdown).
   */
  readonly set: (expiresAt: number | undefined) => Effect.Effect<void>
}

/** When a connection whose credentials expire at `expiresAt` is closed without a refresh. */
export const deadlineOf = (expiresAt: number, graceMs: number): number => expiresAt + graceMs

/** Sleeps until the clock reads `at` (ms since the epoch); at once when it already has. */
const sleepUntil = (at: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => (at > now ? Effect.sleep(at - now) : Effect.void))

/** A countdown that lives (and is interrupted) with the scope. */
export const make = (options: Options): Effect.Effect<CredentialExpiry, never, Scope.Scope> =>
  Effect.map(FiberHandle.make<void, never>(), (handle) => {
    const countdown = (expiresAt: number): Effect.Effect<void> => {
      const deadline = deadlineOf(expiresAt, options.graceMs)
      return sleepUntil(expiresAt - options.marginMs).pipe(
        Effect.zipRight(options.refreshRequired(expiresAt, deadline)),
        Effect.zipRight(sleepUntil(deadline)),
        Effect.zipRight(options.expired(expiresAt))
      )
    }
    return {
      set: (expiresAt) =>
        expiresAt === undefined ? FiberHandle.clear(handle) : Effect.asVoid(FiberHandle.run(handle, countdown(expiresAt)))
    }
  })
