import { describe, expect, it } from "@effect/vitest"
import { ApiError } from "@weft/api"
import { Effect, TestClock } from "effect"
import { type BusEvent, Pipeline } from "../src/Pipeline.ts"
import { type FakeDelivery, makeDelivery, pipelineLayer, unavailable } from "./fakes.ts"

const event = (subject: string, envelope: unknown, more: Partial<BusEvent> = {}): BusEvent => ({
  source: "nats",
  subject,
  body: new TextEncoder().encode(typeof envelope === "string" ? envelope : JSON.stringify(envelope)),
  busId: undefined,
  publishedAt: 0,
  deliveries: 1,
  ...more
})

const handle = (delivery: FakeDelivery, rules: Parameters<typeof pipelineLayer>[1], ...events: ReadonlyArray<BusEvent>) =>
  Effect.gen(function*() {
    const pipeline = yield* Pipeline
    return yield* Effect.forEach(events, pipeline.handle)
  }).pipe(Effect.provide(pipelineLayer(delivery, rules)))

describe("the pipeline", () => {
  it.effect("delivers to users, a room and everyone, with the rule's defaults and the envelope's own values", () =>
    Effect.gen(function*() {
      const delivery = makeDelivery()
      const outcomes = yield* handle(
        delivery,
        [
          { match: "user.{user}.>", to: { users: ["{user}"] }, sender: "accounts" },
          { match: "ops.>", to: { room: "ops" }, kind: "alert" },
          { match: "deploy", to: { broadcast: true } },
          { match: "order.*" }
        ],
        event("user.42.login", { data: { ip: "10.0.0.1" } }),
        event("ops.db", { data: "disk full" }),
        event("deploy", { data: "v2", sender: "ci" }),
        event("order.completed", { to: { users: ["7", "8", "7"] }, kind: "order.done", data: { orderId: 1 }, respectQuietHours: true })
      )
      expect(outcomes.map((outcome) => outcome._tag)).toEqual(["Delivered", "Delivered", "Delivered", "Delivered"])
      expect(delivery.sent.map(({ id: _id, ...rest }) => rest)).toEqual([
        { to: "user:42", kind: "user.42.login", sender: "accounts", data: { ip: "10.0.0.1" } },
        { to: "room:ops", kind: "alert", sender: "nats", data: "disk full" },
        { to: "broadcast", kind: "deploy", sender: "ci", data: "v2" },
        { to: "user:7", kind: "order.done", sender: "nats", data: { orderId: 1 }, respectQuietHours: true },
        { to: "user:8", kind: "order.done", sender: "nats", data: { orderId: 1 }, respectQuietHours: true }
      ])
      // One notification id for every user of one event.
      expect(delivery.sent[3]!.id).toBe(delivery.sent[4]!.id)
    }))

  it.effect("delivers a redelivered event, or a republished one with the same key, once", () =>
    Effect.gen(function*() {
      const delivery = makeDelivery()
      const envelope = { to: { users: ["1"] }, data: 1 }
      const keyed = { to: { users: ["2"] }, data: 2, idempotencyKey: "payment-9" }
      const outcomes = yield* handle(
        delivery,
        [],
        event("a", envelope, { busId: "S:1" }),
        event("a", envelope, { busId: "S:1", deliveries: 2 }),
        event("a", envelope, { busId: "S:2" }),
        event("a", keyed, { busId: "S:3" }),
        event("a", keyed, { busId: "m-1", source: "amqp" }),
        event("a", envelope),
        event("a", envelope)
      )
      expect(outcomes).toMatchObject([
        { _tag: "Delivered", duplicate: false },
        { _tag: "Delivered", duplicate: true },
        { _tag: "Delivered", duplicate: false },
        { _tag: "Delivered", duplicate: false },
        { _tag: "Delivered", duplicate: true },
        // No key and no bus id: at least once only.
        { _tag: "Delivered", duplicate: false },
        { _tag: "Delivered", duplicate: false }
      ])
      expect(delivery.sent.map((sent) => sent.data)).toEqual([1, 1, 2, 1, 1])
    }))

  it.effect("dead-letters bad envelopes, unrouted subjects and refused deliveries, with the reason", () =>
    Effect.gen(function*() {
      const delivery = makeDelivery()
      const rules = [
        { match: "order.*" },
        { match: "room.{name}", to: { room: "{name}" } }
      ]
      const outcomes = yield* handle(
        delivery,
        rules,
        event("order.completed", "{oops"),
        event("order.completed", { to: { users: ["1"] }, surprise: true }),
        event("billing.paid", { to: { users: ["1"] } }),
        event("order.completed", { data: 1 }),
        event("room.a", { data: 1, deliverAt: { _tag: "Utc", at: 1 } }),
        event("order.completed", { to: { users: ["1"] }, ttlMs: 10 }, { publishedAt: undefined }),
        event(`order.${"y".repeat(120)}`, { to: { users: ["1"] } })
      )
      expect(outcomes.map((outcome) => outcome._tag === "DeadLetter" ? outcome.reason : outcome._tag)).toEqual([
        "envelope",
        "envelope",
        "route",
        "route",
        "envelope",
        "envelope",
        "route"
      ])
      expect(outcomes[2]).toMatchObject({ message: expect.stringContaining("no rule matches the subject \"billing.paid\"") })
      expect(outcomes[3]).toMatchObject({ message: expect.stringContaining("names a target") })
      expect(delivery.calls()).toBe(0)

      delivery.refuse(new ApiError({ reason: "invalid", message: "not a valid local time" }))
      const refused = yield* handle(delivery, rules, event("order.completed", { to: { users: ["1"] } }, { busId: "S:9" }))
      expect(refused).toMatchObject([{ _tag: "DeadLetter", reason: "refused", message: expect.stringContaining("not a valid local time") }])
    }))

  it.effect("gives an event back to the bus while the delivery path is unavailable, and delivers it once it is back", () =>
    Effect.gen(function*() {
      const delivery = makeDelivery()
      delivery.refuse(unavailable)
      const first = yield* handle(delivery, [], event("a", { to: { users: ["1"] } }, { busId: "S:1" }))
      expect(first).toMatchObject([{ _tag: "Retry" }])
      delivery.refuse(undefined)
      const again = yield* handle(delivery, [], event("a", { to: { users: ["1"] } }, { busId: "S:1", deliveries: 2 }))
      expect(again).toMatchObject([{ _tag: "Delivered", duplicate: false }])
      expect(delivery.sent).toHaveLength(1)
    }))

  it.effect("drops an event older than its ttlMs, counted from `at` or the bus's publish time", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(100_000)
      const delivery = makeDelivery()
      const outcomes = yield* handle(
        delivery,
        [],
        event("a", { to: { users: ["1"] }, ttlMs: 5000 }, { publishedAt: 90_000 }),
        event("a", { to: { users: ["1"] }, ttlMs: 5000 }, { publishedAt: 99_000 }),
        event("a", { to: { users: ["1"] }, ttlMs: 5000, at: 94_000 }, { publishedAt: 99_000 }),
        event("a", { to: { users: ["1"] }, ttlMs: 5000, at: 96_000 }, { publishedAt: undefined })
      )
      expect(outcomes.map((outcome) => outcome._tag)).toEqual(["Expired", "Delivered", "Expired", "Delivered"])
    }))
})
