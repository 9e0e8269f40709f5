/**
 * `CredentialExpiry`: a connection's countdown to its JWT's `exp`, on Effect's
 * TestClock. `refresh-required` comes `marginMs` before `exp` (at once when
 * that has passed), `expired` `graceMs` after it; a refresh (a new `set`)
 * replaces the countdown, and credentials without `exp` have none.
 */
import { describe, expect, it } from "@effect/vitest"
import { CredentialExpiry } from "@weft/gateway"
import { Clock, Effect, Exit, Scope, TestClock } from "effect"

interface Event {
  readonly at: number
  readonly what: "refresh-required" | "expired"
  readonly expiresAt: number
  readonly deadline?: number
}

const marginMs = 10_000
const graceMs = 5_000

/** A countdown recording what it says and when, in the given scope. */
const recorder = (scope: Scope.Scope) =>
  Effect.gen(function*() {
    const events: Array<Event> = []
    const expiry = yield* CredentialExpiry.make({
      marginMs,
      graceMs,
      refreshRequired: (expiresAt, deadline) =>
        Effect.map(Clock.currentTimeMillis, (at) => void events.push({ at, what: "refresh-required", expiresAt, deadline })),
      expired: (expiresAt) => Effect.map(Clock.currentTimeMillis, (at) => void events.push({ at, what: "expired", expiresAt }))
    }).pipe(Scope.extend(scope))
    return { events, expiry }
  })

describe("CredentialExpiry", () => {
  it.scoped("asks for a refresh marginMs before exp, and says expired graceMs after it", () =>
    Effect.gen(function*() {
      const { events, expiry } = yield* recorder(yield* Effect.scope)
      yield* expiry.set(60_000)
      yield* TestClock.adjust(49_999)
      expect(events).toEqual([])
      yield* TestClock.adjust(1)
      expect(events).toEqual([{ at: 50_000, what: "refresh-required", expiresAt: 60_000, deadline: 65_000 }])
      yield* TestClock.adjust(14_999)
      expect(events).toHaveLength(1)
      yield* TestClock.adjust(1)
      expect(events[1]).toEqual({ at: 65_000, what: "expired", expiresAt: 60_000 })
      yield* TestClock.adjust(3_600_000)
      expect(events).toHaveLength(2)
    }))

  it.scoped("a refresh before the deadline replaces the countdown: the old exp never expires", () =>
    Effect.gen(function*() {
      const { events, expiry } = yield* recorder(yield* Effect.scope)
      yield* expiry.set(60_000)
      yield* TestClock.adjust(55_000)
      expect(events.map((event) => event.what)).toEqual(["refresh-required"])
      // The client refreshed with a JWT valid for another two minutes.
      yield* expiry.set(180_000)
      yield* TestClock.adjust(115_000)
      expect(events.slice(1)).toEqual([{ at: 170_000, what: "refresh-required", expiresAt: 180_000, deadline: 185_000 }])
      yield* TestClock.adjust(15_000)
      expect(events.slice(2)).toEqual([{ at: 185_000, what: "expired", expiresAt: 180_000 }])
      expect(events.some((event) => event.what === "expired" && event.expiresAt === 60_000)).toBe(false)
    }))

  it.scoped("credentials already inside the margin are asked for at once; already past the deadline, both at once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(100_000)
      const soon = yield* recorder(yield* Effect.scope)
      yield* soon.expiry.set(105_000)
      yield* TestClock.adjust(0)
      expect(soon.events).toEqual([{ at: 100_000, what: "refresh-required", expiresAt: 105_000, deadline: 110_000 }])
      yield* TestClock.adjust(10_000)
      expect(soon.events[1]).toEqual({ at: 110_000, what: "expired", expiresAt: 105_000 })

      const late = yield* recorder(yield* Effect.scope)
      yield* late.expiry.set(50_000)
      yield* TestClock.adjust(0)
      expect(late.events.map((event) => [event.what, event.at])).toEqual([["refresh-required", 110_000], ["expired", 110_000]])
    }))

  it.scoped("credentials without exp have no countdown; set(undefined) stops a running one", () =>
    Effect.gen(function*() {
      const { events, expiry } = yield* recorder(yield* Effect.scope)
      yield* expiry.set(undefined)
      yield* TestClock.adjust(86_400_000)
      expect(events).toEqual([])
      yield* expiry.set(86_500_000)
      yield* TestClock.adjust(1_000)
      // A refresh with a JWT without exp: the connection no longer expires.
      yield* expiry.set(undefined)
      yield* TestClock.adjust(86_400_000)
      expect(events).toEqual([])
    }))

  it.effect("closing the scope (the connection actor stopping) ends the countdown", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { events, expiry } = yield* recorder(scope)
      yield* expiry.set(20_000)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust(60_000)
      expect(events).toEqual([])
    }))
})
