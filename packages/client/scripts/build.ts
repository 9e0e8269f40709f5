/**
 * Builds the SDK: `dist/index.js` (one ESM file for browsers, Node 20+, Bun
 * and Deno, with @weft/protocol and its dependencies bundled in) and the
 * declarations (`dist/*.d.ts`, from tsc).
 *
 *   bun packages/client/scripts/build.ts [--outdir DIR] [--no-types]
 */
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { parseArgs } from "node:util"

const packageDir = join(import.meta.dir, "..")
const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { outdir: { type: "string" }, "no-types": { type: "boolean" } }
})
const outdir = values.outdir ?? join(packageDir, "dist")

const result = await Bun.build({
  entrypoints: [join(packageDir, "src", "index.ts")],
  outdir,
  target: "browser",
  format: "esm",
  minify: true,
  sourcemap: "linked",
  naming: "index.js"
})
if (!result.success) {
  for (const log of result.logs) console.error(log)
  process.exit(1)
}
console.log(`built ${join(outdir, "index.js")}`)

if (values["no-types"] !== true) {
  const tsc = spawnSync(
    process.execPath,
    [join(packageDir, "..", "..", "node_modules", "typescript", "bin", "tsc"), "-p", join(packageDir, "tsconfig.build.json"), "--outDir", outdir],
    { stdio: "inherit" }
  )
  if (tsc.status !== 0) process.exit(tsc.status ?? 1)
  console.log(`declarations in ${outdir}`)
}
