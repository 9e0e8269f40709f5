import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"
import { expect, it } from "vitest"

const root = join(import.meta.dirname, "..")

// `npm run check` type-checks the workspace with Bun's types, and each library
// package without them, so Bun-only APIs cannot creep into runtime-neutral code.
it("the whole workspace type-checks with no errors (npm run check)", async () => {
  const result = await promisify(execFile)("npm", ["run", "--silent", "check"], { cwd: root }).then(
    () => ({ code: 0, output: "" }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: error.code ?? 1,
      output: `${error.stdout ?? ""}${error.stderr ?? ""}`
    })
  )
  expect(result.output).toBe("")
  expect(result.code).toBe(0)
}, 180_000)
