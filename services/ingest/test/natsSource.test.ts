/**
 * The NATS adapter on its own, against the real NATS at 127.0.0.1:4222 (skipped when none
 * answers), driven by the consumer loop over the in-memory delivery path: when no stream keeps
 * the dead-letter subject, a poison event goes out as a plain message with its reason and is
 * terminated, never redelivered; the events behind it are delivered and acked.
 */
import { describe, expect, it } from "@effect/vitest"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Effect, Exit, Scope } from "effect"
import { Socket } from "node:net"
import * as Consumer from "../src/Consumer.ts"
import * as Nats from "../src/sources/Nats.ts"
import { makeDelivery, pipelineLayer } from "./fakes.ts"

const answers = await new Promise<boolean>((resolve) => {
  const socket = new Socket()
  socket.setTimeout(1000)
  socket.once("connect", () => (socket.destroy(), resolve(true)))
  socket.once("timeout", () => (socket.destroy(), resolve(false)))
  socket.once("error", () => resolve(false))
  socket.connect(4222, "127.0.0.1")
})

describe.skipIf(!answers)("the NATS source at 127.0.0.1:4222 (skipped when none answers)", () => {
  it.scopedLive("terminates a poison event after publishing it, with its reason, on a dead-letter subject no stream keeps", () =>
    Effect.gen(function*() {
      const suffix = Math.random().toString(36).slice(2, 8)
      const stream = `WEFT_UNIT_${suffix}`
      const deadLetterSubject = `weft.dead-letter.unit.${suffix}`
      const nc = yield* Effect.acquireRelease(
        Effect.promise(() => connect({ servers: "127.0.0.1:4222" })),
        (nc) => Effect.promise(() => nc.close())
      )
      const jsm = yield* Effect.promise(() => jetstreamManager(nc))
      yield* Effect.acquireRelease(
        Effect.promise(() => jsm.streams.add({ name: stream, subjects: [`u${suffix}.>`] })),
        () => Effect.promise(() => jsm.streams.delete(stream).catch(() => false))
      )
      const deadLetters: Array<{ reason: string; body: string }> = []
      const sub = nc.subscribe(deadLetterSubject, {
        callback: (_error, message) => {
          deadLetters.push({ reason: message.headers?.get("Weft-Dead-Letter-Reason") ?? "", body: message.string() })
        }
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
      const delivery = makeDelivery()
      // Closed before the stream and the connection above.
      const scope = yield* Effect.acquireRelease(Scope.make(), (scope) => Scope.close(scope, Exit.void))
      const source = Nats.make({
        servers: ["nats://127.0.0.1:4222"],
        stream,
        durable: "weft-unit",
        deadLetterSubject,
        holdMs: 2000,
        connectionName: "weft-unit"
      })
      yield* Consumer.start(source, { maxInFlight: 8, holdMs: 2000, drainMs: 100 }).pipe(
        Effect.provide(pipelineLayer(delivery)),
        Scope.extend(scope)
      )
      // The consumer is created with deliver policy `new`: publish once it exists.
      yield* Effect.promise(async () => {
        for (let tries = 0; tries < 100; tries++) {
          if (await jsm.consumers.info(stream, "weft-unit").then(() => true, () => false)) return
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      })
      const js = jetstream(nc)
      yield* Effect.promise(() => js.publish(`u${suffix}.a`, "{poison"))
      for (let n = 0; n < 3; n++) yield* Effect.promise(() => js.publish(`u${suffix}.a`, JSON.stringify({ to: { users: ["1"] }, data: n })))
      for (let tries = 0; tries < 200 && !(delivery.sent.length === 3 && deadLetters.length >= 1); tries++) yield* Effect.sleep("25 millis")
      expect(deadLetters).toEqual([{ reason: "envelope", body: "{poison" }])
      expect(delivery.sent.map((sent) => sent.data)).toEqual([0, 1, 2])
      // Past the ack wait: nothing is pending, and the poison did not come back.
      yield* Effect.sleep("2500 millis")
      const info = yield* Effect.promise(() => jsm.consumers.info(stream, "weft-unit"))
      expect(info.num_ack_pending).toBe(0)
      expect(info.num_redelivered).toBe(0)
      expect(deadLetters).toHaveLength(1)
    }), 30_000)
})
