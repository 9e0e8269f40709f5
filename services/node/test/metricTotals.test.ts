import { ActorMetrics } from "@weft/actor"
import { GatewayMetrics } from "@weft/gateway"
import { Effect, Metric } from "effect"
import { expect, it } from "vitest"
import * as MetricTotals from "../src/MetricTotals.ts"

// The report reads the metrics by their registry names: recording through the modules that define
// them and reading back here fails if either side renames a series.
it("reads the gateway's and the actors' metrics as totals over their labels", async () => {
  const before = await Effect.runPromise(MetricTotals.read)
  GatewayMetrics.recordIn("publish")
  GatewayMetrics.recordIn("rpc")
  GatewayMetrics.recordIn("rpc")
  GatewayMetrics.recordOut("message", 5)
  GatewayMetrics.recordFanout(1_000, 1_003) // 3 ms
  GatewayMetrics.recordFanout(1_000, 1_000)
  await Effect.runPromise(Metric.increment(Metric.tagged(ActorMetrics.restarts, "kind", "test-kind")))
  await Effect.runPromise(Metric.increment(Metric.tagged(ActorMetrics.restarts, "kind", "other-kind")))
  const after = await Effect.runPromise(MetricTotals.read)

  expect(after.messagesIn - before.messagesIn).toBe(3)
  expect(after.messagesOut - before.messagesOut).toBe(5)
  expect(after.restarts - before.restarts).toBe(2)
  expect(after.fanoutLatency.count - before.fanoutLatency.count).toBe(2)
  // Finite buckets only (a report is JSON), cumulative, in seconds.
  const buckets = after.fanoutLatency.buckets
  expect(buckets.length).toBeGreaterThan(3)
  expect(buckets.every(([le]) => Number.isFinite(le))).toBe(true)
  const upTo = (le: number) => buckets.find(([bound]) => bound === le)![1]
  expect(upTo(0.0025)).toBe(1) // the 0 ms one
  expect(upTo(0.005)).toBe(2) // and the 3 ms one
  expect(JSON.parse(JSON.stringify(after))).toEqual(after)
})
