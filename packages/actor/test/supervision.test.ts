/**
 * Property 5: supervision. Defects restart the actor with fresh state (the
 * asker gets ActorCrashed), queued messages survive, backoff is exponential
 * with jitter, restarts are limited within a window, `stop` and `escalate`
 * strategies, parents and children, start-up crashes, and the system survives.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, Random, Schema, TestClock } from "effect"
import { Actor, ActorCrashed, ActorStopped, Supervision, Termination } from "@weft/actor"
import type { ActorDefinition, Behavior, Terminated } from "@weft/actor"
import {
  awaitFiber,
  Crash,
  deadLetterSink,
  failureOf,
  forkStarted,
  Get,
  Hold,
  Increment,
  makeGate,
  makeKind,
  makeProbe,
  type Probe,
  probeBehavior,
  probeBuild,
  probeDefinition,
  probeMessages,
  type ProbeMsg,
  queuedFor,
  settle,
  startSystem,
  uniqueKind,
  waitFor,
  waitForEffect,
  watcherDefinition,
  watcherLayer,
  WatchTarget,
  joinWithin
} from "./helpers.ts"

const noBackoff = Supervision.restart({ maxRestarts: 100, backoff: { base: "0 millis", max: "0 millis" } })

// A parent kind: the probe's messages plus `SpawnChild`, which spawns a child with `ctx.spawn`.
class SpawnChild extends Schema.TaggedRequest<SpawnChild>()("SpawnChild", {
  payload: { key: Schema.String },
  success: Schema.Void,
  failure: Schema.Never
}) {}
type ParentMsg = ProbeMsg | SpawnChild

const parentDefinition = (): ActorDefinition<string, ParentMsg> =>
  makeKind(uniqueKind("parent"), [...probeMessages, SpawnChild])

const parentLayer = (
  definition: ActorDefinition<string, ParentMsg>,
  probe: Probe,
  child: ActorDefinition<string, ProbeMsg>,
  supervision: Supervision.Strategy
) =>
  Actor.toLayer(
    definition,
    (ctx) =>
      Effect.map(probeBehavior(probe, ctx), (behavior): Behavior<ParentMsg, never> => ({
        ...behavior,
        receive: {
          ...behavior.receive,
          SpawnChild: ({ key }) => Effect.orDie(Effect.asVoid(ctx.spawn(child, key)))
        }
      })),
    { supervision }
  )

const defectText = (cause: Cause.Cause<unknown>): string => Cause.pretty(cause)

describe("supervision: restart", () => {
  for (const how of ["die", "throw-in-effect", "throw-sync"] as const) {
    it.scoped(`a handler defect (${how}) restarts the actor with fresh state and the asker gets ActorCrashed`, () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const Kind = probeDefinition("crashy")
        const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }))
        const ref = yield* system.spawn(Kind, "w")
        expect(yield* ref.ask(new Increment({ by: 5 }))).toBe(5)
        // Forked and awaited with a bound, so a lost reply fails the test instead of hanging it.
        const asked = yield* Effect.fork(ref.ask(new Crash({ how }), { timeout: "1 hour" }))
        const exit = yield* awaitFiber("the crashing ask's reply", asked)
        const error = failureOf(exit)
        expect(error).toBeInstanceOf(ActorCrashed)
        if (error instanceof ActorCrashed) {
          expect(error.address).toBe(`${Kind.kind}/w`)
          expect(error.defect).toContain("boom")
        }
        // Fresh state: the counter restarts from zero.
        expect(yield* ref.ask(new Increment({ by: 1 }))).toBe(1)
        expect(probe.count("build")).toBe(2)
        expect(probe.count("restarted")).toBe(1)
        expect(system.isAlive(ref.address)).toBe(true)
      }))
  }

  it.scoped("messages queued behind the crashing one are handled by the new instance", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("crashy")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }))
      const ref = yield* system.spawn(Kind, "w")
      yield* ref.tell(new Increment({ by: 100 }))
      const held = yield* Effect.fork(ref.ask(new Hold()))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      yield* ref.tell(new Crash({ how: "die" }))
      yield* ref.tell(new Increment({ by: 1 }))
      yield* ref.tell(new Increment({ by: 2 }))
      const total = yield* Effect.fork(ref.ask(new Get()))
      yield* probe.gate.open
      yield* joinWithin("held", held)
      // 3, not 103: the queued increments reached the fresh instance.
      expect(yield* joinWithin("total", total)).toBe(3)
      expect(probe.increments).toEqual([100, 1, 2])
      expect(probe.count("build")).toBe(2)
    }))

  it.effect("restarts back off exponentially: the n-th restart waits floor(random * min(max, base * 2^(n-1)))", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("backoff")
      const strategy = Supervision.restart({
        maxRestarts: 10,
        within: "1 hour",
        backoff: { base: "1 second", max: "3 seconds" }
      })
      // The actors' Random is fixed at 0.5 (set around the layer build, which captures the runtime).
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: strategy })).pipe(
        Effect.withRandom(Random.fixed([0.5]))
      )
      const ref = yield* system.spawn(Kind, "w")
      yield* waitFor("the first start", () => probe.count("started") === 1)
      // Ceilings 1000, 2000, 3000 (capped), 3000; half of each.
      const delays = [500, 1000, 1500, 1500]
      for (const [index, delay] of delays.entries()) {
        const builds = index + 1
        yield* ref.tell(new Crash({ how: "die" }))
        yield* waitFor(`crash #${builds} to end the instance`, () => probe.count("finalizer") === builds)
        yield* settle()
        expect(probe.count("build")).toBe(builds)
        yield* TestClock.adjust(delay - 1)
        yield* settle()
        expect(probe.count("build")).toBe(builds) // not before the backoff has elapsed
        yield* TestClock.adjust(1)
        yield* waitFor(`restart #${builds} once its backoff elapsed`, () => probe.count("started") === builds + 1)
      }
      expect(yield* ref.ask(new Get())).toBe(0)
    }).pipe(Effect.scoped))

  it.effect("with random jitter every restart has happened once the clock passes its ceiling", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("jitter")
      const strategy = Supervision.restart({
        maxRestarts: 10,
        within: "1 hour",
        backoff: { base: "200 millis", max: "800 millis" }
      })
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: strategy }))
      const ref = yield* system.spawn(Kind, "w")
      const ceilings = [200, 400, 800, 800, 800]
      for (const [index, ceiling] of ceilings.entries()) {
        expect(Supervision.backoffCeiling(strategy.backoff, index + 1)).toBe(ceiling)
        yield* ref.tell(new Crash({ how: "die" }))
        yield* waitFor(`crash #${index + 1}`, () => probe.count("finalizer") === index + 1)
        yield* settle()
        yield* TestClock.adjust(ceiling)
        yield* waitFor(`restart #${index + 1} within its ceiling`, () => probe.count("started") === index + 2)
      }
    }).pipe(Effect.scoped))

  it.scoped("after maxRestarts within the window the next crash stops the actor with RestartLimit and watchers are told", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const notices: Array<Terminated> = []
      const Kind = probeDefinition("limited")
      const Watcher = watcherDefinition()
      const strategy = Supervision.restart({ maxRestarts: 2, within: "1 minute", backoff: { base: "0 millis" } })
      const system = yield* startSystem(
        Layer.mergeAll(Actor.toLayer(Kind, probeBuild(probe), { supervision: strategy }), watcherLayer(Watcher, notices))
      )
      const ref = yield* system.spawn(Kind, "w")
      const watcher = yield* system.spawn(Watcher, "w1")
      yield* watcher.ask(new WatchTarget({ target: ref.address }))
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      for (let crash = 1; crash <= 3; crash++) {
        const exit = yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
        expect(failureOf(exit)).toBeInstanceOf(ActorCrashed)
      }
      const reason = yield* joinWithin("terminated", terminated)
      expect(reason._tag).toBe("RestartLimit")
      if (reason._tag === "RestartLimit") {
        expect(reason.restarts).toBe(2)
        expect(reason.defect).toContain("die boom")
      }
      expect(probe.count("build")).toBe(3)
      expect(system.isAlive(ref.address)).toBe(false)
      yield* waitFor("the watcher's notice", () => notices.length === 1)
      expect(notices[0]?.address).toBe(`${Kind.kind}/w`)
      expect(notices[0]?.reason._tag).toBe("RestartLimit")
    }))

  it.effect("the restart window slides: crashes older than `within` do not count", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("window")
      const strategy = Supervision.restart({ maxRestarts: 1, within: "1 minute", backoff: { base: "0 millis" } })
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: strategy }))
      const ref = yield* system.spawn(Kind, "w")
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
      yield* TestClock.adjust("61 seconds")
      yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
      // One restart in the last minute: still allowed, the actor lives.
      expect(yield* ref.ask(new Increment({ by: 1 }))).toBe(1)
      expect(probe.count("build")).toBe(3)
      // A second crash within the same minute passes the limit.
      yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
      const reason = yield* joinWithin("terminated", terminated)
      expect(reason._tag).toBe("RestartLimit")
    }).pipe(Effect.scoped))
})

describe("supervision: stop", () => {
  it.scoped("Supervision.stop stops on the first crash with reason Crashed; what was queued is not handled", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("fragile")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: Supervision.stop }), {
        onDeadLetter: sink.onDeadLetter
      })
      const ref = yield* system.spawn(Kind, "w")
      yield* ref.tell(new Increment({ by: 5 }))
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      const held = yield* Effect.fork(ref.ask(new Hold()))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      // Forked asks enqueue when their fiber runs: wait for each before sending the next.
      const queued = (n: number) => waitForEffect(`${n} queued`, Effect.map(queuedFor(system, Kind.kind), (d) => d === n))
      const crashed = yield* Effect.fork(ref.ask(new Crash({ how: "die" })))
      yield* queued(1)
      yield* ref.tell(new Increment({ by: 1 }))
      const queuedAsk = yield* Effect.fork(ref.ask(new Get()))
      yield* queued(3)
      yield* probe.gate.open
      yield* joinWithin("held", held)
      expect(failureOf(yield* awaitFiber("crashed", crashed))).toBeInstanceOf(ActorCrashed)
      const reason = yield* joinWithin("terminated", terminated)
      expect(reason._tag).toBe("Crashed")
      if (reason._tag === "Crashed") expect(reason.defect).toContain("die boom")
      expect(failureOf(yield* awaitFiber("queuedAsk", queuedAsk))).toEqual(
        new ActorStopped({ address: `${Kind.kind}/w`, reason: "crashed" })
      )
      expect(probe.increments).toEqual([5])
      expect(sink.letters.map((letter) => letter.reason)).toEqual(["crashed"])
      expect(probe.count("build")).toBe(1)
      expect(probe.stoppingReasons.map((r) => r._tag)).toEqual(["Crashed"])
    }))

  it.scoped("a stop requested while a handler runs still stops the actor when that handler crashes", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("stop-then-crash")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }))
      const ref = yield* system.spawn(Kind, "w")
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      const crashing = yield* Effect.fork(ref.ask(new Crash({ how: "die-after-gate" })))
      yield* waitFor("the handler to block", () => probe.entered === 1)
      const stopping = yield* forkStarted(ref.stop)
      yield* probe.gate.open
      expect(failureOf(yield* awaitFiber("crashing", crashing))).toBeInstanceOf(ActorCrashed)
      // The stop was requested first: the actor must end, not come back as a restarted instance.
      yield* awaitFiber("ref.stop to complete", stopping, 500)
      const reason = yield* awaitFiber("the termination", terminated, 100)
      expect(reason._tag).toBe("Success")
      expect(probe.count("build")).toBe(1)
      // The address is free again and works.
      const again = yield* system.spawn(Kind, "w")
      const answer = yield* Effect.fork(again.ask(new Increment({ by: 1 }), { timeout: "1 hour" }))
      const answered = yield* awaitFiber("an answer from the re-spawned actor", answer, 500)
      expect(answered._tag).toBe("Success")
    }))
})

describe("supervision: escalation and children", () => {
  it.scoped("a child with the escalate strategy crashes its parent, whose restart gives it fresh state", () =>
    Effect.gen(function*() {
      const parentProbe = yield* makeProbe
      const childProbe = yield* makeProbe
      const Parent = parentDefinition()
      const Child = probeDefinition("child")
      const system = yield* startSystem(
        Layer.mergeAll(
          parentLayer(Parent, parentProbe, Child, noBackoff),
          Actor.toLayer(Child, probeBuild(childProbe), { supervision: Supervision.escalate })
        )
      )
      const parent = yield* system.spawn(Parent, "p")
      yield* parent.ask(new SpawnChild({ key: "c" }))
      yield* parent.ask(new Increment({ by: 7 }))
      const child = system.ref(Child, "c")
      const childDone = yield* forkStarted(system.awaitTermination(child.address))
      expect(failureOf(yield* Effect.exit(child.ask(new Crash({ how: "die" }))))).toBeInstanceOf(ActorCrashed)
      expect((yield* joinWithin("childDone", childDone))._tag).toBe("Crashed")
      yield* waitFor("the parent to restart", () => parentProbe.count("started") === 2)
      expect(yield* parent.ask(new Get())).toBe(0)
      expect(parentProbe.restartCauses.map(defectText).join("\n")).toContain("die boom")
      expect(childProbe.count("build")).toBe(1)
    }))

  it.scoped("a child restarting with onLimit escalate crashes its parent once past the limit", () =>
    Effect.gen(function*() {
      const parentProbe = yield* makeProbe
      const childProbe = yield* makeProbe
      const Parent = parentDefinition()
      const Child = probeDefinition("child")
      const childStrategy = Supervision.restart({ maxRestarts: 1, backoff: { base: "0 millis" }, onLimit: "escalate" })
      const system = yield* startSystem(
        Layer.mergeAll(
          parentLayer(Parent, parentProbe, Child, noBackoff),
          Actor.toLayer(Child, probeBuild(childProbe), { supervision: childStrategy })
        )
      )
      const parent = yield* system.spawn(Parent, "p")
      yield* parent.ask(new SpawnChild({ key: "c" }))
      yield* parent.ask(new Increment({ by: 7 }))
      const child = system.ref(Child, "c")
      const childDone = yield* forkStarted(system.awaitTermination(child.address))
      yield* Effect.exit(child.ask(new Crash({ how: "die" })))
      expect(childProbe.count("build")).toBe(2)
      expect(parentProbe.count("started")).toBe(1) // one restart of the child is within its limit
      yield* Effect.exit(child.ask(new Crash({ how: "die" })))
      expect((yield* joinWithin("childDone", childDone))._tag).toBe("RestartLimit")
      yield* waitFor("the parent to restart", () => parentProbe.count("started") === 2)
      expect(yield* parent.ask(new Get())).toBe(0)
    }))

  it.scoped("the parent's own strategy applies to an escalation: with Supervision.stop it stops with Crashed", () =>
    Effect.gen(function*() {
      const parentProbe = yield* makeProbe
      const childProbe = yield* makeProbe
      const Parent = parentDefinition()
      const Child = probeDefinition("child")
      const system = yield* startSystem(
        Layer.mergeAll(
          parentLayer(Parent, parentProbe, Child, Supervision.stop),
          Actor.toLayer(Child, probeBuild(childProbe), { supervision: Supervision.escalate })
        )
      )
      const parent = yield* system.spawn(Parent, "p")
      yield* parent.ask(new SpawnChild({ key: "c" }))
      const parentDone = yield* forkStarted(system.awaitTermination(parent.address))
      yield* Effect.exit(system.ref(Child, "c").ask(new Crash({ how: "die" })))
      const reason = yield* joinWithin("parentDone", parentDone)
      expect(reason._tag).toBe("Crashed")
      expect(system.isAlive(parent.address)).toBe(false)
      expect(parentProbe.count("build")).toBe(1)
    }))

  it.scoped("stopping a parent stops its children with reason ParentStopped", () =>
    Effect.gen(function*() {
      const parentProbe = yield* makeProbe
      const childProbe = yield* makeProbe
      const Parent = parentDefinition()
      const Child = probeDefinition("child")
      const system = yield* startSystem(
        Layer.mergeAll(
          parentLayer(Parent, parentProbe, Child, noBackoff),
          Actor.toLayer(Child, probeBuild(childProbe))
        )
      )
      const parent = yield* system.spawn(Parent, "p")
      yield* parent.ask(new SpawnChild({ key: "c1" }))
      yield* parent.ask(new SpawnChild({ key: "c2" }))
      const c1 = system.ref(Child, "c1")
      const c2 = system.ref(Child, "c2")
      expect(yield* c1.ask(new Increment({ by: 1 }))).toBe(1)
      const done1 = yield* forkStarted(system.awaitTermination(c1.address))
      const done2 = yield* forkStarted(system.awaitTermination(c2.address))
      const parentDone = yield* forkStarted(system.awaitTermination(parent.address))
      yield* parent.stop
      expect(yield* joinWithin("parentDone", parentDone)).toEqual(new Termination.Stopped())
      expect(system.isAlive(c1.address)).toBe(false)
      expect(system.isAlive(c2.address)).toBe(false)
      expect(yield* joinWithin("done1", done1)).toEqual(new Termination.ParentStopped())
      expect(yield* joinWithin("done2", done2)).toEqual(new Termination.ParentStopped())
      expect(childProbe.stoppingReasons.map((r) => r._tag)).toEqual(["ParentStopped", "ParentStopped"])
    }))

  it.scoped("a parent's restart stops its children with reason ParentStopped", () =>
    Effect.gen(function*() {
      const parentProbe = yield* makeProbe
      const childProbe = yield* makeProbe
      const Parent = parentDefinition()
      const Child = probeDefinition("child")
      const system = yield* startSystem(
        Layer.mergeAll(
          parentLayer(Parent, parentProbe, Child, noBackoff),
          Actor.toLayer(Child, probeBuild(childProbe))
        )
      )
      const parent = yield* system.spawn(Parent, "p")
      yield* parent.ask(new SpawnChild({ key: "c" }))
      const child = system.ref(Child, "c")
      const childDone = yield* forkStarted(system.awaitTermination(child.address))
      yield* Effect.exit(parent.ask(new Crash({ how: "die" })))
      expect(yield* joinWithin("childDone", childDone)).toEqual(new Termination.ParentStopped())
      expect(system.isAlive(parent.address)).toBe(true)
      // The restarted parent can spawn the child again.
      yield* parent.ask(new SpawnChild({ key: "c" }))
      expect(yield* child.ask(new Increment({ by: 2 }))).toBe(2)
    }))
})

describe("supervision: start-up crashes and isolation", () => {
  it.scoped("a crash in build is supervised: the actor restarts and handles the message that activated it", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("bad-build")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe, { failBuild: (n) => n === 1 }), {
          activation: "onMessage",
          supervision: noBackoff
        })
      )
      const ref = system.ref(Kind, "w")
      expect(yield* ref.ask(new Increment({ by: 4 }))).toBe(4)
      expect(probe.count("build")).toBe(2)
      expect(probe.restartCauses.map(defectText).join("\n")).toContain("build boom #1")
    }))

  it.scoped("a build that always crashes under Supervision.stop ends with Crashed and fails the queued ask", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const buildGate = yield* makeGate
      const Kind = probeDefinition("bad-build")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe, { failBuild: () => true, buildGate }), { supervision: Supervision.stop })
      )
      const ref = yield* system.spawn(Kind, "w")
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      const asked = yield* Effect.fork(ref.ask(new Get()))
      yield* settle()
      yield* buildGate.open
      const reason = yield* joinWithin("terminated", terminated)
      expect(reason._tag).toBe("Crashed")
      if (reason._tag === "Crashed") expect(reason.defect).toContain("build boom #1")
      expect(failureOf(yield* awaitFiber("asked", asked))).toEqual(new ActorStopped({ address: `${Kind.kind}/w`, reason: "crashed" }))
    }))

  it.scoped("a crash in the started hook is supervised like a handler crash", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("bad-start")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe, { failStarted: (n) => n === 1 }), { supervision: noBackoff })
      )
      const ref = yield* system.spawn(Kind, "w")
      expect(yield* ref.ask(new Increment({ by: 3 }))).toBe(3)
      expect(probe.events).toEqual(["build", "started", "finalizer", "build", "restarted", "started"])
    }))

  it.scoped("defects never take the system down: other actors keep working and the kind can be spawned again", () =>
    Effect.gen(function*() {
      const fragileProbe = yield* makeProbe
      const sturdyProbe = yield* makeProbe
      const Fragile = probeDefinition("fragile")
      const Sturdy = probeDefinition("sturdy")
      const system = yield* startSystem(
        Layer.mergeAll(
          Actor.toLayer(Fragile, probeBuild(fragileProbe), { supervision: Supervision.stop }),
          Actor.toLayer(Sturdy, probeBuild(sturdyProbe), { activation: "onMessage" })
        )
      )
      const sturdy = system.ref(Sturdy, "s")
      yield* sturdy.ask(new Increment({ by: 1 }))
      for (const [i, how] of (["die", "throw-in-effect", "throw-sync"] as const).entries()) {
        const fragile = yield* system.spawn(Fragile, `f${i}`)
        const terminated = yield* forkStarted(system.awaitTermination(fragile.address))
        yield* fragile.tell(new Crash({ how }))
        expect((yield* awaitFiber("the fragile actor to stop", terminated))._tag).toBe("Success")
        expect(yield* sturdy.ask(new Increment({ by: 1 }))).toBe(i + 2)
      }
      const again = yield* system.spawn(Fragile, "f0")
      expect(yield* again.ask(new Increment({ by: 9 }))).toBe(9)
      expect(sturdyProbe.count("build")).toBe(1)
    }))
})

describe("supervision: stopping during a restart backoff", () => {
  it.scoped("a stop requested while a restart backs off ends the wait: the actor stops without the clock moving", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("backoff-stop")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), {
          supervision: Supervision.restart({ maxRestarts: 5, backoff: { base: "1 hour", max: "1 hour" } })
        })
      )
      const ref = yield* system.spawn(Kind, "a")
      yield* Effect.either(ref.ask(new Crash({ how: "die" })))
      // The restart now waits up to an hour of TestClock time, which never passes in this test.
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      const stopping = yield* forkStarted(ref.stop)
      const reason = yield* joinWithin("the stop, without advancing the clock", terminated)
      yield* joinWithin("ref.stop", stopping)
      expect(reason._tag).toBe("Stopped")
      expect(probe.count("build")).toBe(1)
    }).pipe(Effect.provideService(Random.Random, Random.make(0.9))))

  it.scoped("awaitTermination on an actor that is still finishing its stop waits for the real reason", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("finishing")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe)))
      const ref = yield* system.spawn(Kind, "a")
      yield* ref.tell(new Hold())
      yield* waitFor("the handler to block", () => probe.entered === 1)
      const stopping = yield* forkStarted(ref.stop)
      // The address is already released, but the activation is still handling Hold.
      expect(system.isAlive(ref.address)).toBe(false)
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      yield* probe.gate.open
      expect((yield* joinWithin("terminated", terminated))._tag).toBe("Stopped")
      yield* joinWithin("ref.stop", stopping)
    }))
})
