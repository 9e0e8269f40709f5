/**
 * `npm run chaos [-- --connections 5000] [--seed N] [--faults N]`: the chaos suite
 * (test/chaos/*.e2e.test.ts), one file at a time so that the scenarios do not load the machine
 * for each other (the kill test measures reconnect times). The flags become the environment the
 * tests read (`CHAOS_CONNECTIONS`, `CHAOS_SEED`, `CHAOS_FAULTS`); anything after them goes to vitest.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { parseArgs } from "node:util"

const { values, positionals } = parseArgs({
  options: {
    connections: { type: "string" },
    seed: { type: "string" },
    faults: { type: "string" }
  },
  allowPositionals: true
})

// Alone on the machine: the kill test holds reconnects to the issue's 5 s (see support/scale.ts).
const env: Record<string, string> = { CHAOS_ALONE: "1" }
if (values.connections !== undefined) env["CHAOS_CONNECTIONS"] = values.connections
if (values.seed !== undefined) env["CHAOS_SEED"] = values.seed
if (values.faults !== undefined) env["CHAOS_FAULTS"] = values.faults

const root = join(import.meta.dirname, "..", "..")
const vitest = spawn(join(root, "node_modules", ".bin", "vitest"), ["run", "test/chaos", "--no-file-parallelism", ...positionals], {
  cwd: root,
  env: { ...process.env, ...env },
  stdio: "inherit"
})
vitest.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
