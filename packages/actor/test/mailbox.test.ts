/**
 * Property 3: bounded mailboxes and their overflow policies. The mailbox is
 * filled deterministically by blocking the handler (a `Hold` ask waiting on
 * the probe's gate) while the test enqueues.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit } from "effect"
import { Actor, MailboxFull, Termination } from "@weft/actor"
import type { ActorRef, DeadLetter } from "@weft/actor"
import {
  awaitFiber,
  deadLetterSink,
  failureOf,
  forkStarted,
  Get,
  Hold,
  Increment,
  makeProbe,
  Note,
  probeBuild,
  probeDefinition,
  type ProbeMsg,
  queuedFor,
  startSystem,
  waitFor,
  waitForEffect,
  joinWithin
} from "./helpers.ts"

const note = (id: number, important = false): Note => new Note({ id, important })

/** Starts a `Hold` ask and waits until the handler is blocked in it. */
const block = (ref: ActorRef<ProbeMsg>, probe: { entered: number }) =>
  Effect.gen(function*() {
    const before = probe.entered
    const held = yield* Effect.fork(ref.ask(new Hold(), { timeout: "10 seconds" }))
    yield* waitFor("the handler to block", () => probe.entered === before + 1)
    return held
  })

const noteIds = (letters: ReadonlyArray<DeadLetter>): Array<number> =>
  letters.flatMap((letter) => (letter.message instanceof Note ? [letter.message.id] : []))

describe("mailbox: reject", () => {
  it.scoped("a full mailbox refuses the next message with MailboxFull and loses nothing else", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("reject")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage", mailbox: { capacity: 2, overflow: "reject" } }),
        { onDeadLetter: sink.onDeadLetter }
      )
      const ref = system.ref(Kind, "k")
      const held = yield* block(ref, probe)
      yield* ref.tell(note(1))
      yield* ref.tell(note(2))
      const full = new MailboxFull({ address: `${Kind.kind}/k`, capacity: 2 })
      expect(yield* Effect.either(ref.tell(note(3)))).toEqual(Either.left(full))
      // An ask is refused at once, too (not left waiting for its timeout).
      const asked = yield* Effect.fork(ref.ask(note(4), { timeout: "10 seconds" }))
      const askedExit = yield* awaitFiber("the refused ask", asked)
      expect(failureOf(askedExit)).toEqual(full)

      yield* probe.gate.open
      yield* joinWithin("held", held)
      // Room again: the mailbox accepts once it has drained.
      expect(yield* ref.ask(note(5))).toBe(5)
      expect(probe.notes).toEqual([1, 2, 5])
      expect(sink.letters).toEqual([])
      expect(system.isAlive(ref.address)).toBe(true)
    }))

  it.scoped("the default mailbox is bounded at 1,024 messages and rejects", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const Kind = probeDefinition("default-box")
      const system = yield* startSystem(Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage" }))
      const ref = system.ref(Kind, "k")
      const held = yield* block(ref, probe)
      for (let i = 0; i < 1024; i++) yield* ref.tell(new Increment({ by: 1 }))
      const overflow = yield* Effect.either(ref.tell(new Increment({ by: 1 })))
      expect(overflow).toEqual(Either.left(new MailboxFull({ address: `${Kind.kind}/k`, capacity: 1024 })))
      yield* probe.gate.open
      yield* joinWithin("held", held)
      expect(yield* ref.ask(new Get())).toBe(1024)
    }))
})

describe("mailbox: dropOldest", () => {
  it.scoped("drops the oldest droppable told message, never an ask, honouring `droppable`; drops are dead letters", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("drop")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), {
          activation: "onMessage",
          mailbox: {
            capacity: 3,
            overflow: "dropOldest",
            droppable: (message) => message._tag === "Note" && !message.important
          }
        }),
        { onDeadLetter: sink.onDeadLetter }
      )
      const ref = system.ref(Kind, "k")
      const held = yield* block(ref, probe)
      yield* ref.tell(note(1)) // droppable
      const asked2 = yield* Effect.fork(ref.ask(note(2), { timeout: "10 seconds" })) // an ask: never dropped
      yield* waitForEffect("the ask to be queued", Effect.map(queuedFor(system, Kind.kind), (n) => n === 2))
      yield* ref.tell(note(3, true)) // not droppable
      // Full: [1, ask 2, 3!]
      yield* ref.tell(note(4)) // drops 1
      expect(noteIds(sink.letters)).toEqual([1])
      yield* ref.tell(note(5)) // drops 4 (the ask and the important note are skipped)
      expect(noteIds(sink.letters)).toEqual([1, 4])
      yield* ref.tell(note(6, true)) // drops 5
      expect(noteIds(sink.letters)).toEqual([1, 4, 5])
      // Now [ask 2, 3!, 6!]: nothing droppable, so the new message is refused.
      const full = new MailboxFull({ address: `${Kind.kind}/k`, capacity: 3 })
      expect(yield* Effect.either(ref.tell(note(7)))).toEqual(Either.left(full))
      const asked8 = yield* Effect.fork(ref.ask(note(8), { timeout: "10 seconds" }))
      expect(failureOf(yield* awaitFiber("the refused ask", asked8))).toEqual(full)

      yield* probe.gate.open
      yield* joinWithin("held", held)
      expect(yield* awaitFiber("the reply to ask 2", asked2)).toEqual(Exit.succeed(2))
      yield* ref.ask(new Get())
      expect(probe.notes).toEqual([2, 3, 6])
      expect(sink.letters.map((letter) => [letter.address, letter.reason])).toEqual([
        [`${Kind.kind}/k`, "dropped"],
        [`${Kind.kind}/k`, "dropped"],
        [`${Kind.kind}/k`, "dropped"]
      ])
    }))

  it.scoped("by default every told message is droppable: the newest messages survive", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("drop-default")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage", mailbox: { capacity: 2, overflow: "dropOldest" } }),
        { onDeadLetter: sink.onDeadLetter }
      )
      const ref = system.ref(Kind, "k")
      const held = yield* block(ref, probe)
      for (let id = 1; id <= 5; id++) yield* ref.tell(note(id))
      expect(noteIds(sink.letters)).toEqual([1, 2, 3])
      yield* probe.gate.open
      yield* joinWithin("held", held)
      yield* ref.ask(new Get())
      expect(probe.notes).toEqual([4, 5])
    }))

  it.scoped("an ask arriving at a full mailbox displaces the oldest told message and is answered", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("drop-ask")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage", mailbox: { capacity: 2, overflow: "dropOldest" } }),
        { onDeadLetter: sink.onDeadLetter }
      )
      const ref = system.ref(Kind, "k")
      const held = yield* block(ref, probe)
      yield* ref.tell(note(1))
      yield* ref.tell(note(2))
      const asked = yield* Effect.fork(ref.ask(note(3), { timeout: "10 seconds" }))
      yield* waitFor("the drop", () => sink.letters.length === 1)
      expect(noteIds(sink.letters)).toEqual([1])
      yield* probe.gate.open
      yield* joinWithin("held", held)
      expect(yield* awaitFiber("the reply to the ask", asked)).toEqual(Exit.succeed(3))
      expect(probe.notes).toEqual([2, 3])
    }))

  it.scoped("a mailbox full of asks refuses a told message instead of dropping an ask", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("drop-asks")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage", mailbox: { capacity: 2, overflow: "dropOldest" } }),
        { onDeadLetter: sink.onDeadLetter }
      )
      const ref = system.ref(Kind, "k")
      const held = yield* block(ref, probe)
      const a1 = yield* Effect.fork(ref.ask(note(1), { timeout: "10 seconds" }))
      const a2 = yield* Effect.fork(ref.ask(note(2), { timeout: "10 seconds" }))
      yield* waitForEffect("both asks queued", Effect.map(queuedFor(system, Kind.kind), (n) => n === 2))
      const told = yield* Effect.either(ref.tell(note(3)))
      expect(told).toEqual(Either.left(new MailboxFull({ address: `${Kind.kind}/k`, capacity: 2 })))
      yield* probe.gate.open
      yield* joinWithin("held", held)
      expect(yield* awaitFiber("the reply to ask 1", a1)).toEqual(Exit.succeed(1))
      expect(yield* awaitFiber("the reply to ask 2", a2)).toEqual(Exit.succeed(2))
      expect(sink.letters).toEqual([])
    }))
})

describe("mailbox: stop", () => {
  it.scoped("overflow stops the actor with MailboxOverflow and the sender gets MailboxFull", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const sink = deadLetterSink()
      const Kind = probeDefinition("stop-box")
      const system = yield* startSystem(
        Actor.toLayer(Kind, probeBuild(probe), { activation: "onMessage", mailbox: { capacity: 2, overflow: "stop" } }),
        { onDeadLetter: sink.onDeadLetter }
      )
      const ref = system.ref(Kind, "slow-consumer")
      const held = yield* block(ref, probe)
      const terminated = yield* forkStarted(system.awaitTermination(ref.address))
      yield* ref.tell(note(1))
      yield* ref.tell(note(2))
      const overflow = yield* Effect.either(ref.tell(note(3)))
      expect(overflow).toEqual(Either.left(new MailboxFull({ address: `${Kind.kind}/slow-consumer`, capacity: 2 })))
      // The message being handled completes; then the actor terminates.
      yield* probe.gate.open
      yield* joinWithin("held", held)
      const reason = yield* joinWithin("terminated", terminated)
      expect(reason).toEqual(new Termination.MailboxOverflow({ capacity: 2 }))
      expect(system.isAlive(ref.address)).toBe(false)
      expect(probe.stoppingReasons).toEqual([new Termination.MailboxOverflow({ capacity: 2 })])
      // What was queued never reached the handler: it went to dead letters.
      expect(probe.notes).toEqual([])
      expect(noteIds(sink.letters)).toEqual([1, 2])
      expect(sink.letters.every((letter) => letter.reason === "mailbox-overflow")).toBe(true)
    }))
})
