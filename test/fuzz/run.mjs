// `npm run fuzz -- --runs 1000000 [--seed 42]`: the fuzz suite (test/fuzz) at the size asked for.
// The tests read FUZZ_RUNS (decoder cases; the end-to-end and model-based cases scale with it,
// see test/fuzz/budget.ts) and FUZZ_SEED (the end-to-end seed). Plain `npm test` runs 100,000.
import { spawnSync } from "node:child_process"
import { join } from "node:path"

const args = process.argv.slice(2)
const env = { ...process.env }
const rest = []
for (let i = 0; i < args.length; i++) {
  const arg = args[i]
  const [flag, inline] = arg.split("=", 2)
  if (flag === "--runs" || flag === "--seed") {
    const value = inline ?? args[++i]
    if (value === undefined || !/^\d+$/.test(value)) {
      console.error(`${flag} needs a whole number, got ${JSON.stringify(value)}`)
      process.exit(2)
    }
    env[flag === "--runs" ? "FUZZ_RUNS" : "FUZZ_SEED"] = value
  } else rest.push(arg)
}
const root = join(import.meta.dirname, "..", "..")
const vitest = join(root, "node_modules", ".bin", "vitest")
const result = spawnSync(vitest, ["run", "test/fuzz", ...rest], { cwd: root, env, stdio: "inherit" })
process.exit(result.status ?? 1)
