/**
 * Reading `/metrics` in tests: parsed with parse-prometheus-text-format (a port
 * of Prometheus' own prom2json / client_python parser), plus the stricter line
 * checks of the exposition format 0.0.4 that the parser is lenient about.
 */
import parsePrometheusTextFormat, { type ParsedFamily } from "parse-prometheus-text-format"

export type { ParsedFamily }

const name = "[a-zA-Z_:][a-zA-Z0-9_:]*"
const label = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`
const value = "(?:NaN|[+-]Inf|[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
const sampleLine = new RegExp(`^(${name})(?:\\{(?:${label}(?:,${label})*)?\\})? ${value}$`)
const typeLine = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`)
const helpLine = new RegExp(`^# HELP (${name}) .*$`)

/**
 * Throws unless `text` is well-formed exposition text: every line a HELP, a TYPE or a sample;
 * each family's HELP and TYPE at most once, before its samples; a family's samples together;
 * no label name twice in a series; the text ends with a line feed.
 */
export const assertWellFormed = (text: string): void => {
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("exposition text must end with a line feed")
  const typed = new Map<string, string>()
  const helped = new Set<string>()
  const finished = new Set<string>()
  let current: string | undefined
  const familyOf = (sample: string): string => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = sample.endsWith(suffix) ? sample.slice(0, -suffix.length) : undefined
      if (base !== undefined && (typed.get(base) === "histogram" || typed.get(base) === "summary")) return base
    }
    return sample
  }
  const enter = (family: string, line: string) => {
    if (current !== family) {
      if (finished.has(family)) throw new Error(`family ${family} is split: ${line}`)
      if (current !== undefined) finished.add(current)
      current = family
    }
  }
  for (const line of text.split("\n").slice(0, -1)) {
    const help = helpLine.exec(line)
    if (help !== null) {
      if (helped.has(help[1]!) || typed.has(help[1]!)) throw new Error(`HELP after TYPE or twice: ${line}`)
      helped.add(help[1]!)
      enter(help[1]!, line)
      continue
    }
    const type = typeLine.exec(line)
    if (type !== null) {
      if (typed.has(type[1]!)) throw new Error(`TYPE twice: ${line}`)
      typed.set(type[1]!, type[2]!)
      enter(type[1]!, line)
      continue
    }
    const sample = sampleLine.exec(line)
    if (sample === null) throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`)
    const family = familyOf(sample[1]!)
    if (!typed.has(family)) throw new Error(`sample before its TYPE: ${line}`)
    enter(family, line)
    const names = Array.from(line.matchAll(/[{,]([a-zA-Z_][a-zA-Z0-9_]*)="/g), (match) => match[1])
    if (new Set(names).size !== names.length) throw new Error(`a label twice: ${line}`)
  }
}

/** One sample line, as the parser read it: its labels unescaped, its value a number (`NaN`, `±Infinity` included). */
export interface Sample {
  readonly labels: Record<string, string>
  readonly value: number
}

/** One histogram or summary series: its labels (without `le` / `quantile`), buckets sorted by bound. */
export interface Distribution {
  readonly labels: Record<string, string>
  /** `[le, cumulative count]`, `+Inf` last (histograms). */
  readonly buckets: ReadonlyArray<readonly [number, number]>
  /** `[quantile, value]` (summaries). */
  readonly quantiles: ReadonlyArray<readonly [number, number]>
  readonly sum: number
  readonly count: number
}

export interface Scrape {
  /** The families as parse-prometheus-text-format reads the text (name, type, help). */
  readonly families: ReadonlyArray<ParsedFamily>
  readonly type: (name: string) => ParsedFamily["type"]
  readonly help: (name: string) => string
  /** The sample lines named exactly `name` (a histogram's are `<name>_bucket`, `_sum`, `_count`) whose labels include `labels`. */
  readonly samples: (name: string, labels?: Record<string, string>) => ReadonlyArray<Sample>
  /** The sum of those samples' values (0 when none match). */
  readonly total: (name: string, labels?: Record<string, string>) => number
  /** The series of histogram or summary `name` whose labels include `labels`. */
  readonly distributions: (name: string, labels?: Record<string, string>) => ReadonlyArray<Distribution>
  /** The summed `count` of those series (0 when none match). */
  readonly count: (name: string, labels?: Record<string, string>) => number
}

/** A value or `le` as the format writes it: Go's float syntax, with `+Inf`, `-Inf` and `NaN`. */
export const toNumber = (text: string | undefined): number => {
  if (text === undefined) return Number.NaN
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY
  if (text === "-Inf") return Number.NEGATIVE_INFINITY
  return Number(text)
}

const includes = (actual: Record<string, string>, wanted: Record<string, string>): boolean =>
  Object.entries(wanted).every(([key, value]) => actual[key] === value)

const without = (labels: Record<string, string>, name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(labels).filter(([key]) => key !== name))

/**
 * Checks the text (`assertWellFormed`) and parses it with parse-prometheus-text-format.
 *
 * The parser reads a family's type and help, and every sample line (label unescaping, values),
 * but it folds a histogram's or summary's series into one, dropping their labels (and `_sum` and
 * `_count` when labelled), which does not suit labelled histograms. So the text is parsed twice:
 * once as it is, for the families; once without its TYPE lines, where every line is a plain
 * sample the parser reads with its labels. Histograms and summaries are put together from those
 * samples here, grouped by their labels.
 */
export const parse = (text: string): Scrape => {
  assertWellFormed(text)
  const families = parsePrometheusTextFormat(text)
  const lines = parsePrometheusTextFormat(text.split("\n").filter((line) => !line.startsWith("# TYPE ")).join("\n"))
  const byName = new Map<string, Array<Sample>>()
  for (const parsed of lines) {
    const list = byName.get(parsed.name) ?? []
    for (const metric of parsed.metrics) list.push({ labels: { ...metric.labels }, value: toNumber(metric.value) })
    byName.set(parsed.name, list)
  }
  const familyOf = (name: string): ParsedFamily => {
    const found = families.find((f) => f.name === name)
    if (found === undefined) throw new Error(`no metric family ${name} in ${families.map((f) => f.name).join(", ")}`)
    return found
  }
  const samples = (name: string, labels: Record<string, string> = {}) =>
    (byName.get(name) ?? []).filter((sample) => includes(sample.labels, labels))
  const distributions = (name: string, labels: Record<string, string> = {}): ReadonlyArray<Distribution> => {
    familyOf(name)
    const series = new Map<string, {
      labels: Record<string, string>
      buckets: Array<readonly [number, number]>
      quantiles: Array<readonly [number, number]>
      sum: number
      count: number
    }>()
    const entry = (labels: Record<string, string>) => {
      const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))
      let found = series.get(key)
      if (found === undefined) {
        found = { labels, buckets: [], quantiles: [], sum: Number.NaN, count: Number.NaN }
        series.set(key, found)
      }
      return found
    }
    for (const sample of samples(`${name}_bucket`)) {
      entry(without(sample.labels, "le")).buckets.push([toNumber(sample.labels["le"]), sample.value])
    }
    for (const sample of samples(name)) {
      if (sample.labels["quantile"] !== undefined) {
        entry(without(sample.labels, "quantile")).quantiles.push([toNumber(sample.labels["quantile"]), sample.value])
      }
    }
    for (const sample of samples(`${name}_sum`)) entry(sample.labels).sum = sample.value
    for (const sample of samples(`${name}_count`)) entry(sample.labels).count = sample.value
    return Array.from(series.values())
      .filter((one) => includes(one.labels, labels))
      .map((one) => ({ ...one, buckets: one.buckets.sort(([a], [b]) => a - b) }))
  }
  return {
    families,
    type: (name) => familyOf(name).type,
    help: (name) => familyOf(name).help,
    samples,
    total: (name, labels) => samples(name, labels).reduce((sum, sample) => sum + sample.value, 0),
    distributions,
    count: (name, labels) => distributions(name, labels).reduce((sum, one) => sum + one.count, 0)
  }
}
