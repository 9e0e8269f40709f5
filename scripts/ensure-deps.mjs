// `npm test` on a fresh clone: install what the tests need before vitest starts.
import { execSync } from "node:child_process"
import { existsSync } from "node:fs"

const needed = ["node_modules/vitest", "node_modules/effect", "node_modules/bun/bin/bun.exe"]
if (!needed.every((path) => existsSync(path))) {
  console.log("installing dependencies (npm ci)...")
  execSync(existsSync("package-lock.json") ? "npm ci" : "npm install", { stdio: "inherit" })
}

/**
 * Debian packages some tests drive as real programs, each found by a file it installs. They are
 * installed the way .ci/run does when missing and apt-get can run without asking for a password;
 * a package that stays missing fails its tests with a message naming it.
 */
const debianPackages = [
  // test/browser: playwright-core drives Debian's Chromium (it downloads no browser of its own).
  { package: "chromium", file: "/usr/bin/chromium", for: "the browser tests (test/browser)" }
]

const missing = debianPackages.filter((entry) => !existsSync(entry.file))
if (missing.length > 0) {
  const root = typeof process.getuid === "function" && process.getuid() === 0
  const sudo = root ? "" : "sudo -n "
  const names = missing.map((entry) => entry.package).join(" ")
  console.log(`installing ${names} with apt-get...`)
  try {
    execSync(`${sudo}apt-get update -qq && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${names}`, { stdio: "inherit" })
  } catch {
    for (const entry of missing) {
      if (!existsSync(entry.file)) console.log(`could not install ${entry.package}: ${entry.for} will fail; apt-get install ${entry.package}`)
    }
  }
}
