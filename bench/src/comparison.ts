/**
 * Results of the side-by-side scenarios (Weft against raw Bun, Socket.IO and ws):
 * rows of one figure per contender with Weft's ratio to each, the aims they are
 * held to, the table on stdout, the JSON file and the plot beside it, and the
 * index bench/results/README.md.
 *
 * A ratio is "Weft vs X", oriented so that 1.0 means as good and more means better:
 * Weft / X for throughput, X / Weft for latency and memory.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { ContenderId } from "./contenders.ts"
import { labels } from "./contenders.ts"
import { machine, resultPath, resultsDir } from "./report.ts"
import { renderPlot, type Plot } from "./svg.ts"

export interface Aim {
  readonly text: string
  /** Compare Weft's ratio to this contender with `atLeast`; without it, Weft's own value. */
  readonly vs?: ContenderId
  readonly atLeast?: number
  readonly atMost?: number
}

export interface ComparisonRow {
  /** The case: "1,000 subscribers, 100 msg/s". */
  readonly case: string
  readonly metric: string
  readonly unit: string
  readonly better: "higher" | "lower"
  /** One figure per contender that ran the case (absent: not run, or failed). */
  readonly values: Partial<Record<ContenderId, number>>
  readonly aims?: ReadonlyArray<Aim>
}

export interface ComparisonResult {
  readonly scenario: string
  readonly title: string
  readonly parameters: Record<string, unknown>
  readonly contenders: ReadonlyArray<ContenderId>
  readonly rows: ReadonlyArray<ComparisonRow>
  /** What limited or cut the run short (file descriptors, ports, a contender that failed). */
  readonly notes: ReadonlyArray<string>
  readonly plot: Plot
  /** Every raw figure: per contender and case, the load generator's result and each process's CPU and RSS. */
  readonly raw: Record<string, unknown>
}

/** Weft vs `other`, 1.0 = as good, more = better. */
export const ratioOf = (better: "higher" | "lower", weft: number | undefined, other: number | undefined): number | undefined => {
  if (weft === undefined || other === undefined || weft === 0 || other === 0) return undefined
  return better === "higher" ? weft / other : other / weft
}

export const aimMet = (row: ComparisonRow, aim: Aim): boolean | undefined => {
  const weft = row.values.weft
  const value = aim.vs === undefined ? weft : ratioOf(row.better, weft, row.values[aim.vs])
  if (value === undefined) return undefined
  if (aim.atLeast !== undefined && value < aim.atLeast) return false
  if (aim.atMost !== undefined && value > aim.atMost) return false
  return true
}

const fmt = (value: number | undefined): string => {
  if (value === undefined || !Number.isFinite(value)) return "-"
  const abs = Math.abs(value)
  if (abs >= 1000 || Number.isInteger(value)) return Math.round(value).toLocaleString("en-US")
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

const renderTable = (result: ComparisonResult): Array<string> => {
  const others = result.contenders.filter((c) => c !== "weft")
  const header = [
    "case",
    "metric",
    ...result.contenders.map((c) => labels[c]),
    ...others.map((c) => `Weft vs ${labels[c]}`),
    "aim"
  ]
  const lines = result.rows.map((row) => [
    row.case,
    `${row.metric} (${row.unit})`,
    ...result.contenders.map((c) => fmt(row.values[c])),
    ...others.map((c) => {
      const r = ratioOf(row.better, row.values.weft, row.values[c])
      return r === undefined ? "-" : `${r.toFixed(2)}x`
    }),
    (row.aims ?? []).map((aim) => {
      const met = aimMet(row, aim)
      return `${aim.text} ${met === undefined ? "(n/a)" : met ? "(met)" : "(NOT met)"}`
    }).join("; ")
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i]!.length)))
  const render = (cells: ReadonlyArray<string>) => cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ").trimEnd()
  const out = [render(header), widths.map((w) => "-".repeat(w)).join("  ")]
  let previousCase = ""
  for (const line of lines) {
    const shown = line[0] === previousCase ? ["", ...line.slice(1)] : line
    previousCase = line[0]!
    out.push(render(shown))
  }
  return out
}

export const printComparison = (result: ComparisonResult): void => {
  console.log(`\n${result.title}`)
  for (const line of renderTable(result)) console.log(line)
  for (const note of result.notes) console.log(`note: ${note}`)
}

/** Writes the JSON (every raw figure, the machine, the parameters) and the SVG beside it; returns both paths. */
export const writeComparison = (
  result: ComparisonResult,
  quick: boolean,
  versions: Record<string, string>,
  commands: Record<string, ReadonlyArray<ReadonlyArray<string>>> = {},
  serverOutput: Record<string, ReadonlyArray<string>> = {}
): { readonly json: string; readonly svg: string } => {
  const json = resultPath(result.scenario, "json", quick)
  const svg = resultPath(result.scenario, "svg", quick)
  const body = {
    scenario: result.scenario,
    title: result.title,
    quick,
    at: new Date().toISOString(),
    machine: { ...machine(), versions },
    parameters: result.parameters,
    /** The exact command line of every server process, by deployment (the JWT secret elided). */
    commands,
    contenders: result.contenders,
    rows: result.rows.map((row) => ({
      ...row,
      ratios: Object.fromEntries(
        result.contenders.filter((c) => c !== "weft").map((c) => [c, ratioOf(row.better, row.values.weft, row.values[c]) ?? null])
      ),
      aims: (row.aims ?? []).map((aim) => ({ ...aim, met: aimMet(row, aim) ?? null }))
    })),
    notes: result.notes,
    /** The last lines each server wrote, when it wrote any (Weft nodes log errors only). */
    serverOutput,
    table: renderTable(result),
    raw: result.raw
  }
  writeFileSync(json, `${JSON.stringify(body, null, 2)}\n`)
  writeFileSync(svg, renderPlot(result.plot))
  return { json, svg }
}

/** bench/results/README.md: the latest full-run file of each scenario, with its plot. */
export const writeIndex = (): string => {
  const files = readdirSync(resultsDir).filter((f) => /^\d{4}-\d{2}-\d{2}-.+\.json$/.test(f)).sort()
  const latest = new Map<string, string>()
  for (const file of files) latest.set(file.slice(11, -5), file)
  const order = ["fanout", "crossnode", "capacity", "loadtest", "storm", "actor", "cluster"]
  const scenarios = [...latest.keys()].sort((a, b) => {
    const ia = order.indexOf(a) === -1 ? order.length : order.indexOf(a)
    const ib = order.indexOf(b) === -1 ? order.length : order.indexOf(b)
    return ia - ib || a.localeCompare(b)
  })
  const lines = [
    "# Benchmark results",
    "",
    "Written by `npm run bench` (full runs only; `--quick` runs go to `quick/`, which git ignores).",
    "Each scenario's latest file is listed here; older ones stay beside them for comparison.",
    "How to run them and how to read them: [docs/performance.md](../../docs/performance.md).",
    "",
    "| scenario | latest results | plot | run on |",
    "| --- | --- | --- | --- |"
  ]
  for (const scenario of scenarios) {
    const file = latest.get(scenario)!
    const svg = file.replace(/\.json$/, ".svg")
    const hasSvg = readdirSync(resultsDir).includes(svg)
    lines.push(`| ${scenario} | [${file}](${file}) | ${hasSvg ? `[${svg}](${svg})` : "-"} | ${file.slice(0, 10)} |`)
  }
  const plots = scenarios.map((s) => latest.get(s)!.replace(/\.json$/, ".svg")).filter((svg) => readdirSync(resultsDir).includes(svg))
  if (plots.length > 0) {
    lines.push("", "## Plots", "")
    for (const svg of plots) lines.push(`### ${svg.slice(11, -4)}`, "", `![${svg}](${svg})`, "")
  }
  const path = join(resultsDir, "README.md")
  writeFileSync(path, `${lines.join("\n").trimEnd()}\n`)
  return path
}

const docPath = join(resultsDir, "..", "..", "docs", "performance.md")
const startMarker = "<!-- bench:latest:start -->"
const endMarker = "<!-- bench:latest:end -->"

/**
 * Rewrites the "latest results" section of docs/performance.md (between its markers) from the
 * latest side-by-side result files in `dir`: each scenario's table, notes, machine and plot.
 * A full run calls it with bench/results; `label` says which kind of run the figures are from.
 */
export const updatePerformanceDoc = (dir: string = resultsDir, label = "full run", preface: ReadonlyArray<string> = []): string | undefined => {
  if (!existsSync(docPath)) return undefined
  const doc = readFileSync(docPath, "utf8")
  const start = doc.indexOf(startMarker)
  const end = doc.indexOf(endMarker)
  if (start === -1 || end === -1 || end < start) return undefined
  const latest = new Map<string, string>()
  for (const file of readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}-.+\.json$/.test(f)).sort()) latest.set(file.slice(11, -5), file)
  const order = ["fanout", "crossnode", "capacity", "loadtest", "storm"]
  const parts: Array<string> = []
  for (const scenario of order) {
    const file = latest.get(scenario)
    if (file === undefined) continue
    const body = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
      title?: string
      at?: string
      table?: Array<string>
      notes?: Array<string>
      machine?: { cores?: number; cpu?: string; memoryBytes?: number; versions?: Record<string, string> }
    }
    if (body.table === undefined) continue
    const m = body.machine
    const v = m?.versions ?? {}
    parts.push(
      `### ${body.title ?? scenario}`,
      "",
      `${label}, ${body.at ?? file.slice(0, 10)}; ${m?.cores ?? "?"} cores (${m?.cpu ?? "?"}), ` +
        `${Math.round((m?.memoryBytes ?? 0) / 2 ** 30)} GiB; Bun ${v["bun"] ?? "?"}, Node ${v["node"] ?? "?"}, Redis ${v["redis"] ?? "?"}.` +
        (dir === resultsDir ? ` Raw figures: [${file}](../bench/results/${file}).` : ""),
      "",
      "```text",
      ...body.table,
      "```",
      "",
      ...(body.notes ?? []).map((note) => `- ${note}`),
      ...((body.notes ?? []).length > 0 ? [""] : []),
      ...(existsSync(join(dir, file.replace(/\.json$/, ".svg"))) && dir === resultsDir
        ? [`![${scenario}](../bench/results/${file.replace(/\.json$/, ".svg")})`, ""]
        : [])
    )
  }
  const section = parts.length === 0 ? ["No side-by-side results yet: run `npm run bench`.", ""] : [...preface, ...parts]
  const next = `${doc.slice(0, start + startMarker.length)}\n\n${section.join("\n").trimEnd()}\n\n${doc.slice(end)}`
  writeFileSync(docPath, next)
  return docPath
}
