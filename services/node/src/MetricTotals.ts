/**
 * The figures a node's stats report carries from its metric registry (Effect
 * `Metric`, the same series `/metrics` shows): frames in and out of the
 * gateway, actor restarts, and the fan-out latency histogram. Counters are
 * summed over their labels (frame types, actor kinds) and sent as totals
 * since the node started: whoever reads the reports (the dashboard) computes
 * rates and recent percentiles from two of them.
 */
import { Effect, Metric, MetricState } from "effect"
import type { MetricPair } from "effect"
import type { NodeStats } from "@weft/cluster"

/**
 * The registry names of the series read here: `GatewayMetrics` (@weft/gateway) and `ActorMetrics`
 * (@weft/actor) define them; the test records through those modules and reads back here, so a
 * rename fails it.
 */
export const names = {
  messagesIn: "weft_gateway_messages_in_total",
  messagesOut: "weft_gateway_messages_out_total",
  restarts: "weft_actor_restarts_total",
  fanoutLatency: "weft_gateway_fanout_latency_seconds"
} as const

export type Totals = Required<Pick<NodeStats.Report, "messagesIn" | "messagesOut" | "restarts" | "fanoutLatency">>

const counterTotal = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>, name: string): number => {
  let total = 0
  for (const pair of pairs) {
    const state = pair.metricState
    if (pair.metricKey.name === name && MetricState.isCounterState(state)) total += Number(state.count)
  }
  return total
}

/** The untagged histogram of that name, its finite buckets only (JSON has no Infinity; `count` covers the rest). */
const histogram = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>, name: string): Totals["fanoutLatency"] => {
  for (const pair of pairs) {
    const state = pair.metricState
    if (pair.metricKey.name === name && pair.metricKey.tags.length === 0 && MetricState.isHistogramState(state)) {
      return {
        count: state.count,
        buckets: state.buckets.filter(([le]) => Number.isFinite(le)).map(([le, count]) => [le, count] as const)
      }
    }
  }
  return { count: 0, buckets: [] }
}

/** Reads the totals now. */
export const read: Effect.Effect<Totals> = Effect.map(Metric.snapshot, (pairs) => ({
  messagesIn: counterTotal(pairs, names.messagesIn),
  messagesOut: counterTotal(pairs, names.messagesOut),
  restarts: counterTotal(pairs, names.restarts),
  fanoutLatency: histogram(pairs, names.fanoutLatency)
}))
