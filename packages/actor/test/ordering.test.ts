/**
 * Property 4: per sender-receiver pair, messages are handled in the order
 * they were sent, and none is lost, under random interleavings of several
 * sender fibers mixing tell and ask, also across a restart in the middle.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import * as fc from "fast-check"
import { Actor, ActorCrashed, Supervision } from "@weft/actor"
import type { ActorRef } from "@weft/actor"
import { failureOf, makeKind, startSystem, uniqueKind, waitFor } from "./helpers.ts"

class Rec extends Schema.TaggedRequest<Rec>()("Rec", {
  payload: { sender: Schema.Number, seq: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

class Boom extends Schema.TaggedRequest<Boom>()("Boom", {
  payload: {},
  success: Schema.Void,
  failure: Schema.Never
}) {}

type RecorderMsg = Rec | Boom

interface Step {
  readonly ask: boolean
  readonly yields: number
}

interface Plan {
  readonly senders: ReadonlyArray<ReadonlyArray<Step>>
  /** Where sender 0 sends the crashing message (index into its steps), if any. */
  readonly crash: { readonly at: number; readonly ask: boolean } | undefined
}

const stepArb: fc.Arbitrary<Step> = fc.record({ ask: fc.boolean(), yields: fc.integer({ min: 0, max: 3 }) })
const sendersArb = fc.array(fc.array(stepArb, { maxLength: 30 }), { minLength: 2, maxLength: 6 })

const planArb: fc.Arbitrary<Plan> = sendersArb.map((senders) => ({ senders, crash: undefined }))
const crashPlanArb: fc.Arbitrary<Plan> = fc
  .record({ senders: sendersArb, at: fc.nat(), ask: fc.boolean() })
  .map(({ senders, at, ask }) => ({ senders, crash: { at: at % ((senders[0]?.length ?? 0) + 1), ask } }))

interface Outcome {
  /** (sender, seq) in the order the actor handled them. */
  readonly log: ReadonlyArray<readonly [number, number]>
  /** Replies to asks that did not echo their own seq. */
  readonly wrongReplies: ReadonlyArray<string>
  readonly builds: number
}

/** Runs one plan on a fresh system; fails if any send fails unexpectedly. */
const runPlan = (plan: Plan, maxOpsBeforeYield?: number): Effect.Effect<Outcome> =>
  Effect.gen(function*() {
    const log: Array<readonly [number, number]> = []
    const wrongReplies: Array<string> = []
    let builds = 0
    const Recorder = makeKind(uniqueKind("fifo"), [Rec, Boom])
    const layer = Actor.toLayer(
      Recorder,
      () =>
        Effect.sync(() => {
          builds++
          return {
            receive: {
              Rec: ({ sender, seq }) =>
                Effect.sync(() => {
                  log.push([sender, seq])
                  return seq
                }),
              Boom: () => Effect.die(new Error("crash in the middle"))
            }
          }
        }),
      {
        activation: "onMessage",
        supervision: Supervision.restart({ maxRestarts: 1000, backoff: { base: "0 millis", max: "0 millis" } })
      }
    )
    const start = startSystem(layer, { askTimeout: "10 seconds" })
    const system = yield* (maxOpsBeforeYield === undefined ? start : Effect.withMaxOpsBeforeYield(start, maxOpsBeforeYield))
    const ref: ActorRef<RecorderMsg> = system.ref(Recorder, "target")

    const crashOnce = (ask: boolean) =>
      ask
        ? Effect.exit(ref.ask(new Boom())).pipe(
          Effect.flatMap((exit) =>
            failureOf(exit) instanceof ActorCrashed
              ? Effect.void
              : Effect.dieMessage(`the crashing ask should fail with ActorCrashed, got ${String(Exit.isSuccess(exit))}`)
          )
        )
        : ref.tell(new Boom())

    const sender = (steps: ReadonlyArray<Step>, sender: number) =>
      Effect.gen(function*() {
        for (let seq = 0; seq <= steps.length; seq++) {
          if (sender === 0 && plan.crash !== undefined && plan.crash.at === seq) yield* crashOnce(plan.crash.ask)
          const step = steps[seq]
          if (step === undefined) break
          for (let i = 0; i < step.yields; i++) yield* Effect.yieldNow()
          const message = new Rec({ sender, seq })
          if (step.ask) {
            const reply = yield* ref.ask(message)
            if (reply !== seq) wrongReplies.push(`${sender}/${seq} -> ${reply}`)
          } else {
            yield* ref.tell(message)
          }
        }
      })

    yield* Effect.forEach(plan.senders, sender, { concurrency: "unbounded", discard: true })
    const total = plan.senders.reduce((n, steps) => n + steps.length, 0)
    yield* waitFor(`all ${total} messages handled`, () => log.length >= total)
    if (plan.crash !== undefined) yield* waitFor("the restart after the crash", () => builds >= 2)
    return { log: [...log], wrongReplies, builds }
  }).pipe(Effect.scoped, Effect.orDie)

/** Checks per-sender order and exactly-once delivery of every message. */
const checkOutcome = (plan: Plan, outcome: Outcome): void => {
  expect(outcome.wrongReplies).toEqual([])
  const total = plan.senders.reduce((n, steps) => n + steps.length, 0)
  expect(outcome.log.length).toBe(total)
  plan.senders.forEach((steps, sender) => {
    const seen = outcome.log.filter(([s]) => s === sender).map(([, seq]) => seq)
    expect(seen).toEqual(steps.map((_, seq) => seq))
  })
}

describe("ordering: FIFO per sender-receiver pair", () => {
  it("random interleavings of 2-6 senders mixing tell and ask keep each sender's order, with nothing lost", async () => {
    await fc.assert(
      fc.asyncProperty(planArb, async (plan) => {
        const outcome = await Effect.runPromise(runPlan(plan))
        checkOutcome(plan, outcome)
        expect(outcome.builds).toBe(plan.senders.some((steps) => steps.length > 0) ? 1 : 0)
      }),
      { numRuns: 50 }
    )
  })

  it("a crash (restart) in the middle keeps the order of every sender's surviving messages", async () => {
    await fc.assert(
      fc.asyncProperty(crashPlanArb, async (plan) => {
        const outcome = await Effect.runPromise(runPlan(plan))
        checkOutcome(plan, outcome)
        expect(outcome.builds).toBe(2)
      }),
      { numRuns: 50 }
    )
  })

  it("order and completeness hold when the actor's fibers yield very often", async () => {
    await fc.assert(
      fc.asyncProperty(planArb, async (plan) => {
        // The actors' fibers (forked with the runtime captured when the layer is built) yield every
        // 16 operations instead of 2048, so sends land at many more points of the actor's loop.
        // (Much lower values stall Effect's own layer building, so 16 is the floor used here.)
        const outcome = await Effect.runPromise(runPlan(plan, 16))
        checkOutcome(plan, outcome)
      }),
      { numRuns: 30 }
    )
  })

  it("a single sender's tells and asks are handled in sending order (deterministic case)", async () => {
    const plan: Plan = {
      senders: [
        Array.from({ length: 40 }, (_, i) => ({ ask: i % 3 === 0, yields: 0 })),
        []
      ],
      crash: undefined
    }
    const outcome = await Effect.runPromise(runPlan(plan))
    checkOutcome(plan, outcome)
  })
})
