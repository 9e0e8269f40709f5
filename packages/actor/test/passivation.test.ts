/**
 * Property 7: passivation. An idle actor stops with reason Passivated and the
 * next message re-activates it with fresh state; no message is lost or
 * handled twice when messages race the passivation deadline.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Ref, Schema, TestClock } from "effect"
import * as fc from "fast-check"
import { Actor, Termination } from "@weft/actor"
import {
  forkStarted,
  Get,
  Hold,
  Increment,
  makeKind,
  makeProbe,
  probeBuild,
  probeDefinition,
  settle,
  startSystem,
  uniqueKind,
  waitFor,
  waitForEffect,
  joinWithin
} from "./helpers.ts"

describe("passivation (TestClock)", () => {
  it.effect("an idle actor passivates (reason Passivated, not alive); the next message re-activates it fresh", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("idle")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { passivateAfter: "1 second" }))
      const ref = system.ref(Kind, "u")
      expect(yield* ref.ask(new Increment({ by: 5 }))).toBe(5)
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      yield* TestClock.adjust("500 millis")
      yield* settle()
      expect(system.isAlive(ref.address)).toBe(true)
      yield* TestClock.adjust("2 seconds")
      expect(yield* joinWithin("terminated", terminated)).toEqual(new Termination.Passivated())
      expect(system.isAlive(ref.address)).toBe(false)
      // Re-activated by the next message, with fresh state.
      expect(yield* ref.ask(new Get())).toBe(0)
      expect(system.isAlive(ref.address)).toBe(true)
      expect(probe.count("build")).toBe(2)
      expect(probe.count("restarted")).toBe(0)
    }).pipe(Effect.scoped))

  it.effect("messages keep an actor alive: it passivates only after passivateAfter without any", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("busy")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { passivateAfter: "1 second" }))
      const ref = system.ref(Kind, "u")
      for (let i = 1; i <= 6; i++) {
        yield* TestClock.adjust("600 millis")
        expect(yield* ref.ask(new Increment({ by: 1 }))).toBe(i)
      }
      expect(probe.count("build")).toBe(1)
      yield* TestClock.adjust("3 seconds")
      yield* waitFor("passivation", () => !system.isAlive(ref.address))
    }).pipe(Effect.scoped))

  it.effect("an actor busy in a long handler is not passivated under it", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("long-handler")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { passivateAfter: "1 second" }))
      const ref = system.ref(Kind, "u")
      yield* ref.ask(new Increment({ by: 1 }))
      yield* ref.tell(new Hold())
      yield* waitFor("the handler to block", () => probe.entered === 1)
      yield* TestClock.adjust("3 seconds")
      yield* settle()
      expect(system.isAlive(ref.address)).toBe(true)
      expect(probe.stoppingReasons).toEqual([])
      yield* probe.gate.open
      expect(yield* ref.ask(new Get())).toBe(1)
    }).pipe(Effect.scoped))

  it.effect("kinds without passivateAfter never passivate", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("forever")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }), {
        housekeepingInterval: "10 minutes"
      })
      const ref = system.ref(Kind, "u")
      yield* ref.ask(new Increment({ by: 2 }))
      yield* TestClock.adjust("2 hours")
      yield* settle()
      expect(system.isAlive(ref.address)).toBe(true)
      expect(yield* ref.ask(new Get())).toBe(2)
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------
// The race: messages sent around the passivation deadline (real clock)
// ---------------------------------------------------------------------------

class Mark extends Schema.TaggedRequest<Mark>()("Mark", {
  payload: { sender: Schema.Number, id: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

interface Send {
  readonly delayMillis: number
  readonly ask: boolean
}

/** Delays cluster just under, at and just over the 20 ms deadline (plus the sweep's 5 ms tick), with some back-to-back sends. */
const sendArb: fc.Arbitrary<Send> = fc.record({
  delayMillis: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 16, max: 32 })),
  ask: fc.boolean()
})

describe("passivation race (real clock)", () => {
  let activationsSeen = 0
  let runsSeen = 0

  it("every message sent around the passivation deadline is handled exactly once, in order per sender", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(sendArb, { minLength: 5, maxLength: 12 }), { minLength: 1, maxLength: 2 }),
        async (senders) => {
          const program = Effect.gen(function*() {
            const handled = yield* Ref.make<ReadonlyArray<readonly [number, number]>>([])
            const activations = yield* Ref.make(0)
            const Kind = makeKind(uniqueKind("racy"), [Mark])
            const system = yield* startSystem(
              Actor.toLayer(
                Kind,
                () =>
                  Effect.as(Ref.update(activations, (n) => n + 1), {
                    receive: {
                      Mark: ({ id, sender }) => Effect.as(Ref.update(handled, (all) => [...all, [sender, id] as const]), id)
                    }
                  }),
                { passivateAfter: "20 millis" }
              ),
              // A lost ask fails its run after a second instead of hanging it.
              { housekeepingInterval: "5 millis", askTimeout: "1 second" }
            )
            const ref = system.ref(Kind, "u")
            yield* Effect.forEach(
              senders,
              (sends, sender) =>
                Effect.forEach(
                  sends,
                  (send, id) =>
                    Effect.gen(function*() {
                      if (send.delayMillis > 0) yield* Effect.sleep(send.delayMillis)
                      const message = new Mark({ sender, id })
                      if (send.ask) {
                        const reply = yield* ref.ask(message)
                        if (reply !== id) return yield* Effect.dieMessage(`ask ${sender}/${id} answered ${reply}`)
                      } else {
                        yield* ref.tell(message)
                      }
                    }),
                  { discard: true }
                ),
              { concurrency: "unbounded", discard: true }
            )
            const total = senders.reduce((n, sends) => n + sends.length, 0)
            yield* waitForEffect("every message handled", Effect.map(Ref.get(handled), (all) => all.length >= total))
            yield* settle(10) // anything handled twice would show up now
            return { handled: yield* Ref.get(handled), activations: yield* Ref.get(activations) }
          }).pipe(Effect.scoped)
          const outcome = await Effect.runPromise(program)
          senders.forEach((sends, sender) => {
            const ids = outcome.handled.filter(([s]) => s === sender).map(([, id]) => id)
            expect(ids).toEqual(sends.map((_, id) => id))
          })
          expect(outcome.handled.length).toBe(senders.reduce((n, sends) => n + sends.length, 0))
          activationsSeen += outcome.activations
          runsSeen += 1
        }
      ),
      // Each run takes real time: report the first counterexample without shrinking it.
      { numRuns: 12, endOnFailure: true }
    )
    // The property is only meaningful if passivation and re-activation really happened during the runs.
    expect(activationsSeen).toBeGreaterThan(runsSeen)
  }, 20_000)
})
