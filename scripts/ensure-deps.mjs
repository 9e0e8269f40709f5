// `npm test` on a fresh clone: install what the tests need before vitest starts.
import { execSync } from "node:child_process"
import { existsSync } from "node:fs"

const needed = ["node_modules/vitest", "node_modules/effect", "node_modules/bun/bin/bun.exe"]
if (!needed.every((path) => existsSync(path))) {
  console.log("installing dependencies (npm ci)...")
  execSync(existsSync("package-lock.json") ? "npm ci" : "npm install", { stdio: "inherit" })
}

// The browser tests drive Debian's Chromium (playwright-core downloads no browser): install it
// the way .ci/run does when it is missing and apt-get can run without asking for a password.
if (!existsSync("/usr/bin/chromium")) {
  const root = typeof process.getuid === "function" && process.getuid() === 0
  const sudo = root ? "" : "sudo -n "
  console.log("installing chromium for the browser tests (apt-get)...")
  try {
    execSync(`${sudo}apt-get update -qq && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium`, { stdio: "inherit" })
  } catch {
    console.log("could not install chromium: the browser tests (test/browser) will fail; install it with apt-get install chromium")
  }
}
