/**
 * Property 1: kinds declared with Schema.TaggedRequest messages, private
 * state, `tell` (fire-and-forget) and `ask` (typed reply, typed declared
 * failure as the failure), and ask timeouts (explicit and the system default).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, TestClock } from "effect"
import { Actor, AskTimeout, Supervision } from "@weft/actor"
import {
  awaitFiber,
  failureOf,
  Get,
  Hold,
  Increment,
  isDone,
  makeProbe,
  Overdrawn,
  probeBuild,
  probeDefinition,
  settle,
  startSystem,
  waitFor,
  Withdraw,
  joinWithin
} from "./helpers.ts"

describe("messaging: tell and ask", () => {
  it.scoped("ask returns the handler's typed reply and each address keeps its own private state", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Counter = probeDefinition("counter")
      const system = yield* startSystem(Actor.toLayer(Counter, probeBuild(probe), { activation: "onMessage" }))
      const a = system.ref(Counter, "a")
      const b = system.ref(Counter, "b")
      const first = yield* a.ask(new Increment({ by: 2 }))
      const second = yield* a.ask(new Increment({ by: 3 }))
      const onB = yield* b.ask(new Increment({ by: 10 }))
      expect([first, second, onB]).toEqual([2, 5, 10])
      expect(yield* a.ask(new Get())).toBe(5)
      expect(yield* b.ask(new Get())).toBe(10)
    }))

  it.scoped("tell is fire-and-forget: it returns before the message is handled, which then happens in order", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Counter = probeDefinition("counter")
      const system = yield* startSystem(Actor.toLayer(Counter, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Counter, "k")
      const held = yield* Effect.fork(ref.ask(new Hold()))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      // The actor is blocked, yet tell completes: it only enqueues.
      const told = yield* Effect.fork(Effect.all([ref.tell(new Increment({ by: 1 })), ref.tell(new Increment({ by: 2 }))]))
      const toldExit = yield* awaitFiber("tell to return while the actor is busy", told)
      expect(toldExit._tag).toBe("Success")
      expect(probe.increments).toEqual([])
      yield* probe.gate.open
      yield* joinWithin("held", held)
      expect(yield* ref.ask(new Get())).toBe(3)
      expect(probe.increments).toEqual([1, 2])
    }))

  it.scoped("a declared failure comes back to the asker as the typed failure, and the actor keeps its state", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Account = probeDefinition("account")
      const system = yield* startSystem(Actor.toLayer(Account, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Account, "acc")
      yield* ref.ask(new Increment({ by: 10 }))
      const result = yield* Effect.either(ref.ask(new Withdraw({ amount: 25 })))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left).toBeInstanceOf(Overdrawn)
        expect(result.left).toEqual(new Overdrawn({ balance: 10, requested: 25 }))
      }
      // Not a crash: same activation, same state.
      expect(yield* ref.ask(new Get())).toBe(10)
      expect(yield* ref.ask(new Withdraw({ amount: 4 }))).toBe(6)
      expect(probe.count("build")).toBe(1)
      expect(probe.count("restarted")).toBe(0)
    }))

  it.scoped("a told message whose handler fails with its declared failure is not a crash", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Account = probeDefinition("account")
      const system = yield* startSystem(
        Actor.toLayer(Account, probeBuild(probe), { activation: "onMessage", supervision: Supervision.stop })
      )
      const ref = system.ref(Account, "acc")
      yield* ref.tell(new Increment({ by: 3 }))
      yield* ref.tell(new Withdraw({ amount: 100 }))
      expect(yield* ref.ask(new Get())).toBe(3)
      expect(system.isAlive(ref.address)).toBe(true)
      expect(probe.count("build")).toBe(1)
    }))

  it.effect("ask fails with AskTimeout when the handler never replies within the given timeout", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Counter = probeDefinition("counter")
      const system = yield* startSystem(Actor.toLayer(Counter, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Counter, "slow")
      const asked = yield* Effect.fork(ref.ask(new Hold(), { timeout: "100 millis" }))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      yield* TestClock.adjust("99 millis")
      yield* settle()
      expect(yield* isDone(asked)).toBe(false)
      yield* TestClock.adjust("1 millis")
      const exit = yield* awaitFiber("the ask to time out", asked)
      expect(failureOf(exit)).toEqual(new AskTimeout({ address: ref.address.toString(), timeoutMillis: 100 }))
      // The actor is not harmed: once unblocked it answers again.
      yield* probe.gate.open
      expect(yield* ref.ask(new Increment({ by: 1 }), { timeout: "1 second" })).toBe(1)
    }).pipe(Effect.scoped))

  it.effect("the ActorSystem's askTimeout is the default timeout of ask", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Counter = probeDefinition("counter")
      const system = yield* startSystem(Actor.toLayer(Counter, probeBuild(probe), { activation: "onMessage" }), {
        askTimeout: "300 millis"
      })
      const ref = system.ref(Counter, "slow")
      const asked = yield* Effect.fork(ref.ask(new Hold()))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      yield* TestClock.adjust("299 millis")
      yield* settle()
      expect(yield* isDone(asked)).toBe(false)
      yield* TestClock.adjust("1 millis")
      const exit = yield* awaitFiber("the ask to time out", asked)
      expect(failureOf(exit)).toEqual(new AskTimeout({ address: ref.address.toString(), timeoutMillis: 300 }))
      yield* probe.gate.open
    }).pipe(Effect.scoped))

  it.effect("an explicit ask timeout overrides the system default", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Counter = probeDefinition("counter")
      const system = yield* startSystem(
        Layer.mergeAll(Actor.toLayer(Counter, probeBuild(probe), { activation: "onMessage" })),
        { askTimeout: "100 millis" }
      )
      const ref = system.ref(Counter, "slow")
      const asked = yield* Effect.fork(ref.ask(new Hold(), { timeout: "500 millis" }))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      yield* TestClock.adjust("499 millis")
      yield* settle()
      expect(yield* isDone(asked)).toBe(false)
      yield* TestClock.adjust("1 millis")
      const exit = yield* awaitFiber("the ask to time out", asked)
      expect(failureOf(exit)).toEqual(new AskTimeout({ address: ref.address.toString(), timeoutMillis: 500 }))
      yield* probe.gate.open
    }).pipe(Effect.scoped))
})
