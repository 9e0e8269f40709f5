/**
 * Property 2: addresses. `system.ref(def, key)` finds or activates; explicit
 * kinds need `spawn`; `spawn` twice fails; unknown kinds are not found; a ref
 * stays valid across restarts, passivation and re-activation.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, TestClock } from "effect"
import {
  Actor,
  ActorAddress,
  ActorAlreadyExists,
  ActorNotFound,
  Supervision
} from "@weft/actor"
import {
  Crash,
  failureOf,
  Get,
  Increment,
  makeProbe,
  probeBuild,
  probeDefinition,
  startSystem,
  waitFor
} from "./helpers.ts"

describe("addressing", () => {
  it.scoped("a ref carries its kind/key address", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Room = probeDefinition("room")
      const system = yield* startSystem(Actor.toLayer(Room, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Room, "general")
      expect(ref.address).toEqual(new ActorAddress({ kind: Room.kind, key: "general" }))
      expect(ref.address.toString()).toBe(`${Room.kind}/general`)
    }))

  it.scoped("with onMessage activation the first message to an address activates it", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Room = probeDefinition("room")
      const system = yield* startSystem(Actor.toLayer(Room, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Room, "general")
      // A ref alone activates nothing.
      expect(system.isAlive(ref.address)).toBe(false)
      expect(probe.count("build")).toBe(0)
      yield* ref.tell(new Increment({ by: 4 }))
      expect(yield* ref.ask(new Get())).toBe(4)
      expect(system.isAlive(ref.address)).toBe(true)
      expect(probe.count("build")).toBe(1)
      // Another ref to the same address finds the same activation (same state).
      expect(yield* system.ref(Room, "general").ask(new Get())).toBe(4)
      expect(probe.count("build")).toBe(1)
    }))

  it.scoped("a kind with passivateAfter activates on message by default", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const User = probeDefinition("user")
      const system = yield* startSystem(Actor.toLayer(User, probeBuild(probe), { passivateAfter: "1 hour" }))
      expect(yield* system.ref(User, "42").ask(new Increment({ by: 1 }))).toBe(1)
    }))

  it.scoped("an explicit kind fails with ActorNotFound until spawned, then the same ref works", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Conn = probeDefinition("conn")
      // `explicit` even though passivateAfter would default to onMessage.
      const system = yield* startSystem(
        Actor.toLayer(Conn, probeBuild(probe), { activation: "explicit", passivateAfter: "1 hour" })
      )
      const ref = system.ref(Conn, "n/1")
      const notFound = new ActorNotFound({ address: `${Conn.kind}/n/1` })
      expect(yield* Effect.either(ref.tell(new Increment({ by: 1 })))).toEqual(Either.left(notFound))
      expect(yield* Effect.either(ref.ask(new Get()))).toEqual(Either.left(notFound))
      expect(system.isAlive(ref.address)).toBe(false)
      expect(probe.count("build")).toBe(0)

      const spawned = yield* system.spawn(Conn, "n/1")
      expect(spawned.address).toEqual(ref.address)
      yield* ref.tell(new Increment({ by: 2 }))
      expect(yield* spawned.ask(new Get())).toBe(2)
      expect(system.isAlive(ref.address)).toBe(true)
    }))

  it.scoped("kinds without passivateAfter are explicit by default", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Conn = probeDefinition("conn")
      const system = yield* startSystem(Actor.toLayer(Conn, probeBuild(probe)))
      const result = yield* Effect.either(system.ref(Conn, "x").ask(new Get()))
      expect(result).toEqual(Either.left(new ActorNotFound({ address: `${Conn.kind}/x` })))
    }))

  it.scoped("spawning a live address twice fails with ActorAlreadyExists and leaves the actor alone", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Conn = probeDefinition("conn")
      const system = yield* startSystem(Actor.toLayer(Conn, probeBuild(probe)))
      const ref = yield* system.spawn(Conn, "a")
      yield* ref.ask(new Increment({ by: 7 }))
      const again = yield* Effect.either(system.spawn(Conn, "a"))
      expect(again).toEqual(Either.left(new ActorAlreadyExists({ address: `${Conn.kind}/a` })))
      expect(yield* ref.ask(new Get())).toBe(7)
      expect(probe.count("build")).toBe(1)
    }))

  it.scoped("a kind that is not registered gives ActorNotFound for tell, ask and spawn", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Known = probeDefinition("known")
      const Unknown = probeDefinition("unknown")
      const system = yield* startSystem(Actor.toLayer(Known, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Unknown, "k")
      const notFound = new ActorNotFound({ address: `${Unknown.kind}/k` })
      expect(yield* Effect.either(ref.tell(new Increment({ by: 1 })))).toEqual(Either.left(notFound))
      expect(yield* Effect.either(ref.ask(new Get()))).toEqual(Either.left(notFound))
      expect(yield* Effect.either(system.spawn(Unknown, "k"))).toEqual(Either.left(notFound))
      expect(probe.count("build")).toBe(0)
    }))

  it.scoped("a ref stays valid across restarts (it reaches the fresh instance)", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Room = probeDefinition("room")
      const system = yield* startSystem(
        Actor.toLayer(Room, probeBuild(probe), {
          activation: "onMessage",
          supervision: Supervision.restart({ backoff: { base: "0 millis" } })
        })
      )
      const ref = system.ref(Room, "r")
      yield* ref.ask(new Increment({ by: 3 }))
      for (let round = 1; round <= 3; round++) {
        const crashed = yield* Effect.exit(ref.ask(new Crash({ how: "die" })))
        expect(failureOf(crashed)?._tag).toBe("ActorCrashed")
        expect(yield* ref.ask(new Increment({ by: round }))).toBe(round)
      }
      expect(probe.count("build")).toBe(4)
    }))

  it.effect("a ref stays valid across passivation and re-activation", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Room = probeDefinition("room")
      const system = yield* startSystem(Actor.toLayer(Room, probeBuild(probe), { passivateAfter: "1 second" }))
      const ref = system.ref(Room, "r")
      yield* ref.ask(new Increment({ by: 5 }))
      yield* TestClock.adjust("3 seconds")
      yield* waitFor("passivation", () => !system.isAlive(ref.address))
      expect(yield* ref.ask(new Increment({ by: 1 }))).toBe(1)
      expect(system.isAlive(ref.address)).toBe(true)
      expect(probe.count("build")).toBe(2)
    }).pipe(Effect.scoped))

  it.scoped("a ref stays valid across stop and a new spawn of an explicit kind", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Conn = probeDefinition("conn")
      const system = yield* startSystem(Actor.toLayer(Conn, probeBuild(probe)))
      const ref = yield* system.spawn(Conn, "c")
      yield* ref.ask(new Increment({ by: 9 }))
      yield* ref.stop
      expect(system.isAlive(ref.address)).toBe(false)
      expect(failureOf(yield* Effect.exit(ref.ask(new Get())))).toEqual(
        new ActorNotFound({ address: `${Conn.kind}/c` })
      )
      yield* system.spawn(Conn, "c")
      expect(yield* ref.ask(new Get())).toBe(0)
    }))
})
