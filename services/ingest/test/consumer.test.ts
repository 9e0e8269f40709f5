/**
 * The consumer loop on the in-memory bus (`Source.makeMemory`), with the real
 * pipeline and dedupe store over a delivery path in memory: settling by
 * outcome, poison events, bounded in-flight, takeover of a dead consumer's
 * events, reconnection and retries. The same loop drives NATS, RabbitMQ and
 * Redis; test/ingest runs it against the real servers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Metric, Scope } from "effect"
import * as Consumer from "../src/Consumer.ts"
import * as IngestMetrics from "../src/IngestMetrics.ts"
import { makeMemory, type MemoryBus } from "../src/Source.ts"
import { type FakeDelivery, makeDelivery, pipelineLayer, unavailable } from "./fakes.ts"

const eventually = (what: string, check: () => boolean, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting until ${what}`)
      yield* Effect.sleep("5 millis")
    }
  })

/** Starts a consumer of `bus` in a scope of its own (closed at the latest with the test's); closing it is the consumer's death. */
const startConsumer = (bus: MemoryBus, delivery: FakeDelivery, options: Partial<Consumer.Options> = {}) =>
  Effect.gen(function*() {
    const scope = yield* Effect.acquireRelease(Scope.make(), (scope) => Scope.close(scope, Exit.void))
    yield* Consumer.start(bus.source, { maxInFlight: 16, holdMs: 1000, drainMs: 50, lagEveryMs: 50, ...options }).pipe(
      Effect.provide(pipelineLayer(delivery)),
      Scope.extend(scope)
    )
    return scope
  })

const users = (n: number) => JSON.stringify({ to: { users: [`u${n % 7}`] }, data: { n } })

const counter = (metric: Metric.Metric.Counter<number>) =>
  Effect.map(Metric.value(Metric.tagged(metric, "source", "nats")), (state) => state.count)

describe("the consumer loop", () => {
  it.scopedLive("delivers each event once, and a poison event goes to the dead-letter path without blocking the rest", () =>
    Effect.gen(function*() {
      const bus = yield* makeMemory()
      const delivery = makeDelivery()
      const deadBefore = yield* Metric.value(Metric.tagged(Metric.tagged(IngestMetrics.deadLettered, "source", "nats"), "reason", "envelope"))
      yield* startConsumer(bus, delivery)
      for (let n = 0; n < 200; n++) yield* bus.publish("events", n === 20 ? "{not an envelope" : users(n))
      yield* eventually("every event is settled", () => bus.acked().length + bus.deadLetters().length === 200)
      expect(bus.deadLetters()).toEqual([{ id: "21", subject: "events", reason: "envelope", message: expect.stringMatching(/JSON/) }])
      expect(delivery.sent.map((sent) => (sent.data as { n: number }).n).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 200 }, (_, n) => n).filter((n) => n !== 20)
      )
      const deadAfter = yield* Metric.value(Metric.tagged(Metric.tagged(IngestMetrics.deadLettered, "source", "nats"), "reason", "envelope"))
      expect(deadAfter.count - deadBefore.count).toBe(1)
    }))

  it.scopedLive("takes at most maxInFlight events while the delivery path is saturated, the rest waiting in the bus", () =>
    Effect.gen(function*() {
      const bus = yield* makeMemory()
      const delivery = makeDelivery()
      const gate = yield* Effect.makeLatch(false)
      delivery.hold(gate.await)
      yield* startConsumer(bus, delivery, { maxInFlight: 8 })
      for (let n = 0; n < 100; n++) yield* bus.publish("events", users(n))
      yield* eventually("8 events are in flight", () => bus.unsettled() === 8)
      yield* Effect.sleep("200 millis")
      expect(bus.mostUnsettled()).toBe(8)
      expect(delivery.calls()).toBeLessThanOrEqual(8)
      const inFlight = yield* Metric.value(Metric.tagged(IngestMetrics.inFlight, "source", "nats"))
      expect(inFlight.value).toBe(8)
      // The bus holds the other 92; the loop samples it every 50 ms here.
      let lag = -1
      for (let tries = 0; tries < 200 && lag !== 92; tries++) {
        lag = (yield* Metric.value(Metric.tagged(IngestMetrics.lag, "source", "nats"))).value
        if (lag !== 92) yield* Effect.sleep("10 millis")
      }
      expect(lag).toBe(92)
      yield* gate.open
      yield* eventually("every event is delivered", () => bus.acked().length === 100)
      expect(bus.mostUnsettled()).toBe(8)
      expect(new Set(delivery.sent.map((sent) => (sent.data as { n: number }).n)).size).toBe(100)
    }))

  it.scopedLive("a consumer that dies after delivering, before acking, leaves its events to another, which delivers none twice", () =>
    Effect.gen(function*() {
      const bus = yield* makeMemory()
      const delivery = makeDelivery()
      const stuck = yield* Effect.makeLatch(false)
      delivery.holdAfter(stuck.await)
      const first = yield* startConsumer(bus, delivery, { maxInFlight: 5 })
      for (let n = 0; n < 30; n++) yield* bus.publish("events", users(n))
      yield* eventually("the first consumer delivered 5 events it cannot ack", () => delivery.sent.length === 5 && bus.unsettled() === 5)
      const redeliveredBefore = yield* counter(IngestMetrics.redelivered)
      yield* Scope.close(first, Exit.void)
      delivery.holdAfter(undefined)
      yield* startConsumer(bus, delivery, { maxInFlight: 5 })
      yield* eventually("every event is acked", () => bus.acked().length === 30)
      expect(delivery.sent.map((sent) => (sent.data as { n: number }).n).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, n) => n))
      expect((yield* counter(IngestMetrics.redelivered)) - redeliveredBefore).toBe(5)
      // The five came again: each was run once more, and each user's inbox dropped the repeat.
      expect(delivery.calls()).toBe(35)
    }))

  it.scopedLive("reconnects after the bus fails, and retries while the delivery path is unavailable", () =>
    Effect.gen(function*() {
      const bus = yield* makeMemory()
      const delivery = makeDelivery()
      yield* startConsumer(bus, delivery)
      for (let n = 0; n < 5; n++) yield* bus.publish("events", users(n))
      yield* eventually("the first five are acked", () => bus.acked().length === 5)
      bus.break()
      for (let n = 5; n < 10; n++) yield* bus.publish("events", users(n))
      yield* Effect.sleep("300 millis")
      expect(bus.acked()).toHaveLength(5)
      bus.heal()
      yield* eventually("the next five are acked", () => bus.acked().length === 10, 15_000)

      const retriedBefore = yield* counter(IngestMetrics.retried)
      delivery.refuse(unavailable)
      for (let n = 10; n < 13; n++) yield* bus.publish("events", users(n))
      yield* eventually("the delivery path was tried", () => delivery.calls() >= 13)
      delivery.refuse(undefined)
      yield* eventually("the retried events are delivered", () => bus.acked().length === 13)
      expect((yield* counter(IngestMetrics.retried)) - retriedBefore).toBeGreaterThanOrEqual(3)
      expect(delivery.sent).toHaveLength(13)
    }))
})
