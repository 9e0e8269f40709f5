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
  { package: "chromium", file: "/usr/bin/chromium", for: "the browser tests (test/browser)" },
  // test/deploy: the committed balancer configs run in front of real nodes, with TLS certificates made by openssl.
  { package: "nginx", file: "/usr/sbin/nginx", for: "the nginx deployment test (test/deploy)" },
  { package: "haproxy", file: "/usr/sbin/haproxy", for: "the HAProxy deployment test (test/deploy)" },
  { package: "openssl", file: "/usr/bin/openssl", for: "the balancer deployment tests (test/deploy)" },
  // test/api: a client that is not ours compiles the shipped .proto files and calls the gRPC door; curl calls the HTTP one.
  { package: "python3-grpcio", file: "/usr/lib/python3/dist-packages/grpc/__init__.py", for: "the Python gRPC client test (test/api)" },
  { package: "python3-grpc-tools", file: "/usr/lib/python3/dist-packages/grpc_tools/protoc.py", for: "the Python gRPC client test (test/api)" },
  { package: "curl", file: "/usr/bin/curl", for: "the curl examples of docs/api.md (test/api)" }
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
