/**
 * The service API's metrics, on Effect's `Metric` registry (the node renders
 * them at `/metrics`).
 */
import { ClusterMetrics } from "@weft/cluster"
import { Clock, Effect, Metric, MetricBoundaries, MetricLabel } from "effect"

/**
 * Seconds the service API's handlers took, by `rpc` tag (`notify.toUser`, `rooms.send`, ...)
 * and `outcome` (`ok`, `error`: an `ApiError` answer, `defect`, `interrupted`). Measured around
 * the handler, after the call was decoded and its credential checked.
 */
export const callDuration = Metric.histogram(
  "weft_api_call_duration_seconds",
  MetricBoundaries.fromIterable([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Seconds a service API call's handler took, by rpc tag and outcome"
)

const noTimeout = () => false

/**
 * `handlers` (what `WeftApi.toLayer` takes) with each call timed in `callDuration`. A handler
 * that returns something other than an Effect (a stream) is passed through untimed.
 *
 * @example
 * export const layer = WeftApi.toLayer(Effect.succeed(ApiMetrics.instrument({ "notify.toUser": ... })))
 */
export const instrument = <Handlers extends Record<string, (...args: ReadonlyArray<any>) => unknown>>(
  handlers: Handlers
): Handlers => {
  const timed: Record<string, (...args: ReadonlyArray<any>) => unknown> = {}
  for (const [tag, handler] of Object.entries(handlers)) {
    const byOutcome = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
    const labels = (outcome: string) => {
      let found = byOutcome.get(outcome)
      if (found === undefined) {
        found = [MetricLabel.make("rpc", tag), MetricLabel.make("outcome", outcome)]
        byOutcome.set(outcome, found)
      }
      return found
    }
    timed[tag] = (...args) => {
      const result = handler(...args)
      if (!Effect.isEffect(result)) return result
      return Effect.flatMap(Clock.currentTimeNanos, (start) =>
        Effect.onExit(result, (exit) =>
          Effect.flatMap(Clock.currentTimeNanos, (end) =>
            Effect.sync(() =>
              callDuration.unsafeUpdate(Number(end - start) / 1e9, labels(ClusterMetrics.outcomeOf(exit, noTimeout)))
            ))))
    }
  }
  return timed as Handlers
}
