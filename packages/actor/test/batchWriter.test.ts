/** BatchWriter: call order kept, batches gathered while a write is in flight, results and failures per batch, shutdown. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { BatchWriter } from "../src/index.ts"

describe("BatchWriter", () => {
  it.scoped("writes in call order, gathering what arrives during a write into the next batch", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<number>> = []
      const gate = yield* Deferred.make<void>()
      const writer = yield* BatchWriter.make<number, string, never>({
        maxBatch: 4,
        write: (batch) =>
          Effect.gen(function*() {
            // The first write waits for the gate, so the next items pile up behind it.
            if (batches.length === 0) yield* Deferred.await(gate)
            batches.push(batch)
            return batch.map((n) => `stored ${n}`)
          })
      })
      const first = yield* Effect.fork(writer.submit(0))
      yield* Effect.yieldNow()
      // submit queues when it is called, not when its effect runs: the order is the call order.
      const later = [1, 2, 3, 4, 5, 6].map((n) => writer.submit(n))
      writer.offer(7)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(first)).toBe("stored 0")
      expect(yield* Effect.all(later)).toEqual([1, 2, 3, 4, 5, 6].map((n) => `stored ${n}`))
      expect(batches).toEqual([[0], [1, 2, 3, 4], [5, 6, 7]])
    }))

  it.scoped("a failed write fails its own batch only", () =>
    Effect.gen(function*() {
      let calls = 0
      const writer = yield* BatchWriter.make<number, number, string>({
        maxBatch: 10,
        write: (batch) => (calls++ === 0 ? Effect.fail("disk full") : Effect.succeed(batch.map((n) => n * 10)))
      })
      expect(yield* Effect.flip(writer.submit(1))).toBe("disk full")
      expect(yield* writer.submit(2)).toBe(20)
    }))

  it.effect("when its scope closes, queued items and later submits complete as interrupted", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const writer = yield* BatchWriter.make<number, number, never>({ maxBatch: 1, write: () => Effect.never }).pipe(
        Scope.extend(scope)
      )
      const inFlight = writer.submit(1)
      const queued = writer.submit(2)
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      expect(Exit.isInterrupted(yield* Effect.exit(inFlight))).toBe(true)
      expect(Exit.isInterrupted(yield* Effect.exit(queued))).toBe(true)
      expect(Exit.isInterrupted(yield* Effect.exit(writer.submit(3)))).toBe(true)
    }))
})
