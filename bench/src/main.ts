/**
 * `npm run bench [-- <scenario...>] [--quick] [--contenders weft,bun,...]`: runs the
 * scenarios, prints a table each and writes bench/results/<date>-<scenario>.json (and,
 * for the side-by-side scenarios, the plot <date>-<scenario>.svg beside it); a full run
 * then rewrites the index bench/results/README.md and the latest results in
 * docs/performance.md. `--quick` writes under bench/results/quick/ and nothing else.
 *
 * Scenarios: `fanout`, `crossnode`, `capacity`, `loadtest`, `storm` (Weft against raw
 * Bun, Socket.IO and ws, each its own processes, driven by one load generator process),
 * and `actor`, `cluster` (Weft's runtime against in-process baselines).
 * `npm run bench` goes through bench/run.sh, which raises the open-files limit first.
 */
import * as ActorBench from "./actor.ts"
import * as ClusterBench from "./cluster.ts"
import { printComparison, updatePerformanceDoc, writeComparison, writeIndex, type ComparisonResult } from "./comparison.ts"
import { type ContenderId, labels, versions } from "./contenders.ts"
import { fdLimits, installCleanup, killAll } from "./procs.ts"
import * as Progress from "./progress.ts"
import { printTable, writeResult, type ScenarioResult } from "./report.ts"
import type { Context } from "./scenarios/common.ts"
import * as Capacity from "./scenarios/capacity.ts"
import * as CrossNode from "./scenarios/crossnode.ts"
import * as Fanout from "./scenarios/fanout.ts"
import * as LoadTest from "./scenarios/loadtest.ts"
import * as Storm from "./scenarios/storm.ts"

type Scenario =
  | { readonly kind: "single"; readonly run: (quick: boolean) => Promise<ScenarioResult> }
  | { readonly kind: "comparison"; readonly run: (ctx: Context) => Promise<ComparisonResult> }

const scenarios: Record<string, Scenario> = {
  fanout: { kind: "comparison", run: (ctx) => Fanout.run(ctx, ctx.quick ? Fanout.quick : Fanout.defaults) },
  crossnode: { kind: "comparison", run: (ctx) => CrossNode.run(ctx, ctx.quick ? CrossNode.quick : CrossNode.defaults) },
  capacity: { kind: "comparison", run: (ctx) => Capacity.run(ctx, ctx.quick ? Capacity.quick : Capacity.defaults) },
  loadtest: { kind: "comparison", run: (ctx) => LoadTest.run(ctx, ctx.quick ? LoadTest.quick : LoadTest.defaults) },
  storm: { kind: "comparison", run: (ctx) => Storm.run(ctx, ctx.quick ? Storm.quick : Storm.defaults) },
  actor: { kind: "single", run: (quick) => ActorBench.run(quick ? ActorBench.quick : ActorBench.defaults) },
  cluster: { kind: "single", run: (quick) => ClusterBench.run(quick ? ClusterBench.quick : ClusterBench.defaults) }
}

const allContenders: ReadonlyArray<ContenderId> = ["weft", "bun", "socketio", "ws"]

const usage = `usage: npm run bench [-- <scenario...>] [--quick] [--contenders ${allContenders.join(",")}]
scenarios: ${Object.keys(scenarios).join(", ")} (none named: all of them)`

const args = process.argv.slice(2)
const quick = args.includes("--quick")
let contenders: ReadonlyArray<ContenderId> = allContenders
const names: Array<string> = []
const problems: Array<string> = []
for (let i = 0; i < args.length; i++) {
  const arg = args[i]!
  if (arg === "--quick") continue
  if (arg === "--help" || arg === "-h") {
    console.log(usage)
    process.exit(0)
  }
  if (arg === "--contenders" || arg.startsWith("--contenders=")) {
    const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i] ?? ""
    const picked = value.split(",").map((v) => v.trim()).filter((v) => v.length > 0)
    const bad = picked.filter((v) => !allContenders.includes(v as ContenderId))
    if (bad.length > 0 || picked.length === 0) problems.push(`--contenders ${value}`)
    // Weft first: every ratio is Weft's.
    contenders = allContenders.filter((c) => picked.includes(c))
    continue
  }
  if (arg.startsWith("--")) problems.push(arg)
  else if (!(arg in scenarios)) problems.push(arg)
  else names.push(arg)
}
if (problems.length > 0) {
  console.error(`unknown: ${problems.join(", ")}\n${usage}`)
  process.exit(2)
}
const selected = names.length === 0 ? Object.keys(scenarios) : names

installCleanup()
const limits = fdLimits()
const ctx: Context = {
  quick,
  contenders,
  runId: `bench-${process.pid}-${Date.now().toString(36)}`,
  commands: {},
  serverOutput: {}
}
const sideBySide = selected.some((name) => scenarios[name]!.kind === "comparison")
console.log(
  `weft bench: ${selected.join(", ")}${quick ? " (quick)" : ""}` +
    (sideBySide ? `; contenders ${contenders.map((c) => labels[c]).join(", ")}` : "") +
    `; open files ${limits.soft}${limits.soft < limits.hard ? ` (hard ${limits.hard}: run through npm run bench to raise it)` : ""}`
)

const runVersions = versions()
try {
  for (const name of selected) {
    const scenario = scenarios[name]!
    Progress.setScenario(name)
    const started = performance.now()
    if (scenario.kind === "single") {
      const result = await scenario.run(quick)
      printTable(result)
      console.log(`written ${writeResult(result, quick)}`)
    } else {
      for (const key of Object.keys(ctx.commands)) delete ctx.commands[key]
      for (const key of Object.keys(ctx.serverOutput)) delete ctx.serverOutput[key]
      const result = await scenario.run(ctx)
      Progress.clear()
      printComparison(result)
      const written = writeComparison(result, quick, runVersions, ctx.commands, ctx.serverOutput)
      console.log(`written ${written.json} and ${written.svg} (${((performance.now() - started) / 1000).toFixed(0)} s)`)
    }
  }
  if (!quick) {
    console.log(`index ${writeIndex()}`)
    const doc = updatePerformanceDoc()
    if (doc !== undefined) console.log(`latest results in ${doc}`)
  }
} catch (error) {
  Progress.clear()
  console.error(error)
  killAll()
  process.exit(1)
}
killAll()
process.exit(0)
