/**
 * Property 9: the runtime's Effect metrics (ActorMetrics), read per kind
 * (every test uses kind names of its own, the registry is global).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, TestClock } from "effect"
import { Actor, ActorMetrics, Supervision } from "@weft/actor"
import {
  Crash,
  Get,
  Hold,
  Increment,
  makeProbe,
  Note,
  probeBuild,
  probeDefinition,
  settle,
  startSystem,
  waitFor,
  waitForEffect,
  Withdraw,
  joinWithin
} from "./helpers.ts"

const noBackoff = Supervision.restart({ maxRestarts: 100, backoff: { base: "0 millis", max: "0 millis" } })

const alive = (kind: string): Effect.Effect<number> =>
  Effect.map(Metric.value(ActorMetrics.actorsAlive.pipe(Metric.tagged("kind", kind))), (state) => state.value)

const depth = (kind: string): Effect.Effect<number> =>
  Effect.map(Metric.value(ActorMetrics.mailboxDepth.pipe(Metric.tagged("kind", kind))), (state) => state.value)

const handled = (kind: string): Effect.Effect<number> =>
  Effect.map(Metric.value(ActorMetrics.messagesHandled.pipe(Metric.tagged("kind", kind))), (state) => state.count)

const crashes = (kind: string): Effect.Effect<number> =>
  Effect.map(Metric.value(ActorMetrics.crashes.pipe(Metric.tagged("kind", kind))), (state) => state.count)

const restarts = (kind: string): Effect.Effect<number> =>
  Effect.map(Metric.value(ActorMetrics.restarts.pipe(Metric.tagged("kind", kind))), (state) => state.count)

const stops = (kind: string, reason: string): Effect.Effect<number> =>
  Effect.map(
    Metric.value(ActorMetrics.stops.pipe(Metric.tagged("kind", kind), Metric.tagged("reason", reason))),
    (state) => state.count
  )

const deadLetters = (kind: string, reason: string): Effect.Effect<number> =>
  Effect.map(
    Metric.value(ActorMetrics.deadLetters.pipe(Metric.tagged("kind", kind), Metric.tagged("reason", reason))),
    (state) => state.count
  )

describe("metrics", () => {
  it.scoped("weft_actors_alive goes up on activation and down on termination, by kind; restarts do not change it", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const other = yield* makeProbe
      const Kind = probeDefinition("m-alive")
      const Other = probeDefinition("m-alive-other")
      const system = yield* startSystem(
        Layer.mergeAll(
          Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }),
          Actor.toLayer(Other, probeBuild(other))
        )
      )
      expect(yield* alive(Kind.kind)).toBe(0)
      const a = yield* system.spawn(Kind, "a")
      const b = yield* system.spawn(Kind, "b")
      yield* system.spawn(Other, "x")
      yield* a.ask(new Get())
      yield* b.ask(new Get())
      expect(yield* alive(Kind.kind)).toBe(2)
      expect(yield* alive(Other.kind)).toBe(1)
      yield* Effect.exit(a.ask(new Crash({ how: "die" })))
      yield* a.ask(new Get())
      expect(yield* alive(Kind.kind)).toBe(2)
      yield* a.stop
      expect(yield* alive(Kind.kind)).toBe(1)
      yield* b.stop
      expect(yield* alive(Kind.kind)).toBe(0)
      expect(yield* alive(Other.kind)).toBe(1)
    }))

  it.scoped("weft_actor_messages_total counts every handled message: replied, failed and crashed", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("m-handled")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }))
      const ref = yield* system.spawn(Kind, "a")
      yield* ref.tell(new Increment({ by: 1 }))
      yield* ref.tell(new Increment({ by: 1 }))
      yield* ref.tell(new Note({ id: 1, important: false }))
      yield* ref.ask(new Increment({ by: 1 }))
      yield* Effect.either(ref.ask(new Withdraw({ amount: 100 }))) // declared failure
      yield* Effect.exit(ref.ask(new Crash({ how: "die" }))) // crash
      yield* ref.ask(new Get())
      yield* waitForEffect("7 handled", Effect.map(handled(Kind.kind), (n) => n >= 7))
      yield* settle()
      expect(yield* handled(Kind.kind)).toBe(7)
    }))

  it.scoped("weft_actor_crashes_total and weft_actor_restarts_total count crashes (handlers and start-up) and restarts", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const badBuild = yield* makeProbe
      const fragile = yield* makeProbe
      const Kind = probeDefinition("m-crashy")
      const BadBuild = probeDefinition("m-bad-build")
      const Fragile = probeDefinition("m-fragile")
      const system = yield* startSystem(
        Layer.mergeAll(
          Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }),
          Actor.toLayer(BadBuild, probeBuild(badBuild, { failBuild: (n) => n === 1 }), { supervision: noBackoff }),
          Actor.toLayer(Fragile, probeBuild(fragile), { supervision: Supervision.stop })
        )
      )
      const ref = yield* system.spawn(Kind, "a")
      yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
      yield* Effect.exit(ref.ask(new Crash({ how: "throw-in-effect" })))
      yield* ref.ask(new Get())
      expect(yield* crashes(Kind.kind)).toBe(2)
      expect(yield* restarts(Kind.kind)).toBe(2)

      const bad = yield* system.spawn(BadBuild, "a")
      yield* bad.ask(new Get())
      expect(yield* crashes(BadBuild.kind)).toBe(1)
      expect(yield* restarts(BadBuild.kind)).toBe(1)

      const f = yield* system.spawn(Fragile, "a")
      yield* Effect.exit(f.ask(new Crash({ how: "die" })))
      yield* waitFor("the fragile actor to stop", () => !system.isAlive(f.address))
      expect(yield* crashes(Fragile.kind)).toBe(1)
      expect(yield* restarts(Fragile.kind)).toBe(0)
    }))

  it.effect("weft_actor_stops_total counts terminations by reason", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("m-stops")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), { passivateAfter: "1 second", supervision: Supervision.stop })
      )
      for (const key of ["a", "b", "c"]) yield* system.ref(Kind, key).ask(new Get())
      yield* system.ref(Kind, "a").stop
      expect(yield* stops(Kind.kind, "stopped")).toBe(1)
      yield* Effect.exit(system.ref(Kind, "b").ask(new Crash({ how: "die" })))
      yield* waitForEffect("the crash stop", Effect.map(stops(Kind.kind, "crashed"), (n) => n === 1))
      yield* TestClock.adjust("3 seconds")
      yield* waitForEffect("passivation of c", Effect.map(stops(Kind.kind, "passivated"), (n) => n === 1))
      yield* system.ref(Kind, "d").ask(new Get())
      yield* system.ref(Kind, "e").ask(new Get())
      yield* system.shutdown
      expect(yield* stops(Kind.kind, "shutdown")).toBe(2)
      expect(yield* stops(Kind.kind, "stopped")).toBe(1)
      expect(yield* stops(Kind.kind, "crashed")).toBe(1)
      expect(yield* stops(Kind.kind, "passivated")).toBe(1)
      expect(yield* alive(Kind.kind)).toBe(0)
    }).pipe(Effect.scoped))

  it.effect("weft_actor_mailbox_depth is sampled by the housekeeping tick", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("m-depth")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }), {
        housekeepingInterval: "1 second"
      })
      const a = system.ref(Kind, "a")
      yield* a.tell(new Hold())
      yield* waitFor("the handler to block", () => probe.entered === 1)
      for (let i = 0; i < 3; i++) yield* a.tell(new Increment({ by: 1 }))
      yield* TestClock.adjust("1 second")
      yield* waitForEffect("the sampled depth", Effect.map(depth(Kind.kind), (n) => n === 3))
      yield* probe.gate.open
      expect(yield* a.ask(new Get())).toBe(3)
      yield* TestClock.adjust("1 second")
      yield* waitForEffect("the depth back to zero", Effect.map(depth(Kind.kind), (n) => n === 0))
    }).pipe(Effect.scoped))

  it.scoped("weft_actor_dead_letters_total counts dropped and undelivered messages by reason", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("m-dead")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage", mailbox: { capacity: 2, overflow: "dropOldest" } })
      )
      const a = system.ref(Kind, "a")
      yield* a.tell(new Hold())
      yield* waitFor("the handler to block", () => probe.entered === 1)
      for (let id = 1; id <= 4; id++) yield* a.tell(new Note({ id, important: false }))
      expect(yield* deadLetters(Kind.kind, "dropped")).toBe(2)
      // Stopping with messages queued: they are dead letters with the reason's label.
      const stopping = yield* Effect.fork(a.stop)
      yield* settle()
      yield* probe.gate.open
      yield* joinWithin("stopping", stopping)
      yield* waitForEffect("the undelivered letters", Effect.map(deadLetters(Kind.kind, "stopped"), (n) => n === 2))
      expect(probe.notes).toEqual([])
    }))
})
