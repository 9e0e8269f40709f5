/**
 * docs/ops: the Grafana dashboard is a valid dashboard model over a Prometheus
 * data source variable, and it and the metrics table name only metrics that a
 * node serves; every Weft and process metric a node serves is in the table.
 */
import { ClusterMetrics as EffectClusterMetrics } from "@effect/cluster"
import { describe, expect, it } from "@effect/vitest"
import { ActorMetrics } from "@weft/actor"
import { ApiMetrics } from "@weft/api/server"
import { ClusterMetrics } from "@weft/cluster"
import { GatewayMetrics } from "@weft/gateway"
import { IngestMetrics } from "@weft/ingest"
import { Effect, Metric, MetricLabel } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { repoRoot } from "../../../test/support/bunNode.ts"
import { parse } from "../../../test/support/prometheus.ts"
import * as Metrics from "../src/Metrics.ts"

const docs = join(repoRoot, "docs", "ops")

/** Records every metric once, as a node with traffic would, and scrapes the registry. */
const served = Effect.gen(function*() {
  const kind = [MetricLabel.make("kind", "docs-test")]
  const reason = [...kind, MetricLabel.make("reason", "stopped")]
  ActorMetrics.actorsAlive.unsafeUpdate(1, kind)
  ActorMetrics.messagesHandled.unsafeUpdate(1, kind)
  ActorMetrics.mailboxDepth.unsafeUpdate(0, kind)
  ActorMetrics.crashes.unsafeUpdate(1, kind)
  ActorMetrics.restarts.unsafeUpdate(1, kind)
  ActorMetrics.stops.unsafeUpdate(1, reason)
  ActorMetrics.deadLetters.unsafeUpdate(1, reason)
  GatewayMetrics.recordIn("publish")
  GatewayMetrics.recordOut("message", 1)
  GatewayMetrics.recordDropped("message")
  GatewayMetrics.recordFanout(0, 1)
  ClusterMetrics.recordEntityCall("room", "ok", 0.001)
  ClusterMetrics.recordRegistryOperation("refresh", "ok")
  ClusterMetrics.recordRedisError("commands", "connection")
  IngestMetrics.recordConsumed("nats", true)
  IngestMetrics.recordDelivered("nats", false)
  IngestMetrics.recordDelivered("nats", true)
  IngestMetrics.recordExpired("nats")
  IngestMetrics.recordDeadLettered("nats", "envelope")
  IngestMetrics.recordRetried("nats")
  IngestMetrics.setLag("nats", 0)
  IngestMetrics.setInFlight("nats", 0)
  IngestMetrics.recordAge("nats", 0, 1)
  yield* Metric.update(ApiMetrics.callDuration.pipe(Metric.tagged("rpc", "docs.test"), Metric.tagged("outcome", "ok")), 0.001)
  yield* Metric.set(Metrics.eventLoopLag, 0)
  yield* Metric.set(Metrics.nodeInfo.pipe(Metric.tagged("node", "n"), Metric.tagged("roles", "gateway"), Metric.tagged("version", "0")), 1)
  // Recorded by @effect/cluster and Effect's runtime in a node.
  for (
    const metric of [
      EffectClusterMetrics.entities,
      EffectClusterMetrics.shards,
      EffectClusterMetrics.runners,
      EffectClusterMetrics.runnersHealthy,
      EffectClusterMetrics.singletons
    ]
  ) yield* Metric.value(metric)
  yield* Metric.value(Metric.fiberStarted)
  yield* Metric.value(Metric.fiberSuccesses)
  yield* Metric.value(Metric.fiberFailures)
  yield* Metric.value(Metric.fiberActive)
  yield* Metric.value(Metric.fiberLifetimes)
  return parse(yield* Metrics.scrape)
})

interface Target {
  readonly expr: string
  readonly datasource: { readonly type: string; readonly uid: string }
}
interface Panel {
  readonly type: string
  readonly title: string
  readonly gridPos: { readonly h: number; readonly w: number; readonly x: number; readonly y: number }
  readonly datasource?: { readonly type: string; readonly uid: string }
  readonly targets?: ReadonlyArray<Target>
}

describe("docs/ops", () => {
  it.effect("the Grafana dashboard queries Prometheus through a variable, and only metrics a node serves", () =>
    Effect.gen(function*() {
      const dashboard = JSON.parse(readFileSync(join(docs, "grafana-weft.json"), "utf8")) as {
        readonly title: string
        readonly uid: string
        readonly schemaVersion: number
        readonly templating: { readonly list: ReadonlyArray<{ readonly name: string; readonly type: string; readonly query: unknown }> }
        readonly panels: ReadonlyArray<Panel>
      }
      expect(dashboard.title).toBe("Weft")
      expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36)
      expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: "datasource", type: "datasource", query: "prometheus" }))
      const scrape = yield* served
      const names = new Set(scrape.families.map((family) => family.name))
      const histograms = new Set(scrape.families.filter((family) => family.type === "HISTOGRAM").map((family) => family.name))
      const panels = dashboard.panels.filter((panel) => panel.type !== "row")
      expect(new Set(panels.map((panel) => panel.title)).size).toBe(panels.length)
      const queried = new Set<string>()
      for (const panel of panels) {
        expect(panel.datasource).toEqual({ type: "prometheus", uid: "${datasource}" })
        expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24)
        expect(panel.targets?.length ?? 0).toBeGreaterThan(0)
        for (const target of panel.targets ?? []) {
          expect(target.datasource.uid).toBe("${datasource}")
          for (const [name] of target.expr.matchAll(/\b(?:weft|process|effect)_[a-z0-9_]+/g)) {
            const base = name.replace(/_(bucket|sum|count)$/, "")
            const family = name !== base && histograms.has(base) ? base : name
            expect(names, `${panel.title}: ${name}`).toContain(family)
            queried.add(family)
          }
        }
      }
      // What the issue asks the dashboard for.
      for (
        const name of [
          "weft_gateway_connections",
          "weft_actors_alive",
          "weft_actor_mailbox_depth",
          "weft_gateway_messages_in_total",
          "weft_gateway_messages_out_total",
          "weft_gateway_fanout_latency_seconds",
          "weft_entity_call_duration_seconds",
          "weft_api_call_duration_seconds",
          "weft_actor_restarts_total",
          "weft_registry_operations_total",
          "weft_redis_errors_total",
          "process_resident_memory_bytes"
        ]
      ) expect(queried).toContain(name)
    }))

  it.effect("the metrics table lists every Weft and process metric a node serves, and nothing else", () =>
    Effect.gen(function*() {
      const readme = readFileSync(join(docs, "README.md"), "utf8")
      const documented = new Set(
        readme.split("\n").filter((line) => line.startsWith("| `")).flatMap((line) =>
          Array.from(line.split("|")[1]!.matchAll(/`([a-z_:][a-z0-9_:]*)`/g), (match) => match[1]!)
        )
      )
      const scrape = yield* served
      const names = scrape.families.map((family) => family.name)
      for (const name of names.filter((name) => /^(weft|process)_/.test(name))) expect(documented, name).toContain(name)
      for (const name of documented) expect(names, name).toContain(name)
    }))
})
