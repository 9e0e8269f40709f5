/**
 * Property 8: graceful shutdown. Closing the system's scope or
 * `system.shutdown` drains what is queued, runs `stopping` with reason
 * Shutdown and refuses new activations with SystemStopping; past the
 * shutdown deadline blocked actors are interrupted, queued messages become
 * dead letters and queued asks fail with ActorStopped.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber, Layer, Option, Scope, TestClock } from "effect"
import { Actor, ActorNotFound, ActorStopped, ActorSystem, Supervision, SystemStopping, Termination } from "@weft/actor"
import type { ActorRef } from "@weft/actor"
import {
  awaitFiber,
  Crash,
  deadLetterSink,
  failureOf,
  forkStarted,
  Get,
  Hold,
  Increment,
  isDone,
  makeProbe,
  type Probe,
  probeBuild,
  probeDefinition,
  type ProbeMsg,
  queuedFor,
  realTick,
  settle,
  startSystem,
  startSystemIn,
  type System,
  waitFor,
  waitForEffect,
  joinWithin
} from "./helpers.ts"

/** Blocks `ref` in a told `Hold`, then queues five increments and a `Get` ask (returned, forked). */
const blockAndQueue = (system: System, kind: string, ref: ActorRef<ProbeMsg>, probe: Probe) =>
  Effect.gen(function*() {
    yield* ref.tell(new Hold())
    yield* waitFor("the handler to block", () => probe.entered === 1)
    for (let i = 0; i < 5; i++) yield* ref.tell(new Increment({ by: 1 }))
    const total = yield* Effect.fork(ref.ask(new Get(), { timeout: "1 hour" }))
    yield* waitForEffect("six queued messages", Effect.map(queuedFor(system, kind), (n) => n === 6))
    return total
  })

describe("shutdown: draining", () => {
  it.effect("system.shutdown handles everything queued, runs stopping with Shutdown and refuses new activations", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const otherProbe = yield* makeProbe
      const Kind = probeDefinition("drained")
      const Explicit = probeDefinition("explicit")
      const system = yield* startSystem(
        Layer.mergeAll(
          Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }),
          Actor.toLayer(Explicit, probeBuild(otherProbe))
        )
      )
      const ref = system.ref(Kind, "a")
      yield* ref.ask(new Increment({ by: 10 }))
      const total = yield* blockAndQueue(system, Kind.kind, ref, probe)

      const shutdown = yield* forkStarted(system.shutdown)
      yield* settle()
      expect(yield* isDone(shutdown)).toBe(false)
      // While draining: no new activations, by message or by spawn.
      expect(yield* Effect.either(system.ref(Kind, "new").tell(new Increment({ by: 1 })))).toEqual(
        Either.left(new SystemStopping())
      )
      expect(yield* Effect.either(system.spawn(Explicit, "x"))).toEqual(Either.left(new SystemStopping()))

      yield* probe.gate.open
      yield* awaitFiber("shutdown to complete", shutdown)
      expect(yield* joinWithin("total", total)).toBe(15)
      expect(probe.increments).toEqual([10, 1, 1, 1, 1, 1])
      expect(probe.stoppingReasons).toEqual([new Termination.Shutdown()])
      expect(system.isAlive(ref.address)).toBe(false)
      expect(otherProbe.count("build")).toBe(0)
      // And after it: still no activations.
      expect(yield* Effect.either(ref.tell(new Increment({ by: 1 })))).toEqual(Either.left(new SystemStopping()))
    }).pipe(Effect.scoped))

  it.effect("closing the system's scope drains the same way and refuses new activations with SystemStopping", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("scope-drained")
      const scope = yield* Scope.make()
      const system = yield* startSystemIn(scope, Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Kind, "a")
      yield* ref.ask(new Increment({ by: 10 }))
      const total = yield* blockAndQueue(system, Kind.kind, ref, probe)

      const closing = yield* forkStarted(Scope.close(scope, Exit.void))
      yield* settle()
      expect(yield* isDone(closing)).toBe(false)
      const late = yield* Effect.either(system.ref(Kind, "new").tell(new Increment({ by: 1 })))

      yield* probe.gate.open
      yield* awaitFiber("the scope to close", closing)
      expect(yield* joinWithin("total", total)).toBe(15)
      expect(probe.stoppingReasons.map((r) => r._tag)).toContain("Shutdown")
      expect(late).toEqual(Either.left(new SystemStopping()))
      expect(probe.count("build")).toBe(1)
    }))

  it.effect("shutdown is idempotent: a second call waits for the same shutdown, hooks run once", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("twice")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Kind, "a")
      yield* ref.tell(new Hold())
      yield* waitFor("the handler to block", () => probe.entered === 1)
      const first = yield* forkStarted(system.shutdown)
      const second = yield* forkStarted(system.shutdown)
      yield* settle()
      expect(yield* isDone(second)).toBe(false)
      yield* probe.gate.open
      yield* awaitFiber("the first shutdown", first)
      yield* awaitFiber("the second shutdown", second)
      yield* system.shutdown
      expect(probe.stoppingReasons).toEqual([new Termination.Shutdown()])
    }).pipe(Effect.scoped))

  it.effect("a handler crashing while the system drains does not bring the actor back: shutdown completes without the deadline", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("crash-in-drain")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), {
          activation: "onMessage",
          supervision: Supervision.restart({ backoff: { base: "0 millis", max: "0 millis" } })
        }),
        { shutdownDeadline: "1 second" }
      )
      const ref = system.ref(Kind, "a")
      yield* ref.tell(new Crash({ how: "die-after-gate" }))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      const shutdown = yield* forkStarted(system.shutdown)
      yield* settle()
      yield* probe.gate.open
      // Observe without failing yet (bounded), so that the clean-up below runs either way.
      let completedBeforeDeadline = false
      for (let i = 0; i < 300 && !completedBeforeDeadline; i++) {
        completedBeforeDeadline = yield* isDone(shutdown)
        if (!completedBeforeDeadline) yield* realTick
      }
      const builds = probe.count("build")
      yield* TestClock.adjust("1 second")
      yield* awaitFiber("shutdown, at the latest at its deadline", shutdown)
      expect(completedBeforeDeadline, `shutdown waited for its deadline (instances built: ${builds})`).toBe(true)
      expect(system.isAlive(ref.address)).toBe(false)
    }).pipe(Effect.scoped))

  it.scoped("a kind is registered only for the life of its layer: once released, its actors are gone and not re-activated", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("released")
      const system = yield* startSystem(Layer.empty)
      const kindScope = yield* Scope.make()
      yield* Layer.buildWithScope(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }), kindScope).pipe(
        Effect.provideService(ActorSystem, system)
      )
      const ref = system.ref(Kind, "a")
      expect(yield* ref.ask(new Increment({ by: 1 }))).toBe(1)
      yield* Scope.close(kindScope, Exit.void)
      expect(probe.stoppingReasons).toEqual([new Termination.Shutdown()])
      expect(system.isAlive(ref.address)).toBe(false)
      const after = yield* Effect.either(ref.tell(new Increment({ by: 1 })))
      expect(after).toEqual(Either.left(new ActorNotFound({ address: `${Kind.kind}/a` })))
      expect(probe.count("build")).toBe(1)
    }))
})

describe("shutdown: the deadline", () => {
  it.effect("past shutdownDeadline a blocked actor is interrupted; queued tells become dead letters, queued asks fail with ActorStopped", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("stuck")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }), {
        shutdownDeadline: "200 millis",
        onDeadLetter: sink.onDeadLetter
      })
      const ref = system.ref(Kind, "a")
      yield* ref.tell(new Hold()) // never released
      yield* waitFor("the handler to block", () => probe.entered === 1)
      yield* ref.tell(new Increment({ by: 1 }))
      yield* ref.tell(new Increment({ by: 2 }))
      const queuedAsk = yield* Effect.fork(ref.ask(new Get(), { timeout: "1 hour" }))
      yield* waitForEffect("three queued messages", Effect.map(queuedFor(system, Kind.kind), (n) => n === 3))
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))

      const shutdown = yield* forkStarted(system.shutdown)
      yield* TestClock.adjust("199 millis")
      yield* settle()
      expect(yield* isDone(shutdown)).toBe(false)
      yield* TestClock.adjust("1 millis")
      yield* awaitFiber("shutdown to complete at the deadline", shutdown)

      expect(yield* joinWithin("terminated", terminated)).toEqual(new Termination.Shutdown())
      expect(system.isAlive(ref.address)).toBe(false)
      expect(probe.increments).toEqual([])
      expect(sink.letters.map((letter) => [letter.address, letter.message, letter.reason])).toEqual([
        [`${Kind.kind}/a`, new Increment({ by: 1 }), "shutdown"],
        [`${Kind.kind}/a`, new Increment({ by: 2 }), "shutdown"]
      ])
      const asked = yield* awaitFiber("the queued ask to fail", queuedAsk, 200)
      expect(failureOf(asked)).toEqual(new ActorStopped({ address: `${Kind.kind}/a`, reason: "shutdown" }))
    }).pipe(Effect.scoped))

  it.effect("the ask being handled when the deadline passes fails at once (ActorStopped or interruption), not at its own timeout", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("stuck-ask")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }), {
        shutdownDeadline: "200 millis"
      })
      const ref = system.ref(Kind, "a")
      const blocked = yield* Effect.fork(ref.ask(new Hold(), { timeout: "1 hour" }))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      const shutdown = yield* forkStarted(system.shutdown)
      yield* TestClock.adjust("200 millis")
      yield* awaitFiber("shutdown to complete at the deadline", shutdown)
      // The ask's own timeout is an hour away on the TestClock: only the runtime can complete it now.
      const polled = yield* Effect.gen(function*() {
        for (let i = 0; i < 200; i++) {
          const exit = yield* Fiber.poll(blocked)
          if (Option.isSome(exit)) return exit
          yield* Effect.yieldNow()
        }
        yield* settle()
        return yield* Fiber.poll(blocked)
      })
      expect(Option.isSome(polled)).toBe(true)
      if (Option.isSome(polled)) {
        const exit = polled.value
        const failure = failureOf(exit)
        const interrupted = Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
        expect(interrupted || failure instanceof ActorStopped).toBe(true)
        if (failure instanceof ActorStopped) expect(failure.reason).toBe("shutdown")
      }
    }).pipe(Effect.scoped))
})
