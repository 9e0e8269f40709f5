/** BatchLanes: each lane keeps call order and batches while busy; lanes are independent and vanish when idle. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope } from "effect"
import { BatchLanes } from "../src/index.ts"

describe("BatchLanes", () => {
  it.scoped("a lane sends in call order, one batch at a time; another lane does not wait for it", () =>
    Effect.gen(function*() {
      const sent: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const lanes = yield* BatchLanes.make<number, string, never>({
        maxBatch: 3,
        send: (lane, batch) =>
          Effect.gen(function*() {
            sent.push(`${lane}:${batch.join(",")}`)
            // Lane a's first batch waits for the gate, so its next items pile up behind it.
            if (lane === "a" && sent.filter((entry) => entry.startsWith("a:")).length === 1) yield* Deferred.await(gate)
            return batch.map((n) => `${lane}${n}`)
          })
      })
      // submit puts the item in line when it is called, not when its effect runs: call order.
      const a = [1, 2, 3, 4, 5].map((n) => lanes.submit("a", n))
      lanes.offer("a", 6)
      yield* Effect.yieldNow()
      const b = lanes.submit("b", 1)
      expect(yield* b).toBe("b1")
      expect(lanes.size()).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Effect.all(a)).toEqual(["a1", "a2", "a3", "a4", "a5"])
      expect(sent).toEqual(["a:1", "b:1", "a:2,3,4", "a:5,6"])
      expect(lanes.size()).toBe(0)
    }))

  it.scoped("a failed batch fails its own items; the lane goes on", () =>
    Effect.gen(function*() {
      let calls = 0
      const lanes = yield* BatchLanes.make<number, number, string>({
        maxBatch: 10,
        send: (_, batch) => (calls++ === 0 ? Effect.fail("room unavailable") : Effect.succeed(batch.map((n) => n * 2)))
      })
      expect(yield* Effect.flip(lanes.submit("a", 1))).toBe("room unavailable")
      expect(yield* lanes.submit("a", 2)).toBe(4)
    }))

  it.effect("when its scope closes, what waits is interrupted", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const lanes = yield* BatchLanes.make<number, number, never>({ maxBatch: 1, send: () => Effect.never }).pipe(Scope.extend(scope))
      const inFlight = lanes.submit("a", 1)
      const queued = lanes.submit("a", 2)
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      expect(Exit.isInterrupted(yield* Effect.exit(inFlight))).toBe(true)
      expect(Exit.isInterrupted(yield* Effect.exit(queued))).toBe(true)
    }))
})
