/**
 * The browser bundle's size, as the README reports it: the SDK's entry
 * bundled for the browser with `Bun.build({ minify: true, target: "browser" })`,
 * then gzipped (level 9) in memory.
 *
 *   node_modules/.bin/bun packages/client/scripts/size.ts [--json]
 */
import { join } from "node:path"
import { gzipSync } from "node:zlib"

export interface BundleSize {
  readonly minifiedBytes: number
  readonly gzipBytes: number
}

export const measure = async (): Promise<BundleSize> => {
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "..", "src", "index.ts")],
    target: "browser",
    format: "esm",
    minify: true
  })
  if (!result.success) throw new Error(result.logs.map(String).join("\n"))
  const output = result.outputs[0]
  if (output === undefined) throw new Error("no output")
  const bytes = new Uint8Array(await output.arrayBuffer())
  return { minifiedBytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length }
}

if (import.meta.main) {
  const size = await measure()
  if (Bun.argv.includes("--json")) console.log(JSON.stringify(size))
  else console.log(`minified ${(size.minifiedBytes / 1024).toFixed(1)} KiB, minified+gzipped ${(size.gzipBytes / 1024).toFixed(1)} KiB`)
}
