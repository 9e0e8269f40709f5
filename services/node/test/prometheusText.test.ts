/**
 * The `/metrics` renderer: Effect's registry in the Prometheus text format
 * 0.0.4, checked line by line and parsed back with parse-prometheus-text-format.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Metric, MetricBoundaries, MetricKey, MetricPair, MetricState } from "effect"
import { ClusterMetrics } from "@weft/cluster"
import { GatewayMetrics } from "@weft/gateway"
import { assertWellFormed, parse } from "../../../test/support/prometheus.ts"
import * as PrometheusText from "../src/PrometheusText.ts"

/** The registry's entries whose name starts with `prefix` (every test uses names of its own: the registry is global). */
const snapshotOf = (prefix: string) =>
  Effect.map(Metric.snapshot, (pairs) => pairs.filter((pair) => pair.metricKey.name.startsWith(prefix)))

const render = (prefix: string) => Effect.map(snapshotOf(prefix), PrometheusText.render)

describe("PrometheusText", () => {
  it.effect("counters: TYPE counter, one sample per label set; a non-incremental counter is a gauge", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("pt_counter_requests_total", { description: "Requests handled", incremental: true })
      yield* Metric.incrementBy(Metric.tagged(requests, "route", "a"), 3)
      yield* Metric.incrementBy(Metric.tagged(requests, "route", "b"), 2)
      yield* Metric.increment(Metric.tagged(requests, "route", "b"))
      const balance = Metric.counter("pt_counter_balance", { description: "Goes both ways" })
      yield* Metric.incrementBy(balance, -4)
      const big = Metric.counter("pt_counter_big_total", { bigint: true, incremental: true })
      yield* Metric.incrementBy(big, 12345678901234567890n)

      const text = yield* render("pt_counter_")
      expect(text).toContain("# HELP pt_counter_requests_total Requests handled\n# TYPE pt_counter_requests_total counter\n")
      expect(text).toContain(`pt_counter_requests_total{route="a"} 3\npt_counter_requests_total{route="b"} 3\n`)
      expect(text).toContain("# TYPE pt_counter_balance gauge\npt_counter_balance -4\n")
      expect(text).toContain("pt_counter_big_total 12345678901234567890\n")
      // No HELP line for a metric without a description.
      expect(text).not.toContain("# HELP pt_counter_big_total")

      const scrape = parse(text)
      expect(scrape.type("pt_counter_requests_total")).toBe("COUNTER")
      expect(scrape.help("pt_counter_requests_total")).toBe("Requests handled")
      expect(scrape.total("pt_counter_requests_total", { route: "b" })).toBe(3)
      expect(scrape.total("pt_counter_requests_total")).toBe(6)
      expect(scrape.type("pt_counter_balance")).toBe("GAUGE")
      expect(scrape.total("pt_counter_balance")).toBe(-4)
      expect(scrape.samples("pt_counter_big_total")[0]?.value).toBe(12345678901234567890)
    }))

  it.effect("gauges: last value per label set, labels sorted by name", () =>
    Effect.gen(function*() {
      const depth = Metric.gauge("pt_gauge_depth", { description: "Queue depth" })
      yield* Metric.set(depth.pipe(Metric.tagged("zone", "z1"), Metric.tagged("kind", "room")), 7)
      yield* Metric.set(depth.pipe(Metric.tagged("zone", "z1"), Metric.tagged("kind", "room")), 5)
      yield* Metric.set(depth.pipe(Metric.tagged("kind", "user")), 0.25)

      const text = yield* render("pt_gauge_")
      expect(text).toBe(
        "# HELP pt_gauge_depth Queue depth\n" +
          "# TYPE pt_gauge_depth gauge\n" +
          "pt_gauge_depth{kind=\"room\",zone=\"z1\"} 5\n" +
          "pt_gauge_depth{kind=\"user\"} 0.25\n"
      )
      const scrape = parse(text)
      expect(scrape.type("pt_gauge_depth")).toBe("GAUGE")
      expect(scrape.samples("pt_gauge_depth", { kind: "room" })).toEqual([{ labels: { kind: "room", zone: "z1" }, value: 5 }])
      expect(scrape.total("pt_gauge_depth", { kind: "user" })).toBe(0.25)
    }))

  it.effect("histograms: cumulative _bucket series ending at le=\"+Inf\" (the count), then _sum and _count", () =>
    Effect.gen(function*() {
      const latency = Metric.histogram(
        "pt_histogram_latency_seconds",
        MetricBoundaries.fromIterable([0.01, 0.1, 1]),
        "Latency"
      ).pipe(Metric.tagged("entity", "room"))
      for (const value of [0.005, 0.01, 0.05, 0.2, 0.7, 3, 12]) yield* Metric.update(latency, value)

      const text = yield* render("pt_histogram_")
      expect(text).toBe(
        "# HELP pt_histogram_latency_seconds Latency\n" +
          "# TYPE pt_histogram_latency_seconds histogram\n" +
          "pt_histogram_latency_seconds_bucket{entity=\"room\",le=\"0.01\"} 2\n" +
          "pt_histogram_latency_seconds_bucket{entity=\"room\",le=\"0.1\"} 3\n" +
          "pt_histogram_latency_seconds_bucket{entity=\"room\",le=\"1\"} 5\n" +
          "pt_histogram_latency_seconds_bucket{entity=\"room\",le=\"+Inf\"} 7\n" +
          "pt_histogram_latency_seconds_sum{entity=\"room\"} 15.965\n" +
          "pt_histogram_latency_seconds_count{entity=\"room\"} 7\n"
      )
      const scrape = parse(text)
      expect(scrape.type("pt_histogram_latency_seconds")).toBe("HISTOGRAM")
      const [series] = scrape.distributions("pt_histogram_latency_seconds", { entity: "room" })
      expect(series?.labels).toEqual({ entity: "room" })
      expect(series?.buckets).toEqual([[0.01, 2], [0.1, 3], [1, 5], [Number.POSITIVE_INFINITY, 7]])
      expect(series?.sum).toBeCloseTo(15.965, 9)
      expect(scrape.count("pt_histogram_latency_seconds")).toBe(7)
    }))

  it.effect("summaries: a quantile sample each (NaN without data), then _sum and _count", () =>
    Effect.gen(function*() {
      const sizes = Metric.summary({
        name: "pt_summary_sizes",
        maxAge: Duration.minutes(1),
        maxSize: 100,
        error: 0.01,
        quantiles: [0.5, 0.99],
        description: "Sizes"
      })
      for (const value of [1, 2, 3, 4, 5]) yield* Metric.update(sizes, value)
      const empty = Metric.summary({ name: "pt_summary_empty", maxAge: Duration.minutes(1), maxSize: 10, error: 0.01, quantiles: [0.5] })
      yield* Metric.value(empty)

      const text = yield* render("pt_summary_")
      expect(text).toContain("# TYPE pt_summary_sizes summary\n")
      expect(text).toContain("pt_summary_sizes_sum 15\npt_summary_sizes_count 5\n")
      expect(text).toContain("pt_summary_empty{quantile=\"0.5\"} NaN\n")
      const scrape = parse(text)
      expect(scrape.type("pt_summary_sizes")).toBe("SUMMARY")
      const [series] = scrape.distributions("pt_summary_sizes")
      expect(series?.quantiles.map(([q]) => q)).toEqual([0.5, 0.99])
      expect(series?.sum).toBe(15)
      expect(series?.count).toBe(5)
      // Effect's summary answers a quantile with a sample it holds, within `error`.
      expect([2, 3, 4]).toContain(series?.quantiles[0]?.[1])
      expect(scrape.distributions("pt_summary_empty")[0]?.quantiles).toEqual([[0.5, Number.NaN]])
    }))

  it.effect("frequencies: a counter with one series per word in the label `key`", () =>
    Effect.gen(function*() {
      const reasons = Metric.frequency("pt_frequency_reasons", { description: "Close reasons" })
      for (const word of ["policy", "heartbeat", "policy"]) yield* Metric.update(Metric.tagged(reasons, "role", "gw"), word)

      const text = yield* render("pt_frequency_")
      expect(text).toContain("# TYPE pt_frequency_reasons counter\n")
      expect(text).toContain("pt_frequency_reasons{role=\"gw\",key=\"heartbeat\"} 1\n")
      expect(text).toContain("pt_frequency_reasons{role=\"gw\",key=\"policy\"} 2\n")
      const scrape = parse(text)
      expect(scrape.type("pt_frequency_reasons")).toBe("COUNTER")
      expect(scrape.total("pt_frequency_reasons", { key: "policy" })).toBe(2)
      expect(scrape.total("pt_frequency_reasons", { role: "gw" })).toBe(3)
    }))

  it("escapes label values (backslash, double quote, line feed) and help text, and the parser reads them back", () => {
    const value = "C:\\dir\\\"quoted\"\nnext line"
    const key = MetricKey.gauge("pt_escape_gauge", { description: "Help with \\ and\na line feed" }).pipe(MetricKey.tagged("path", value))
    const text = PrometheusText.render([MetricPair.unsafeMake(key, MetricState.gauge(1))])
    expect(text).toBe(
      "# HELP pt_escape_gauge Help with \\\\ and\\na line feed\n" +
        "# TYPE pt_escape_gauge gauge\n" +
        "pt_escape_gauge{path=\"C:\\\\dir\\\\\\\"quoted\\\"\\nnext line\"} 1\n"
    )
    const scrape = parse(text)
    expect(scrape.samples("pt_escape_gauge")[0]?.labels).toEqual({ path: value })
    expect(scrape.help("pt_escape_gauge")).toBe("Help with \\ and\na line feed")
  })

  it("sanitizes metric and label names, and formats special values", () => {
    expect(PrometheusText.sanitizeName("weft.gateway-messages/in")).toBe("weft_gateway_messages_in")
    expect(PrometheusText.sanitizeName("1st_metric")).toBe("_1st_metric")
    expect(PrometheusText.sanitizeName("ns:sub_total")).toBe("ns:sub_total")
    expect(PrometheusText.sanitizeLabelName("time-unit")).toBe("time_unit")
    expect(PrometheusText.sanitizeLabelName("__reserved")).toBe("_reserved")
    expect(PrometheusText.sanitizeLabelName("a:b")).toBe("a_b")
    expect(PrometheusText.sanitizeLabelName("9lives")).toBe("_9lives")
    expect(PrometheusText.formatValue(Number.NaN)).toBe("NaN")
    expect(PrometheusText.formatValue(Number.POSITIVE_INFINITY)).toBe("+Inf")
    expect(PrometheusText.formatValue(Number.NEGATIVE_INFINITY)).toBe("-Inf")
    expect(PrometheusText.formatValue(1e-7)).toBe("1e-7")

    const key = MetricKey.counter("pt-names.odd metric", { incremental: true }).pipe(
      MetricKey.tagged("time-unit", "ms"),
      MetricKey.tagged("__name", "x")
    )
    const text = PrometheusText.render([MetricPair.unsafeMake(key, MetricState.counter(1))])
    expect(text).toBe("# TYPE pt_names_odd_metric counter\npt_names_odd_metric{_name=\"x\",time_unit=\"ms\"} 1\n")
    expect(parse(text).total("pt_names_odd_metric", { time_unit: "ms" })).toBe(1)
  })

  it("keeps one type per name: a key that sanitizes onto another name with a different type is left out", () => {
    const counter = MetricKey.counter("pt_clash", { incremental: true })
    const gauge = MetricKey.gauge("pt.clash").pipe(MetricKey.tagged("k", "v"))
    const other = MetricKey.counter("pt_clash", { incremental: true }).pipe(MetricKey.tagged("k", "w"))
    const text = PrometheusText.render([
      MetricPair.unsafeMake(counter, MetricState.counter(1)),
      MetricPair.unsafeMake(gauge, MetricState.gauge(2)),
      MetricPair.unsafeMake(other, MetricState.counter(3))
    ])
    expect(text).toBe("# TYPE pt_clash counter\npt_clash 1\npt_clash{k=\"w\"} 3\n")
    assertWellFormed(text)
  })

  it("renders nothing for an empty registry", () => {
    expect(PrometheusText.render([])).toBe("")
    expect(PrometheusText.contentType).toBe("text/plain; version=0.0.4; charset=utf-8")
  })

  it.effect("the whole registry, with the gateway's and the cluster's metrics recorded, is well-formed and parses", () =>
    Effect.gen(function*() {
      GatewayMetrics.recordIn("publish")
      GatewayMetrics.recordOut("message", 4)
      GatewayMetrics.recordFanout(1_000, 1_003)
      GatewayMetrics.recordFanout(2_000, 1_000) // clock skew: counted as 0
      ClusterMetrics.recordEntityCall("room", "ok", 0.002)
      ClusterMetrics.recordRegistryOperation("refresh", "ok")
      ClusterMetrics.recordRedisError("commands", "command")
      const scrape = parse(PrometheusText.render(yield* Metric.snapshot))
      expect(scrape.total("weft_gateway_messages_in_total", { type: "publish" })).toBeGreaterThanOrEqual(1)
      expect(scrape.total("weft_gateway_messages_out_total", { type: "message" })).toBeGreaterThanOrEqual(4)
      const [fanout] = scrape.distributions("weft_gateway_fanout_latency_seconds")
      expect(fanout?.count).toBeGreaterThanOrEqual(2)
      // Both samples (3 ms, and a skewed one clamped to 0) are in the 5 ms bucket.
      expect(fanout?.buckets.find(([le]) => le === 0.005)?.[1]).toBeGreaterThanOrEqual(2)
      expect(scrape.count("weft_entity_call_duration_seconds", { entity: "room", outcome: "ok" })).toBeGreaterThanOrEqual(1)
      expect(scrape.total("weft_registry_operations_total", { operation: "refresh", outcome: "ok" })).toBeGreaterThanOrEqual(1)
      expect(scrape.total("weft_redis_errors_total", { connection: "commands", source: "command" })).toBeGreaterThanOrEqual(1)
      expect(scrape.type("weft_gateway_connections")).toBe("GAUGE")
      // Every histogram's buckets are cumulative and end at +Inf with the count.
      const histograms = scrape.families.filter((f) => f.type === "HISTOGRAM")
      expect(histograms.length).toBeGreaterThanOrEqual(2)
      for (const f of histograms) {
        for (const series of scrape.distributions(f.name)) {
          for (let i = 1; i < series.buckets.length; i++) expect(series.buckets[i]![1]).toBeGreaterThanOrEqual(series.buckets[i - 1]![1])
          expect(series.buckets.at(-1)).toEqual([Number.POSITIVE_INFINITY, series.count])
        }
      }
    }))
})
