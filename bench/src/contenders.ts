/**
 * The four contenders, each started as processes of its own on 127.0.0.1:
 *
 * - `weft`: real Weft nodes, `bun services/node/src/main.ts` with every role, tickets with
 *   an HS256 JWT, the msgpack protocol. One node in memory, or several over Redis (a cluster
 *   name of the run's own). Limits meant for one human per connection are raised so that a
 *   bench client may publish thousands of messages a second (see `weftArgs`).
 * - `bun`: bench/contenders/bun-raw.ts, `Bun.serve` with native topic publish.
 * - `socketio`: bench/contenders/socketio.mjs, Socket.IO 4 on Node (ws engine, JSON parser),
 *   with @socket.io/redis-adapter when there are several processes.
 * - `ws`: bench/contenders/ws.mjs, a `ws` server on Node with a room map (one process only).
 */
import IORedis from "ioredis"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { ClientKind } from "./loadgen/protocol.ts"
import { type Child, spawnChild } from "./procs.ts"
import { freePort } from "../../test/support/ports.ts"

export type ContenderId = "weft" | "bun" | "socketio" | "ws"

export const repoRoot = join(import.meta.dirname, "..", "..")
const contendersDir = join(repoRoot, "bench", "contenders")
export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

export const labels: Record<ContenderId, string> = {
  weft: "Weft",
  bun: "raw Bun",
  socketio: "Socket.IO",
  ws: "ws"
}

export const clientKinds: Record<ContenderId, ClientKind> = { weft: "weft", bun: "raw", socketio: "socketio", ws: "raw" }

/** Which contenders can run on several processes sharing rooms. */
export const clusterable: ReadonlyArray<ContenderId> = ["weft", "socketio"]

/** One server process of a deployment; `crash` kills it, `start` brings it back on the same port. */
export interface ServerProcess {
  readonly name: string
  readonly url: string
  readonly pid: () => number
  readonly crash: () => Promise<void>
  /** Starts it again (after `crash`), resolving once it takes connections. */
  readonly start: () => Promise<void>
  /** The last lines it wrote (Weft nodes log errors only, as JSON lines). */
  readonly output: () => ReadonlyArray<string>
}

export interface Deployment {
  readonly contender: ContenderId
  readonly servers: ReadonlyArray<ServerProcess>
  readonly urls: ReadonlyArray<string>
  readonly jwtSecret?: string
  /** The exact command lines, for the results file. */
  readonly commands: ReadonlyArray<ReadonlyArray<string>>
  readonly stop: () => Promise<void>
}

export interface DeployOptions {
  readonly nodes: number
  /** A name for the run, used for the Weft cluster name and the Socket.IO Redis key prefix. */
  readonly runId: string
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `url` until it answers 200 (and `accept` likes the body), or throws after `timeoutMs`. */
const waitForHttp = async (
  url: string,
  child: Child,
  timeoutMs: number,
  accept: (body: string) => boolean = () => true
): Promise<string> => {
  const deadline = performance.now() + timeoutMs
  let last = "no answer"
  while (performance.now() < deadline) {
    if (!child.alive()) throw new Error(`${child.name} exited before it was ready; last lines:\n${child.tail.join("\n")}`)
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
      const body = await response.text()
      last = `${response.status} ${body.slice(0, 300)}`
      if (response.status === 200 && accept(body)) return body
    } catch (error) {
      last = String(error)
    }
    await sleep(100)
  }
  throw new Error(`${child.name} not ready within ${timeoutMs} ms (last: ${last}); last lines:\n${child.tail.join("\n")}`)
}

/**
 * The Weft node's entry point: this checkout's, or `WEFT_NODE_ENTRY` (another checkout's
 * `services/node/src/main.ts`, to compare two versions with the same bench).
 */
export const weftEntry = (): string => process.env["WEFT_NODE_ENTRY"] ?? join(repoRoot, "services", "node", "src", "main.ts")

/** A secret for this run's client JWTs (32+ bytes, as the node requires). */
const makeSecret = (): string => `bench-${crypto.randomUUID()}-${crypto.randomUUID()}`

/**
 * The flags every Weft node of the bench gets. What they change, and why:
 * - `--rate-per-second 1000000 --rate-burst 1000000`: one bench publisher sends up to thousands
 *   of frames a second; the default (100/s per connection) is for humans.
 * - `--max-connections-per-user 1000`: the load test opens 5 devices per user; the capacity
 *   scenario one user per connection anyway.
 * - `--log-level error`: no log line per connection.
 * Everything else is the default: heartbeat 25 s (the load generator pings like the SDK),
 * slow-consumer policy `disconnect` at 1 MiB, ticket TTL 30 s, history 1000 events per room.
 */
export const weftArgs = (secret: string): ReadonlyArray<string> => [
  "--jwt-secret", secret,
  "--rate-per-second", "1000000",
  "--rate-burst", "1000000",
  "--max-connections-per-user", "1000",
  "--log-level", "error"
]

const server = (
  name: string,
  command: () => ReadonlyArray<string>,
  url: string,
  ready: (child: Child) => Promise<void>
): ServerProcess & { readonly stop: () => Promise<void> } => {
  let child: Child | undefined
  const start = async () => {
    child = spawnChild(name, command(), { cwd: repoRoot })
    await ready(child)
  }
  return {
    name,
    url,
    pid: () => child?.pid ?? -1,
    crash: async () => {
      await child?.kill()
    },
    start,
    output: () => child?.tail ?? [],
    stop: async () => {
      await child?.kill()
    }
  }
}

export const deploy = async (contender: ContenderId, options: DeployOptions): Promise<Deployment> => {
  if (options.nodes > 1 && !clusterable.includes(contender)) throw new Error(`${labels[contender]} runs on one process only`)
  const ports = await Promise.all(Array.from({ length: options.nodes }, () => freePort()))
  const servers: Array<ServerProcess & { readonly stop: () => Promise<void> }> = []
  const commands: Array<ReadonlyArray<string>> = []
  let jwtSecret: string | undefined
  switch (contender) {
    case "weft": {
      jwtSecret = makeSecret()
      const runnerPorts = options.nodes > 1 ? await Promise.all(ports.map(() => freePort())) : []
      for (const [i, port] of ports.entries()) {
        const command = [
          process.execPath, weftEntry(),
          "--host", "127.0.0.1",
          "--port", String(port),
          "--node-id", `bench-${i + 1}`,
          ...weftArgs(jwtSecret),
          ...(options.nodes > 1
            ? ["--redis-url", redisUrl, "--cluster", options.runId, "--runner-host", "127.0.0.1", "--runner-port", String(runnerPorts[i])]
            : [])
        ]
        commands.push(command)
        servers.push(server(`weft node ${i + 1}`, () => command, `http://127.0.0.1:${port}`, async (child) => {
          await waitForHttp(`http://127.0.0.1:${port}/readyz`, child, 60_000)
        }))
      }
      break
    }
    case "bun":
    case "ws":
    case "socketio": {
      const file = contender === "bun" ? "bun-raw.ts" : contender === "ws" ? "ws.mjs" : "socketio.mjs"
      const runtime = contender === "bun" ? process.execPath : nodeBinary()
      for (const [i, port] of ports.entries()) {
        const command = [
          runtime, join(contendersDir, file),
          "--port", String(port),
          "--parent", String(process.pid),
          ...(options.nodes > 1 ? ["--redis", redisUrl, "--prefix", `${options.runId}-sio`] : [])
        ]
        commands.push(command)
        servers.push(server(`${labels[contender]} ${i + 1}`, () => command, `http://127.0.0.1:${port}`, async (child) => {
          await child.waitForLine((line) => line.includes(`"listening"`), 20_000)
          await waitForHttp(`http://127.0.0.1:${port}/healthz`, child, 10_000)
        }))
      }
      break
    }
  }
  try {
    // One after the other: a Weft cluster's first node takes the shards, the next joins it.
    for (const s of servers) await s.start()
    if (contender === "weft" && options.nodes > 1) await waitForShardsSettled(servers.map((s) => s.url))
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()))
    throw error
  }
  return {
    contender,
    servers,
    urls: servers.map((s) => s.url),
    ...(jwtSecret === undefined ? {} : { jwtSecret }),
    commands: commands.map((command) => command.map((part) => (part === jwtSecret ? "<secret>" : part))),
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()))
      if (contender === "weft" && options.nodes > 1) await deleteClusterKeys(options.runId)
    }
  }
}

/** Removes a bench cluster's Redis keys (`weft:{<cluster>}:*`; they would expire anyway). */
const deleteClusterKeys = async (cluster: string): Promise<void> => {
  const redis = new IORedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    let cursor = "0"
    for (let i = 0; i < 10_000; i++) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `weft:{${cluster}}:*`, "COUNT", 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
      if (cursor === "0") break
    }
  } catch {
    // Best effort: every key has a TTL.
  } finally {
    redis.disconnect()
  }
}

/** Every node ready and the shard count each holds unchanged for a second: placement is done moving. */
const waitForShardsSettled = async (urls: ReadonlyArray<string>): Promise<void> => {
  let previous = ""
  let stable = 0
  for (let i = 0; i < 300 && stable < 5; i++) {
    const held = await Promise.all(urls.map(async (url) => {
      try {
        const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })
        const body = (await response.json()) as { ready?: boolean; shardsHeld?: number }
        return body.ready === true ? String(body.shardsHeld) : "not ready"
      } catch {
        return "no answer"
      }
    }))
    const now = held.join(",")
    stable = !now.includes("not") && !now.includes("no answer") && !held.includes("0") && now === previous ? stable + 1 : 0
    previous = now
    await sleep(200)
  }
  if (stable < 5) throw new Error(`the Weft cluster did not settle within 60 s (shards held: ${previous})`)
}

export const nodeBinary = (): string => process.env["NODE_BINARY"] ?? "node"

const packageVersion = (name: string): string => {
  try {
    const json = JSON.parse(readFileSync(join(repoRoot, "node_modules", name, "package.json"), "utf8")) as { version?: string }
    return json.version ?? "unknown"
  } catch {
    return "unknown"
  }
}

/** Runtime and library versions, for the results file. */
export const versions = (): Record<string, string> => {
  const run = (command: string, args: ReadonlyArray<string>) => {
    try {
      return execFileSync(command, [...args], { timeout: 5000 }).toString().trim()
    } catch {
      return "unknown"
    }
  }
  const redisInfo = run("redis-cli", ["-u", redisUrl, "info", "server"])
  return {
    bun: Bun.version,
    node: run(nodeBinary(), ["--version"]),
    redis: /redis_version:(\S+)/.exec(redisInfo)?.[1] ?? "unknown",
    effect: packageVersion("effect"),
    "@effect/cluster": packageVersion("@effect/cluster"),
    "socket.io": packageVersion("socket.io"),
    "engine.io": packageVersion("engine.io"),
    "engine.io ws": packageVersion("engine.io/node_modules/ws"),
    "@socket.io/redis-adapter": packageVersion("@socket.io/redis-adapter"),
    ws: packageVersion("ws"),
    "hdr-histogram-js": packageVersion("hdr-histogram-js")
  }
}
