/**
 * One build for every runtime: the SDK is built (the package's own build
 * script, with the repo's Bun) into a temporary folder, and a small script
 * (`smoke/smoke.mjs`) imports that ESM bundle under Bun and under Deno (from
 * the `deno` npm package), each on its own global WebSocket and fetch, to
 * connect, subscribe, publish, receive and rpc against a real node. The
 * browser bundle's size stays within its budget and pulls in no Node module.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bunBinary, type RunningNode } from "../../../test/support/bunNode.ts"
import { makeJwt, startSingleNode, stopAll } from "./support/nodes.ts"

const packageDir = join(import.meta.dirname, "..")
const children = new Set<ChildProcess>()

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end, killing it after `timeoutMs`. */
const run = (command: string, args: ReadonlyArray<string>, options: { readonly cwd?: string; readonly env?: Record<string, string>; readonly timeoutMs: number }) =>
  new Promise<Run>((resolve, reject) => {
    const child = spawn(command, [...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] })
    children.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${command} ${args.join(" ")} did not finish within ${options.timeoutMs} ms\n${stdout}\n${stderr}`))
    }, options.timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      children.delete(child)
      reject(error)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      children.delete(child)
      resolve({ code, stdout, stderr })
    })
  })

/** The Deno binary of the `deno` npm package: its install step links it in place, and runs here if npm skipped it. */
const denoBinary = (): string => {
  const api: unknown = createRequire(import.meta.url)("deno/install_api.cjs")
  if (typeof api !== "object" || api === null || !("runInstall" in api) || typeof api.runInstall !== "function") {
    throw new Error("the deno package has no install_api.cjs runInstall")
  }
  const path: unknown = api.runInstall()
  if (typeof path !== "string" || !existsSync(path)) throw new Error(`no deno binary at ${String(path)}`)
  return path
}

const lastJsonLine = (text: string): unknown => {
  const line = text.trim().split("\n").at(-1) ?? ""
  try {
    return JSON.parse(line)
  } catch {
    return { unparsable: text }
  }
}

let node: RunningNode
let outdir: string
const weft = { subscribe: ["feed:*"], publish: ["feed:*"] }

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), "weft-client-smoke-"))
  const [started, built] = await Promise.all([
    startSingleNode(),
    run(bunBinary, [join(packageDir, "scripts", "build.ts"), "--outdir", outdir, "--no-types"], { timeoutMs: 30_000 })
  ])
  node = started
  if (built.code !== 0) throw new Error(`build failed: ${built.stdout}\n${built.stderr}`)
  copyFileSync(join(packageDir, "test", "smoke", "smoke.mjs"), join(outdir, "smoke.mjs"))
}, 60_000)

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL")
  await stopAll()
  rmSync(outdir, { recursive: true, force: true })
})

const expectRoundTrip = (result: unknown, runtime: string, user: string, channel: string) => {
  expect(result).toMatchObject({
    ok: true,
    runtime: expect.stringMatching(new RegExp(`^${runtime} \\d`)),
    ack: {},
    channel,
    from: user,
    hello: expect.stringMatching(new RegExp(`^${runtime} `)),
    bytes: [1, 2, 3],
    subscriptions: [channel],
    state: "closed"
  })
}

describe("the built bundle on other runtimes", () => {
  it("runs under Bun: connect, subscribe, publish, receive", async () => {
    const channel = "feed:smoke-bun"
    const jwt = await makeJwt({ sub: "smoke-bun", weft })
    const result = await run(bunBinary, [join(outdir, "smoke.mjs"), node.url(), jwt, channel], { cwd: outdir, timeoutMs: 30_000 })
    expect(result.stderr).toBe("")
    expectRoundTrip(lastJsonLine(result.stdout), "bun", "smoke-bun", channel)
    expect(result.code).toBe(0)
  }, 40_000)

  it("runs under Deno (deno run --allow-net): connect, subscribe, publish, receive", async () => {
    const channel = "feed:smoke-deno"
    const jwt = await makeJwt({ sub: "smoke-deno", weft })
    const result = await run(denoBinary(), ["run", "--allow-net", "--no-config", join(outdir, "smoke.mjs"), node.url(), jwt, channel], {
      cwd: outdir,
      env: { DENO_NO_UPDATE_CHECK: "1", DENO_DIR: join(outdir, "deno-cache"), NO_COLOR: "1" },
      timeoutMs: 30_000
    })
    expect(result.stderr).toBe("")
    expectRoundTrip(lastJsonLine(result.stdout), "deno", "smoke-deno", channel)
    expect(result.code).toBe(0)
  }, 40_000)

  it("the browser bundle stays small and uses no Node module", async () => {
    const measured = await run(bunBinary, [join(packageDir, "scripts", "size.ts"), "--json"], { timeoutMs: 30_000 })
    const size = lastJsonLine(measured.stdout)
    expect(size).toEqual({ minifiedBytes: expect.any(Number), gzipBytes: expect.any(Number) })
    // The README reports the figure; this budget catches a dependency that would bloat it (an Effect runtime, a polyfill...).
    expect(size).toMatchObject({ gzipBytes: expect.toSatisfy((bytes: number) => bytes < 80 * 1024) })
    const bundle = readFileSync(join(outdir, "index.js"), "utf8")
    expect(bundle).not.toMatch(/["']node:|require\(["'](?:fs|net|http|https|crypto|buffer|events|stream|ws)["']\)/)
  }, 40_000)
})
