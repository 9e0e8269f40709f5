/**
 * Property 6: lifecycle hooks (`started`, `restarted`, `stopping`), the
 * activation scope's finalizers, `ctx.watch` / `ctx.unwatch` and
 * `system.awaitTermination`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, TestClock } from "effect"
import { Actor, ActorAddress, Supervision, Terminated, Termination } from "@weft/actor"
import {
  Crash,
  Get,
  Increment,
  isDone,
  makeProbe,
  probeBuild,
  probeDefinition,
  settle,
  StopSelf,
  forkStarted,
  startSystem,
  UnwatchTarget,
  waitFor,
  watcherDefinition,
  watcherLayer,
  WatchTarget,
  joinWithin
} from "./helpers.ts"

const noBackoff = Supervision.restart({ maxRestarts: 100, backoff: { base: "0 millis", max: "0 millis" } })

describe("lifecycle hooks", () => {
  it.scoped("started runs on every activation; restarted runs only on restarts, with the crash's cause, before started", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("hooks")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }))
      const ref = yield* system.spawn(Kind, "a")
      yield* ref.ask(new Get())
      expect(probe.events).toEqual(["build", "started"])
      yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
      yield* ref.ask(new Get())
      expect(probe.events).toEqual(["build", "started", "finalizer", "build", "restarted", "started"])
      expect(probe.restartCauses).toHaveLength(1)
      expect(Cause.pretty(probe.restartCauses[0] ?? Cause.empty)).toContain("die boom")
      // A new activation after a stop is not a restart.
      yield* ref.stop
      yield* system.spawn(Kind, "a")
      yield* ref.ask(new Get())
      expect(probe.count("started")).toBe(3)
      expect(probe.count("restarted")).toBe(1)
    }))

  it.scoped("stopping runs once, with reason Stopped, on stop and never on restart; finalizers run after it", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("hooks")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }))
      const ref = yield* system.spawn(Kind, "a")
      yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
      yield* Effect.exit(ref.ask(new Crash({ how: "throw-in-effect" })))
      yield* ref.ask(new Get())
      expect(probe.stoppingReasons).toEqual([])
      yield* ref.stop
      expect(probe.stoppingReasons).toEqual([new Termination.Stopped()])
      expect(probe.events.slice(-2)).toEqual(["stopping:Stopped", "finalizer"])
      yield* settle()
      expect(probe.count("stopping:Stopped")).toBe(1)
    }))

  it.scoped("the activation scope's finalizers run on each restart and on stop", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("finalizers")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }))
      const ref = yield* system.spawn(Kind, "a")
      for (let i = 1; i <= 3; i++) {
        yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
        yield* ref.ask(new Get())
        expect(probe.count("finalizer")).toBe(i)
      }
      yield* ref.stop
      expect(probe.count("finalizer")).toBe(4)
      expect(probe.count("build")).toBe(4)
    }))

  it.scoped("ctx.stop stops the actor after the current message with reason Stopped", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("self-stop")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe)))
      const ref = yield* system.spawn(Kind, "a")
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      yield* ref.ask(new StopSelf())
      expect(yield* joinWithin("terminated", terminated)).toEqual(new Termination.Stopped())
      expect(probe.stoppingReasons).toEqual([new Termination.Stopped()])
      expect(system.isAlive(ref.address)).toBe(false)
    }))

  it.effect("stopping runs with reason Passivated when an idle actor passivates", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("passivating")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { passivateAfter: "1 second" }))
      const ref = system.ref(Kind, "a")
      yield* ref.ask(new Increment({ by: 1 }))
      yield* TestClock.adjust("3 seconds")
      yield* waitFor("passivation", () => probe.stoppingReasons.length === 1)
      expect(probe.stoppingReasons).toEqual([new Termination.Passivated()])
      expect(probe.events.slice(-2)).toEqual(["stopping:Passivated", "finalizer"])
    }).pipe(Effect.scoped))

  it.effect("stopping runs with reason Shutdown when the system shuts down", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("shutdown-hook")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }))
      yield* system.ref(Kind, "a").ask(new Get())
      yield* system.ref(Kind, "b").ask(new Get())
      yield* system.shutdown
      expect(probe.stoppingReasons).toEqual([new Termination.Shutdown(), new Termination.Shutdown()])
      expect(probe.count("finalizer")).toBe(2)
    }).pipe(Effect.scoped))
})

describe("watch and awaitTermination", () => {
  it.scoped("a watcher receives its own mapped message carrying the Terminated notice and the reason", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const notices: Array<Terminated> = []
      const Kind = probeDefinition("watched")
      const Watcher = watcherDefinition()
      const system = yield* startSystem(
        Layer.mergeAll(
          Actor.toLayer(Kind, probeBuild(probe), { supervision: Supervision.stop }),
          watcherLayer(Watcher, notices)
        )
      )
      const watcher = yield* system.spawn(Watcher, "w")
      const stopped = yield* system.spawn(Kind, "stopped")
      const crashed = yield* system.spawn(Kind, "crashed")
      yield* watcher.ask(new WatchTarget({ target: stopped.address }))
      yield* watcher.ask(new WatchTarget({ target: crashed.address }))
      yield* stopped.stop
      yield* waitFor("the first notice", () => notices.length === 1)
      expect(notices[0]).toEqual(new Terminated({ address: `${Kind.kind}/stopped`, reason: new Termination.Stopped() }))
      yield* crashed.tell(new Crash({ how: "die" }))
      yield* waitFor("the second notice", () => notices.length === 2)
      expect(notices[1]?.address).toBe(`${Kind.kind}/crashed`)
      expect(notices[1]?.reason._tag).toBe("Crashed")
    }))

  it.scoped("a restart is not a termination: watchers hear only of the later stop", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const notices: Array<Terminated> = []
      const Kind = probeDefinition("watched")
      const Watcher = watcherDefinition()
      const system = yield* startSystem(
        Layer.mergeAll(Actor.toLayer(Kind, probeBuild(probe), { supervision: noBackoff }), watcherLayer(Watcher, notices))
      )
      const watcher = yield* system.spawn(Watcher, "w")
      const target = yield* system.spawn(Kind, "t")
      yield* watcher.ask(new WatchTarget({ target: target.address }))
      yield* Effect.exit(target.ask(new Crash({ how: "die" })))
      yield* target.ask(new Get())
      yield* settle()
      expect(notices).toEqual([])
      yield* target.stop
      yield* waitFor("the notice", () => notices.length === 1)
      expect(notices[0]?.reason).toEqual(new Termination.Stopped())
    }))

  it.scoped("watching an address with no live actor yields NotRunning immediately", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const notices: Array<Terminated> = []
      const Kind = probeDefinition("absent")
      const Watcher = watcherDefinition()
      const system = yield* startSystem(
        Layer.mergeAll(Actor.toLayer(Kind, probeBuild(probe)), watcherLayer(Watcher, notices))
      )
      const watcher = yield* system.spawn(Watcher, "w")
      const nobody = new ActorAddress({ kind: Kind.kind, key: "nobody" })
      yield* watcher.ask(new WatchTarget({ target: nobody }))
      yield* waitFor("the NotRunning notice", () => notices.length === 1)
      expect(notices[0]).toEqual(new Terminated({ address: `${Kind.kind}/nobody`, reason: new Termination.NotRunning() }))
      // Also for an unknown kind.
      yield* watcher.ask(new WatchTarget({ target: new ActorAddress({ kind: "no-such-kind", key: "x" }) }))
      yield* waitFor("the second NotRunning notice", () => notices.length === 2)
      expect(notices[1]?.reason).toEqual(new Termination.NotRunning())
      expect(probe.count("build")).toBe(0)
    }))

  it.scoped("after unwatch no notice arrives", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const notices: Array<Terminated> = []
      const Kind = probeDefinition("unwatched")
      const Watcher = watcherDefinition()
      const system = yield* startSystem(
        Layer.mergeAll(Actor.toLayer(Kind, probeBuild(probe)), watcherLayer(Watcher, notices))
      )
      const watcher = yield* system.spawn(Watcher, "w")
      const target = yield* system.spawn(Kind, "t")
      const control = yield* system.spawn(Kind, "control")
      yield* watcher.ask(new WatchTarget({ target: target.address }))
      yield* watcher.ask(new WatchTarget({ target: control.address }))
      yield* watcher.ask(new UnwatchTarget({ target: target.address }))
      yield* target.stop
      yield* control.stop
      yield* waitFor("the control notice", () => notices.length >= 1)
      yield* settle()
      expect(notices.map((n) => n.address)).toEqual([`${Kind.kind}/control`])
    }))

  it.scoped("awaitTermination resolves with the reason, and with NotRunning when nothing lives at the address", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("awaited")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe)))
      const nobody = new ActorAddress({ kind: Kind.kind, key: "nobody" })
      expect(yield* system.awaitTermination(nobody)).toEqual(new Termination.NotRunning())
      const ref = yield* system.spawn(Kind, "a")
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      yield* settle()
      expect(yield* isDone(terminated)).toBe(false)
      yield* system.stop(ref.address)
      expect(yield* joinWithin("terminated", terminated)).toEqual(new Termination.Stopped())
    }))
})
