/**
 * `GET /metrics`: every metric on Effect's registry (the actor runtime's, the
 * gateway's, the cluster's, the service API's, @effect/cluster's own) plus
 * the process's, in the Prometheus text format (`PrometheusText`).
 *
 * Series carry no `node` label: each node serves its own `/metrics`, so the
 * scrape target (`instance`, and `pod` etc. from service discovery) already
 * tells nodes apart. `weft_node_info{node,roles,version} 1` maps a target to
 * its node id; join on it to show node ids:
 * `sum by (instance) (rate(weft_gateway_messages_in_total[1m])) * on (instance) group_left (node) weft_node_info`.
 *
 * Process metrics are read at scrape time; the event loop lag is sampled
 * twice a second by a timer that measures how late it fires.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect, Metric, MetricLabel, Schedule } from "effect"
import nodePackage from "../package.json" with { type: "json" }
import { NodeRoutes } from "./HttpServer.ts"
import { NodeConfigService } from "./NodeConfig.ts"
import * as PrometheusText from "./PrometheusText.ts"

export const path = "/metrics"

/** `1`, tagged with this node's id, roles (comma-separated) and Weft's version. */
export const nodeInfo = Metric.gauge("weft_node_info", { description: "This node: its id, roles and Weft version (always 1)" })

export const residentMemory = Metric.gauge("process_resident_memory_bytes", { description: "Resident memory size in bytes" })
export const heapUsed = Metric.gauge("process_heap_used_bytes", { description: "JavaScript heap in use, in bytes" })
export const heapTotal = Metric.gauge("process_heap_total_bytes", { description: "JavaScript heap allocated, in bytes" })
export const cpuSeconds = Metric.counter("process_cpu_seconds_total", {
  description: "User and system CPU time spent, in seconds",
  incremental: true
})
export const startTime = Metric.gauge("process_start_time_seconds", { description: "Start time of the process since the Unix epoch, in seconds" })
export const uptime = Metric.gauge("process_uptime_seconds", { description: "Seconds since the process started" })
export const eventLoopLag = Metric.gauge("weft_event_loop_lag_seconds", {
  description: "How late a timer set for 500 ms fired, last sample, in seconds"
})

const lagInterval = 500

/** Seconds of user and system CPU so far; the counter is advanced by the difference at each scrape. */
const cpuTotal = (): number => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

let cpuRecorded = 0

/** Sets the process gauges to their current values. */
const sampleProcess = Effect.sync(() => {
  const memory = process.memoryUsage()
  const none: ReadonlyArray<MetricLabel.MetricLabel> = []
  residentMemory.unsafeUpdate(memory.rss, none)
  heapUsed.unsafeUpdate(memory.heapUsed, none)
  heapTotal.unsafeUpdate(memory.heapTotal, none)
  const cpu = cpuTotal()
  if (cpu > cpuRecorded) {
    cpuSeconds.unsafeUpdate(cpu - cpuRecorded, none)
    cpuRecorded = cpu
  }
  const up = process.uptime()
  uptime.unsafeUpdate(up, none)
  startTime.unsafeUpdate(Math.round(Date.now() / 1000 - up), none)
})

/** One lag sample: how much later than `lagInterval` a timer fired. */
const sampleLag = Effect.async<number>((resume) => {
  const start = performance.now()
  const timer = setTimeout(() => resume(Effect.succeed(Math.max(0, performance.now() - start - lagInterval) / 1000)), lagInterval)
  return Effect.sync(() => clearTimeout(timer))
}).pipe(Effect.flatMap((lag) => Metric.set(eventLoopLag, lag)))

/** The exposition text of the whole registry, with the process metrics sampled now. */
export const scrape: Effect.Effect<string> = Effect.zipRight(sampleProcess, Effect.map(Metric.snapshot, PrometheusText.render))

/** The `/metrics` route, `weft_node_info` and the event loop lag sampler (in the route layer's scope). */
export const routes = NodeRoutes.use((router) =>
  Effect.gen(function*() {
    const config = yield* NodeConfigService
    yield* Metric.set(
      nodeInfo.pipe(
        Metric.tagged("node", config.nodeId),
        Metric.tagged("roles", config.roles.join(",")),
        Metric.tagged("version", nodePackage.version)
      ),
      1
    )
    // The series exists from the start; the first sample replaces this 0 after 500 ms.
    yield* Metric.set(eventLoopLag, 0)
    yield* Effect.forkScoped(Effect.repeat(sampleLag, Schedule.forever))
    yield* router.get(
      path,
      Effect.map(scrape, (body) => HttpServerResponse.text(body, { contentType: PrometheusText.contentType }))
    )
  })
)
