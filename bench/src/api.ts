/**
 * `npm run bench:api [-- --quick]`: notifications per second through each door of the service
 * API (the typed client over HTTP and over WebSocket, HTTP JSON, gRPC) to 1,000 online users on
 * a two-node cluster, side by side in one run, with the p50/p99 latency of the calls.
 *
 * 500 users are connected to each node. Each door in turn sends `calls` `notify.toUser` calls,
 * each to one of the users, `inFlight` at a time, to node 0 (gRPC to its `--grpc-port`): the
 * users' entities are spread over both nodes, so about half the notifications cross to the
 * other node. Per door: calls accepted per second (answered `delivered`), notifications
 * delivered per second (received on the users' sockets), and the call latency p50/p99.
 * Writes bench/results/<date>-api.json (`--quick`: bench/results/quick/).
 */
import { makeWeftClient } from "@weft/api"
import { Effect, Either, Exit, Redacted, Scope } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type GrpcCaller, makeGrpcCaller } from "../../packages/api/test/grpcCaller.ts"
import { startGatewayCluster } from "../../test/support/gatewayNodes.ts"
import { type Client, closeAll } from "../../test/support/wsClient.ts"
import { connectUser, keepAlive, onNotification } from "./onlineUsers.ts"
import { machine } from "./report.ts"

const quick = process.argv.includes("--quick")
const parameters = { users: 1000, nodes: 2, calls: quick ? 2000 : 10_000, inFlight: 64, warmup: 200 }
const key = `bench-api-key-${Math.random().toString(36).slice(2)}-0123456789abcdef`
const suffix = Math.random().toString(36).slice(2, 8)

type Door = "typed" | "typed-ws" | "http" | "grpc"

interface DoorResult {
  readonly door: Door
  readonly calls: number
  readonly accepted: number
  readonly delivered: number
  readonly acceptedPerSecond: number
  readonly deliveredPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: ReadonlyArray<string>
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const cluster = await startGatewayCluster(`bench-api-${suffix}`, parameters.nodes, ["--service-keys", `bench=${key}`, "--grpc-port", "0"])
const clients: Array<Client> = []
const clientScope = Effect.runSync(Scope.make())
let grpcCaller: GrpcCaller | undefined
const results: Array<DoorResult> = []
try {
  const [entry] = cluster.nodes
  if (entry === undefined) throw new Error("no node")
  const grpcLine = await entry.waitForLog((line) => line.message === "gRPC listening")
  const grpcPort = grpcLine.annotations?.["grpcPort"]
  if (typeof grpcPort !== "number") throw new Error("the node did not log its gRPC port")
  grpcCaller = await makeGrpcCaller(`127.0.0.1:${grpcPort}`)

  // Receipts: `${run}:${seq}` → time received.
  const receipts = new Map<string, number>()
  const user = (n: number) => `api-${suffix}-${n}`
  const stopUpkeep = keepAlive(clients)
  process.stdout.write(`connecting ${parameters.users} users`)
  const connectOne = async (n: number) => {
    const node = cluster.nodes[n % parameters.nodes]!
    const connected = await connectUser(node.url(), user(n))
    onNotification(connected, () => performance.now(), (event, receivedAt) => {
      if ("run" in event && "seq" in event) receipts.set(`${String(event.run)}:${String(event.seq)}`, receivedAt)
    })
    clients.push(connected)
    if (clients.length % 100 === 0) process.stdout.write(".")
  }
  for (let first = 0; first < parameters.users; first += 20) {
    await Promise.all(Array.from({ length: Math.min(20, parameters.users - first) }, (_, i) => connectOne(first + i)))
  }
  process.stdout.write(" done\n")

  const payloadOf = (run: string, seq: number) => ({
    userId: user(seq % parameters.users),
    notification: { kind: "bench", data: { run, seq } }
  })

  // The typed client lives in `clientScope`, closed with the run.
  const weft = await Effect.runPromise(makeWeftClient({ url: entry.url(), credential: Redacted.make(key) }).pipe(Scope.extend(clientScope)))
  const weftWs = await Effect.runPromise(
    makeWeftClient({ url: entry.url(), credential: Redacted.make(key), transport: "websocket" }).pipe(Scope.extend(clientScope))
  )
  const send = (client: typeof weft, payload: ReturnType<typeof payloadOf>) => Effect.runPromise(Effect.either(client.notify.toUser(payload)))

  const doors: Record<Door, (payload: ReturnType<typeof payloadOf>) => Promise<string | undefined>> = {
    typed: async (payload) => {
      const outcome = await send(weft, payload)
      return Either.isRight(outcome) ? outcome.right.status : `${outcome.left._tag}`
    },
    "typed-ws": async (payload) => {
      const outcome = await send(weftWs, payload)
      return Either.isRight(outcome) ? outcome.right.status : `${outcome.left._tag}`
    },
    http: async (payload) => {
      const response = await fetch(`${entry.url()}/v1/api/notify.toUser`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify(payload)
      })
      const body: unknown = await response.json()
      return response.status === 200 && typeof body === "object" && body !== null && "status" in body ? String(body.status) : `http ${response.status}`
    },
    grpc: async (payload) => {
      const outcome = await grpcCaller!.call("notify.toUser", payload, { authorization: `Bearer ${key}` })
      return outcome.ok && typeof outcome.reply === "object" && outcome.reply !== null && "status" in outcome.reply
        ? String(outcome.reply.status)
        : `grpc ${outcome.ok ? "?" : outcome.code}`
    }
  }

  /** `count` calls through `door`, `inFlight` at a time; then waits (at most 30 s without progress) for every receipt. */
  const measure = async (door: Door, run: string, count: number): Promise<DoorResult> => {
    const latencies: Array<number> = []
    const errors = new Map<string, number>()
    let accepted = 0
    let next = 0
    const started = performance.now()
    let lastAnswer = started
    const worker = async () => {
      while (next < count) {
        const seq = next++
        const sentAt = performance.now()
        const status = await doors[door](payloadOf(run, seq)).catch((error: unknown) => `thrown ${String(error)}`)
        lastAnswer = performance.now()
        latencies.push(lastAnswer - sentAt)
        if (status === "delivered") accepted++
        else errors.set(status ?? "?", (errors.get(status ?? "?") ?? 0) + 1)
      }
    }
    await Promise.all(Array.from({ length: parameters.inFlight }, worker))
    let received = 0
    let progressAt = performance.now()
    while (performance.now() - progressAt < 30_000) {
      let now = 0
      for (let seq = 0; seq < count; seq++) if (receipts.has(`${run}:${seq}`)) now++
      if (now > received) progressAt = performance.now()
      received = now
      if (received >= accepted) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    let lastReceived = started
    for (let seq = 0; seq < count; seq++) lastReceived = Math.max(lastReceived, receipts.get(`${run}:${seq}`) ?? started)
    latencies.sort((x, y) => x - y)
    return {
      door,
      calls: count,
      accepted,
      delivered: received,
      acceptedPerSecond: Math.round(accepted / ((lastAnswer - started) / 1000)),
      deliveredPerSecond: Math.round(received / (Math.max(1, lastReceived - started) / 1000)),
      p50Ms: Number(percentile(latencies, 50).toFixed(2)),
      p99Ms: Number(percentile(latencies, 99).toFixed(2)),
      errors: Array.from(errors, ([status, n]) => `${status}: ${n}`)
    }
  }

  const order: ReadonlyArray<Door> = ["typed", "typed-ws", "http", "grpc"]
  // Warm up every door (connections, JIT, the users' entities) before measuring any.
  for (const door of order) await measure(door, `warm-${door}-${suffix}`, parameters.warmup)
  for (const door of order) {
    process.stdout.write(`${door}: ${parameters.calls} calls, ${parameters.inFlight} in flight... `)
    const result = await measure(door, `${door}-${suffix}`, parameters.calls)
    results.push(result)
    process.stdout.write(`${result.acceptedPerSecond}/s accepted, ${result.deliveredPerSecond}/s delivered\n`)
  }
  stopUpkeep()

  console.log(`\nservice API: notify.toUser to ${parameters.users} online users on ${parameters.nodes} nodes, ${parameters.inFlight} calls in flight\n`)
  const header = ["door", "accepted/s", "delivered/s", "p50", "p99", "delivered", "errors"]
  const rows = results.map((r) => [
    r.door,
    String(r.acceptedPerSecond),
    String(r.deliveredPerSecond),
    `${r.p50Ms} ms`,
    `${r.p99Ms} ms`,
    `${r.delivered}/${r.calls}`,
    r.errors.join(", ") || "-"
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  for (const line of [header, widths.map((w) => "-".repeat(w)), ...rows]) console.log(line.map((cell, i) => cell.padEnd(widths[i]!)).join("  "))

  const dir = join(import.meta.dirname, "..", "results", ...(quick ? ["quick"] : []))
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-api.json`)
  writeFileSync(file, `${JSON.stringify({ scenario: "api", machine: machine(), parameters, results }, null, 2)}\n`)
  console.log(`\nwrote ${file}`)
} finally {
  grpcCaller?.close()
  await Effect.runPromise(Scope.close(clientScope, Exit.void))
  await closeAll(clients).catch(() => undefined)
  await cluster.stop()
}
process.exit(results.length === 4 && results.every((r) => r.delivered === r.accepted && r.accepted === r.calls) ? 0 : 1)
