/**
 * `npm run cluster`: three Bun nodes of one cluster on this machine, in dev
 * mode, against Redis: `WEFT_REDIS_URL` (or `REDIS_URL`) when set, else a
 * `redis-server` this script starts on a free port (and stops on exit).
 * Prints every node's URLs; Ctrl-C drains the nodes (SIGTERM) and stops.
 *
 *   npm run cluster                  # nodes on 8080, 8081, 8082
 *   npm run cluster -- --port 9000   # nodes on 9000, 9001, 9002
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { createServer, Socket } from "node:net"
import { createInterface } from "node:readline"

const nodeCount = 3
const entry = new URL("./main.ts", import.meta.url).pathname

const fail = (message: string): never => {
  console.error(`npm run cluster: ${message}`)
  process.exit(2)
}

const basePort = (() => {
  const args = process.argv.slice(2)
  if (args.length === 0) return 8080
  const port = args[0] === "--port" ? Number(args[1]) : Number.NaN
  if (args.length !== 2 || !Number.isInteger(port) || port < 1 || port > 65_535 - nodeCount) {
    return fail(`usage: npm run cluster [-- --port <first HTTP port>] (got ${args.join(" ")})`)
  }
  return port
})()

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const pings = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = new Socket()
    socket.setTimeout(500)
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.once("error", () => done(false))
    socket.once("timeout", () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"))
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The configured Redis, or one started here (with no persistence). */
const redis = async (): Promise<{ readonly url: string; readonly child?: ChildProcess }> => {
  const configured = process.env["WEFT_REDIS_URL"] ?? process.env["REDIS_URL"]
  if (configured !== undefined && configured !== "") return { url: configured }
  const port = await freePort()
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore"
  })
  const spawned = await new Promise<boolean>((resolve) => {
    child.once("spawn", () => resolve(true))
    child.once("error", () => resolve(false))
  })
  if (!spawned) {
    return fail("no Redis configured (WEFT_REDIS_URL) and redis-server is not installed (apt-get install redis-server)")
  }
  for (let i = 0; i < 100 && !(await pings(port)); i++) await sleep(50)
  if (!(await pings(port))) fail(`redis-server did not answer on 127.0.0.1:${port}`)
  console.log(`started redis-server on 127.0.0.1:${port}`)
  return { url: `redis://127.0.0.1:${port}`, child }
}

const { url: redisUrl, child: redisChild } = await redis()
// Every node verifies the same dev JWTs; a fresh secret per run.
const jwtSecret = randomBytes(32).toString("base64url")
const cluster = `dev-${randomBytes(3).toString("hex")}`

const nodes = await Promise.all(Array.from({ length: nodeCount }, async (_, i) => {
  const name = `node-${i + 1}`
  const port = basePort + i
  const child = spawn(process.execPath, [
    entry,
    "--dev",
    "--node-id", name,
    "--host", "127.0.0.1",
    "--port", String(port),
    "--redis-url", redisUrl,
    "--cluster", cluster,
    "--runner-host", "127.0.0.1",
    "--runner-port", String(await freePort()),
    "--jwt-secret", jwtSecret
  ], { stdio: ["ignore", "pipe", "pipe"] })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => console.log(`[${name}] ${line}`))
  }
  return { name, port, child, exited: once(child, "exit") }
}))

const ready = async (port: number): Promise<boolean> => {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok
  } catch {
    return false
  }
}

let stopping = false
const stop = async (code: number) => {
  if (stopping) return
  stopping = true
  for (const node of nodes) node.child.kill("SIGTERM")
  await Promise.all(nodes.map((node) => node.child.exitCode === null ? node.exited : undefined))
  redisChild?.kill("SIGTERM")
  process.exit(code)
}
process.once("SIGINT", () => void stop(0))
process.once("SIGTERM", () => void stop(0))
for (const node of nodes) {
  void node.exited.then(() => {
    if (!stopping) {
      console.error(`${node.name} exited on its own; stopping the cluster`)
      void stop(1)
    }
  })
}

const deadline = Date.now() + 60_000
while (!(await Promise.all(nodes.map((node) => ready(node.port)))).every(Boolean)) {
  if (Date.now() > deadline) {
    console.error("the nodes did not all become ready within 60 s")
    await stop(1)
  }
  await sleep(250)
}

console.log([
  "",
  `weft dev cluster "${cluster}" is ready: ${nodeCount} nodes on ${redisUrl}`,
  ...nodes.map((node) =>
    `  ${node.name}: demo http://127.0.0.1:${node.port}/   dashboard http://127.0.0.1:${node.port}/dashboard   ` +
    `WebSocket ws://127.0.0.1:${node.port}/v1/ws`
  ),
  "Ctrl-C drains and stops every node.",
  ""
].join("\n"))
