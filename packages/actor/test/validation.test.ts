/**
 * Property 10: bad input. A value that is not a message of the kind (a forged
 * plain object, a message of another kind, arbitrary junk) is refused by
 * tell/ask with InvalidMessage, never reaches a handler, and leaves the actor
 * and the system working.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Schema } from "effect"
import * as fc from "fast-check"
import { Actor, InvalidMessage } from "@weft/actor"
import {
  awaitFiber,
  deadLetterSink,
  failureOf,
  Get,
  Increment,
  makeProbe,
  probeBuild,
  probeDefinition,
  startSystem
} from "./helpers.ts"

/**
 * A careless narrowing helper, as a caller decoding input by hand might write
 * it: it only looks at `_tag`, so a forged object passes the type check.
 */
const looksLikeIncrement = (value: unknown): value is Increment =>
  typeof value === "object" && value !== null && "_tag" in value && value._tag === "Increment"

/**
 * An unchecked narrowing, standing for a cast at an untyped boundary: it
 * accepts anything, so the test can hand any value to `tell`/`ask`.
 */
const uncheckedIncrement = (_value: unknown): _value is Increment => true

/** Input from the outside world, typed as such. */
const fromWire = (json: string): unknown => JSON.parse(json)

class Foreign extends Schema.TaggedRequest<Foreign>()("Foreign", {
  payload: { by: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

describe("validation of messages", () => {
  it.scoped("a forged plain object is refused by tell with InvalidMessage and never reaches the handler", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("guarded")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }), {
        onDeadLetter: sink.onDeadLetter
      })
      const ref = system.ref(Kind, "a")
      expect(yield* ref.ask(new Increment({ by: 2 }))).toBe(2)

      const forged = fromWire(`{"_tag":"Increment","by":"x"}`)
      expect(looksLikeIncrement(forged)).toBe(true)
      if (!looksLikeIncrement(forged)) return
      const told = yield* Effect.either(ref.tell(forged))
      expect(Either.isLeft(told)).toBe(true)
      const error = Either.isLeft(told) ? told.left : undefined
      expect(error).toBeInstanceOf(InvalidMessage)
      if (error instanceof InvalidMessage) {
        expect(error.address).toBe(`${Kind.kind}/a`)
        expect(error.detail.length).toBeGreaterThan(0)
      }
      // State unchanged, handler never ran, nothing crashed or went to dead letters.
      expect(yield* ref.ask(new Get())).toBe(2)
      expect(probe.increments).toEqual([2])
      expect(probe.count("build")).toBe(1)
      expect(sink.letters).toEqual([])
    }))

  it.scoped("a forged plain object is refused by ask with InvalidMessage at once (not by a timeout)", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("guarded")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Kind, "a")
      yield* ref.ask(new Increment({ by: 5 }))
      const forged = fromWire(`{"_tag":"Increment","by":"x"}`)
      if (!looksLikeIncrement(forged)) return yield* Effect.dieMessage("the helper should accept the forgery")
      // Under it.scoped the TestClock never advances: only an immediate refusal completes this ask.
      const asked = yield* Effect.fork(ref.ask(forged, { timeout: "1 hour" }))
      const exit = yield* awaitFiber("the refusal", asked)
      expect(failureOf(exit)).toBeInstanceOf(InvalidMessage)
      expect(yield* ref.ask(new Get())).toBe(5)
      expect(probe.increments).toEqual([5])
    }))

  it.scoped("a plain object with a valid shape is not an instance of the message class and is refused too", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("guarded")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Kind, "a")
      const plain = fromWire(`{"_tag":"Increment","by":1}`)
      if (!looksLikeIncrement(plain)) return yield* Effect.dieMessage("the helper should accept the object")
      expect(failureOf(yield* Effect.exit(ref.tell(plain)))).toBeInstanceOf(InvalidMessage)
      expect(probe.increments).toEqual([])
    }))

  it.scoped("an instance of another kind's message class is refused and does not activate the actor", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("guarded")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Kind, "a")
      const foreign: unknown = new Foreign({ by: 1 })
      if (!uncheckedIncrement(foreign)) return yield* Effect.dieMessage("unreachable")
      expect(failureOf(yield* Effect.exit(ref.tell(foreign)))).toBeInstanceOf(InvalidMessage)
      expect(failureOf(yield* Effect.exit(ref.ask(foreign)))).toBeInstanceOf(InvalidMessage)
      expect(system.isAlive(ref.address)).toBe(false)
      expect(probe.count("build")).toBe(0)
    }))

  it.scoped("arbitrary junk is always refused with InvalidMessage; the actor and the system keep working", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const otherProbe = yield* makeProbe
      const Kind = probeDefinition("fuzzed")
      const Other = probeDefinition("bystander")
      const system = yield* startSystem(
        Layer.mergeAll(
          Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }),
          Actor.toLayer(Other, probeBuild(otherProbe), { activation: "onMessage" })
        )
      )
      const ref = system.ref(Kind, "a")
      yield* ref.ask(new Increment({ by: 1 }))
      const tags = ["Increment", "Get", "Withdraw", "Crash", "Hold", "Note", "StopSelf", "constructor", "__proto__"]
      const junk: fc.Arbitrary<unknown> = fc.oneof(
        fc.anything(),
        fc.record({ _tag: fc.constantFrom(...tags), by: fc.anything() }),
        fc.record({ _tag: fc.constant("Crash"), how: fc.oneof(fc.string(), fc.constantFrom("die", "throw-sync")) }),
        fc.record({ _tag: fc.constantFrom(...tags) })
      )
      const samples = fc.sample(junk, { numRuns: 200, seed: 20251125 })
      const accepted: Array<unknown> = []
      for (const value of samples) {
        if (!uncheckedIncrement(value)) continue
        const told = yield* Effect.exit(ref.tell(value))
        // Bounded: if junk got through to a handler (say, `Hold`), the ask must not hang the test.
        const asked = yield* awaitFiber("the ask's refusal", yield* Effect.fork(ref.ask(value, { timeout: "1 hour" })), 100)
        const refused = (exit: Exit.Exit<unknown, unknown>) => failureOf(exit) instanceof InvalidMessage
        if (!refused(told) || !refused(asked)) {
          accepted.push(value)
          break // one counterexample is enough, and the actor may now be blocked
        }
      }
      expect(accepted).toEqual([])
      expect(probe.increments).toEqual([1])
      expect(probe.count("build")).toBe(1)
      expect(yield* ref.ask(new Increment({ by: 1 }))).toBe(2)
      expect(yield* system.ref(Other, "b").ask(new Increment({ by: 3 }))).toBe(3)
    }))
})
