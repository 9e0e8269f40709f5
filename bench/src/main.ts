/**
 * `npm run bench [-- <scenario...>] [--quick]`: runs the scenarios, prints a
 * table each and writes bench/results/<date>-<scenario>.json.
 */
import * as ActorBench from "./actor.ts"
import * as ClusterBench from "./cluster.ts"
import { printTable, writeResult, type ScenarioResult } from "./report.ts"

const scenarios: Record<string, (quick: boolean) => Promise<ScenarioResult>> = {
  actor: (quick) => ActorBench.run(quick ? ActorBench.quick : ActorBench.defaults),
  cluster: (quick) => ClusterBench.run(quick ? ClusterBench.quick : ClusterBench.defaults)
}

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const unknownFlags = args.filter((arg) => arg.startsWith("--") && arg !== "--quick")
const names = args.filter((arg) => !arg.startsWith("--"))
const selected = names.length === 0 ? Object.keys(scenarios) : names
const unknown = [...unknownFlags, ...selected.filter((name) => !(name in scenarios))]
if (unknown.length > 0) {
  console.error(`unknown: ${unknown.join(", ")}; scenarios: ${Object.keys(scenarios).join(", ")}; flags: --quick`)
  process.exit(2)
}

for (const name of selected) {
  const result = await scenarios[name]!(quick)
  printTable(result)
  console.log(`written ${writeResult(result)}`)
}
