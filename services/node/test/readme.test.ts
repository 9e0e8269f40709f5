import { readFileSync } from "node:fs"
import { join } from "node:path"
import { expect, it } from "vitest"
import { allKeys } from "../src/NodeConfig.ts"

// DESIGN: every option is listed in the README with its default.
it("the README lists every configuration flag and variable", () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "..", "..", "README.md"), "utf8")
  const missing = allKeys.filter((key) => !readme.includes(`\`--${key.flag}\``) || !readme.includes(`\`${key.env}\``))
  expect(missing.map((key) => key.flag)).toEqual([])
  expect(allKeys.length).toBeGreaterThan(20)
})
