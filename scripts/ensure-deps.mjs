// `npm test` on a fresh clone: install what the tests need before vitest starts.
import { execSync } from "node:child_process"
import { existsSync } from "node:fs"

const needed = ["node_modules/vitest", "node_modules/effect", "node_modules/bun/bin/bun.exe"]
if (!needed.every((path) => existsSync(path))) {
  console.log("installing dependencies (npm ci)...")
  execSync(existsSync("package-lock.json") ? "npm ci" : "npm install", { stdio: "inherit" })
}
