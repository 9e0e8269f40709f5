/**
 * Bench output: a plain table on stdout and a JSON file per scenario in
 * bench/results/, with the machine and the exact parameters beside every figure.
 * `--quick` runs write to bench/results/quick/ (git-ignored), never over a full run's file.
 *
 * Two shapes of result: `ScenarioResult` (Weft against one in-process baseline per row:
 * the actor and cluster scenarios) and `ComparisonResult` (Weft against the contender
 * processes, comparison.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { join } from "node:path"
import * as hdr from "hdr-histogram-js"

export interface Row {
  readonly metric: string
  readonly weft: number
  readonly baseline?: { readonly name: string; readonly value: number }
  readonly unit: string
  /** `higher` when more is better (throughput), `lower` when less is (latency, memory). */
  readonly better: "higher" | "lower"
  readonly aim?: string
}

export interface ScenarioResult {
  readonly scenario: string
  readonly parameters: Record<string, unknown>
  readonly rows: ReadonlyArray<Row>
  readonly raw: Record<string, unknown>
}

export const machine = () => ({
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? "unknown",
  memoryBytes: totalmem(),
  runtime: typeof Bun === "undefined" ? `node ${process.version}` : `bun ${Bun.version}`,
  platform: `${process.platform}-${process.arch}`
})

/** Weft's figure relative to the baseline, oriented so that 1.0 means "as good" and more is better. */
export const ratio = (row: Row): number | undefined => {
  if (row.baseline === undefined || row.baseline.value === 0 || row.weft === 0) return undefined
  return row.better === "higher" ? row.weft / row.baseline.value : row.baseline.value / row.weft
}

const fmt = (value: number): string =>
  Math.abs(value) >= 1000 ? Math.round(value).toLocaleString("en-US") : value.toPrecision(3)

export const printTable = (result: ScenarioResult): void => {
  const header = ["metric", "weft", "baseline", "weft vs baseline", "aim"]
  const lines = result.rows.map((row) => {
    const r = ratio(row)
    return [
      row.metric,
      `${fmt(row.weft)} ${row.unit}`,
      row.baseline === undefined ? "-" : `${fmt(row.baseline.value)} ${row.unit} (${row.baseline.name})`,
      r === undefined ? "-" : `${r.toFixed(2)}x`,
      row.aim ?? ""
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i]!.length)))
  const render = (cells: ReadonlyArray<string>) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ")
  console.log(`\n${result.scenario}`)
  console.log(render(header))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const line of lines) console.log(render(line))
}

export const resultsDir = join(import.meta.dirname, "..", "results")
/** Where `--quick` runs write (git-ignored): a quick run never replaces a full run's figures. */
export const quickResultsDir = join(resultsDir, "quick")

/** `bench/results/<date>-<scenario>.<ext>`, or under quick/ for a quick run. */
export const resultPath = (scenario: string, ext: string, quick: boolean): string => {
  const dir = quick ? quickResultsDir : resultsDir
  mkdirSync(dir, { recursive: true })
  return join(dir, `${new Date().toISOString().slice(0, 10)}-${scenario}.${ext}`)
}

export const writeResult = (result: ScenarioResult, quick = false): string => {
  const path = resultPath(result.scenario, "json", quick)
  const body = {
    ...result,
    rows: result.rows.map((row) => ({ ...row, ratio: ratio(row) })),
    machine: machine(),
    at: new Date().toISOString()
  }
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`)
  return path
}

/** Forces a full collection where the runtime allows it, so heap figures are comparable. */
export const collectGarbage = (): void => {
  if (typeof Bun !== "undefined") Bun.gc(true)
  else (globalThis as { gc?: () => void }).gc?.()
}

export const heapUsed = (): number => {
  collectGarbage()
  return process.memoryUsage().heapUsed
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A latency histogram in microseconds, 1 us to 60 s, 3 significant digits. */
export const histogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
