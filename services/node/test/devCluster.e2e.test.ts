/**
 * `npm run cluster` (services/node/src/devCluster.ts) with no Redis configured: it starts a
 * redis-server of its own, three dev-mode nodes on consecutive ports, prints their URLs once all
 * are ready, every node's dashboard feed shows all three, and Ctrl-C (SIGINT) drains the nodes,
 * stops Redis and exits 0.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { createServer } from "node:net"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { afterAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { bunBinary, repoRoot } from "../../../test/support/bunNode.ts"
import { waitUntil } from "../../../test/support/wait.ts"

let script: ChildProcess | undefined
afterAll(() => {
  script?.kill("SIGKILL")
})

const isFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/** A first port with the next two free as well. */
const threeFreePorts = async (): Promise<number> => {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000)
    if ((await Promise.all([0, 1, 2].map((i) => isFree(base + i)))).every(Boolean)) return base
  }
  throw new Error("no three consecutive free ports")
}

const answers = async (url: string): Promise<boolean> => {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) })
    return true
  } catch {
    return false
  }
}

const feedFrame = (url: string): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error(`no frame from ${url}`))
    }, 10_000)
    socket.on("message", (data) => {
      clearTimeout(timer)
      socket.close()
      resolve(JSON.parse(String(data)))
    })
    socket.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

const nodesIn = (frame: unknown): Array<string> =>
  typeof frame === "object" && frame !== null && "nodes" in frame && Array.isArray(frame.nodes)
    ? frame.nodes.map((row: unknown) => (typeof row === "object" && row !== null && "node" in row ? String(row.node) : "?")).sort()
    : []

describe("npm run cluster", () => {
  it("starts Redis and three nodes, every dashboard shows the three, and Ctrl-C stops them all", async () => {
    const base = await threeFreePorts()
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && key !== "REDIS_URL" && key !== "WEFT_REDIS_URL") env[key] = value
    }
    const child = spawn(bunBinary, [join(repoRoot, "services/node/src/devCluster.ts"), "--port", String(base)], {
      cwd: repoRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    script = child
    const lines: Array<string> = []
    createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line))
    createInterface({ input: child.stderr! }).on("line", (line) => lines.push(line))
    const exited = once(child, "exit")

    await waitUntil("the cluster says it is ready", async () => lines.some((line) => line.includes("is ready: 3 nodes")), 90_000)
    const redisLine = lines.find((line) => line.startsWith("started redis-server on 127.0.0.1:"))
    expect(redisLine).toBeDefined()
    const redisPort = Number(redisLine!.split(":").at(-1))
    for (const i of [0, 1, 2]) {
      expect(lines.some((line) => line.includes(`demo http://127.0.0.1:${base + i}/`))).toBe(true)
      expect((await fetch(`http://127.0.0.1:${base + i}/readyz`)).status).toBe(200)
    }
    const expected = ["node-1", "node-2", "node-3"]
    for (const i of [0, 1, 2]) {
      await waitUntil(`node ${i + 1}'s dashboard shows the three nodes`, async () => {
        const frame = await feedFrame(`ws://127.0.0.1:${base + i}/v1/dashboard/feed`)
        return JSON.stringify(nodesIn(frame)) === JSON.stringify(expected)
      }, 20_000)
    }

    child.kill("SIGINT")
    const [code] = await exited
    expect(code).toBe(0)
    for (const i of [0, 1, 2]) expect(await answers(`http://127.0.0.1:${base + i}/healthz`)).toBe(false)
    await waitUntil("its redis-server stopped", async () => isFree(redisPort), 10_000)
  }, 150_000)
})
