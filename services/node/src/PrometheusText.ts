/**
 * Effect's metric registry (`Metric.snapshot`) in the Prometheus text
 * exposition format 0.0.4, what `GET /metrics` serves.
 *
 * Why this and not prom-client: every package records on Effect's own
 * registry (`Metric.counter`, `Metric.gauge`, `Metric.histogram` with
 * `Metric.tagged`), as @weft/actor and @effect/cluster already do, so the
 * libraries depend on no metrics library and tests read values with
 * `Metric.value`. prom-client keeps a registry of its own: using it would mean
 * either recording twice or copying Effect's registry into prom-client's on
 * every scrape. The format itself is small and stable, so one renderer over
 * the snapshot is less code and one source of truth.
 *
 * Mapping of Effect's metric types:
 * - counter: `counter` (a non-incremental counter, which may go down, is a `gauge`);
 * - gauge: `gauge`;
 * - histogram: `histogram`, `<name>_bucket{le="..."}` cumulative (Effect's buckets already
 *   are) ending with `le="+Inf"` = count, then `<name>_sum` and `<name>_count`;
 * - summary: `summary`, `<name>{quantile="..."}` (NaN while a quantile has no data), `_sum`, `_count`;
 * - frequency: a `counter` with one series per observed word, in the label `key`.
 *
 * Names are sanitized to `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names to
 * `[a-zA-Z_][a-zA-Z0-9_]*` (no leading `__`, which Prometheus reserves); label
 * values and help text are escaped. Families and series are sorted, so the
 * output is stable. When two registry keys sanitize to one name with different
 * types, the first type (in name order) wins and the others are left out,
 * since a name has one type in the format.
 */
import { MetricKeyType, MetricState, Option } from "effect"
import type { MetricPair } from "effect"

/** The `Content-Type` of the exposition format 0.0.4. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

type Type = "counter" | "gauge" | "histogram" | "summary"

interface Series {
  /** Rendered label pairs without braces, `a="1",b="2"`, sorted by name. */
  readonly labels: string
  readonly lines: ReadonlyArray<string>
}

interface Family {
  readonly name: string
  readonly type: Type
  help: string | undefined
  readonly series: Map<string, Series>
}

/** A metric name Prometheus accepts. */
export const sanitizeName = (name: string): string => {
  const replaced = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return replaced.length === 0 || /^[0-9]/.test(replaced) ? `_${replaced}` : replaced
}

/** A label name Prometheus accepts (and does not reserve). */
export const sanitizeLabelName = (name: string): string => {
  let replaced = name.replace(/[^a-zA-Z0-9_]/g, "_")
  if (replaced.length === 0 || /^[0-9]/.test(replaced)) replaced = `_${replaced}`
  while (replaced.startsWith("__")) replaced = replaced.slice(1)
  return replaced
}

/** Escapes a label value: backslash, double quote and line feed. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** Escapes `# HELP` text: backslash and line feed. */
export const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** A sample value: integers and floats as JavaScript prints them, `NaN`, `+Inf`, `-Inf`. */
export const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

/** Label pairs, deduplicated by (sanitized) name with the last value winning, sorted by name. */
const renderLabels = (
  tags: ReadonlyArray<{ readonly key: string; readonly value: string }>,
  reserved: string | undefined
): string => {
  const byName = new Map<string, string>()
  for (const tag of tags) {
    const name = sanitizeLabelName(tag.key)
    if (name !== reserved) byName.set(name, tag.value)
  }
  return Array.from(byName.entries())
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}="${escapeLabelValue(value)}"`)
    .join(",")
}

const withLabels = (labels: string, extra?: string): string => {
  const all = labels.length === 0 ? extra ?? "" : extra === undefined ? labels : `${labels},${extra}`
  return all.length === 0 ? "" : `{${all}}`
}

const typeOf = (keyType: MetricKeyType.MetricKeyType<unknown, unknown>): Type | undefined => {
  if (MetricKeyType.isCounterKey(keyType)) return keyType.incremental ? "counter" : "gauge"
  if (MetricKeyType.isGaugeKey(keyType)) return "gauge"
  if (MetricKeyType.isHistogramKey(keyType)) return "histogram"
  if (MetricKeyType.isSummaryKey(keyType)) return "summary"
  if (MetricKeyType.isFrequencyKey(keyType)) return "counter"
  return undefined
}

/** The sample lines of one registry entry; several for a frequency (one series per word). */
const seriesOf = (name: string, labels: (reserved?: string) => string, state: unknown): ReadonlyArray<Series> => {
  if (MetricState.isCounterState(state)) {
    const rendered = labels()
    return [{ labels: rendered, lines: [`${name}${withLabels(rendered)} ${formatValue(state.count)}`] }]
  }
  if (MetricState.isGaugeState(state)) {
    const rendered = labels()
    return [{ labels: rendered, lines: [`${name}${withLabels(rendered)} ${formatValue(state.value)}`] }]
  }
  if (MetricState.isHistogramState(state)) {
    const rendered = labels("le")
    const lines: Array<string> = []
    for (const [boundary, cumulative] of state.buckets) {
      // Effect's boundaries end with +Inf; the format's +Inf bucket is written from `count` below.
      if (!Number.isFinite(boundary)) continue
      lines.push(`${name}_bucket${withLabels(rendered, `le="${formatValue(boundary)}"`)} ${formatValue(cumulative)}`)
    }
    lines.push(`${name}_bucket${withLabels(rendered, `le="+Inf"`)} ${formatValue(state.count)}`)
    lines.push(`${name}_sum${withLabels(rendered)} ${formatValue(state.sum)}`)
    lines.push(`${name}_count${withLabels(rendered)} ${formatValue(state.count)}`)
    return [{ labels: rendered, lines }]
  }
  if (MetricState.isSummaryState(state)) {
    const rendered = labels("quantile")
    const lines: Array<string> = []
    for (const [quantile, value] of state.quantiles) {
      lines.push(
        `${name}${withLabels(rendered, `quantile="${formatValue(quantile)}"`)} ${formatValue(Option.getOrElse(value, () => Number.NaN))}`
      )
    }
    lines.push(`${name}_sum${withLabels(rendered)} ${formatValue(state.sum)}`)
    lines.push(`${name}_count${withLabels(rendered)} ${formatValue(state.count)}`)
    return [{ labels: rendered, lines }]
  }
  if (MetricState.isFrequencyState(state)) {
    const base = labels("key")
    return Array.from(state.occurrences.entries()).map(([word, count]) => {
      const rendered = base.length === 0 ? `key="${escapeLabelValue(word)}"` : `${base},key="${escapeLabelValue(word)}"`
      return { labels: rendered, lines: [`${name}{${rendered}} ${formatValue(count)}`] }
    })
  }
  return []
}

/** Renders a registry snapshot (`Metric.snapshot`, `Metric.unsafeSnapshot()`) as exposition text. */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) {
    const key = pair.metricKey
    const type = typeOf(key.keyType)
    if (type === undefined) continue
    const name = sanitizeName(key.name)
    let family = families.get(name)
    if (family === undefined) {
      family = { name, type, help: undefined, series: new Map() }
      families.set(name, family)
    } else if (family.type !== type) {
      continue
    }
    if (family.help === undefined && Option.isSome(key.description) && key.description.value.length > 0) {
      family.help = key.description.value
    }
    const labels = (reserved?: string) => renderLabels(key.tags, reserved)
    for (const series of seriesOf(name, labels, pair.metricState)) {
      if (!family.series.has(series.labels)) family.series.set(series.labels, series)
    }
  }
  const out: Array<string> = []
  for (const family of Array.from(families.values()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (family.help !== undefined) out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    out.push(`# TYPE ${family.name} ${family.type}`)
    const series = Array.from(family.series.values()).sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0))
    for (const one of series) out.push(...one.lines)
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}
