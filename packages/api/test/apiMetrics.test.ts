/**
 * `ApiMetrics.instrument`: each service API handler's calls are timed in
 * `weft_api_call_duration_seconds` by rpc tag and outcome; what a handler
 * returns is unchanged.
 */
import { describe, expect, it } from "@effect/vitest"
import { ApiMetrics } from "@weft/api/server"
import { Effect, Exit, Metric, Stream } from "effect"

const countOf = (rpc: string, outcome: string) =>
  Effect.map(
    Metric.value(ApiMetrics.callDuration.pipe(Metric.tagged("rpc", rpc), Metric.tagged("outcome", outcome))),
    (state) => state.count
  )

describe("ApiMetrics.instrument", () => {
  it.effect("times each call by rpc tag and outcome, and passes results and non-Effect results through", () =>
    Effect.gen(function*() {
      const stream = Stream.make(1, 2)
      const handlers = ApiMetrics.instrument({
        "test.ok": (payload: { readonly n: number }) => Effect.succeed(payload.n * 2),
        "test.error": () => Effect.fail("refused"),
        "test.defect": () => Effect.die("boom"),
        "test.stream": () => stream
      })
      expect(yield* handlers["test.ok"]({ n: 21 })).toBe(42)
      expect(yield* handlers["test.ok"]({ n: 1 })).toBe(2)
      expect(yield* Effect.exit(handlers["test.error"]())).toEqual(Exit.fail("refused"))
      expect(Exit.isFailure(yield* Effect.exit(handlers["test.defect"]()))).toBe(true)
      expect(handlers["test.stream"]()).toBe(stream)

      expect(yield* countOf("test.ok", "ok")).toBe(2)
      expect(yield* countOf("test.ok", "error")).toBe(0)
      expect(yield* countOf("test.error", "error")).toBe(1)
      expect(yield* countOf("test.defect", "defect")).toBe(1)
      expect(yield* countOf("test.stream", "ok")).toBe(0)
    }))
})
