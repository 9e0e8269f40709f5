/**
 * `npm run bench:ingest [-- --quick]`: events per second from each bus (NATS JetStream,
 * RabbitMQ, a Redis stream) through the ingest role to 1,000 online users on a two-node
 * cluster, with the end-to-end latency from the publish on the bus (stamped by the publisher
 * process) to the receipt on the user's WebSocket, side by side in one run.
 *
 * The same cluster consumes the three buses. Each bus in turn gets two runs, each event to one
 * of the 1,000 users (500 connected to each node), published by a separate plain Node process
 * with the bus's own client (test/ingest/publisher.mjs): `burst`, every event at once (at most
 * 256 unconfirmed publishes): the throughput, its latency mostly queueing; then `paced`, at half
 * that throughput: what one event takes from the bus to the socket under a sustainable load.
 * A bus that does not answer on its loopback port is left out, with a note.
 * Writes bench/results/<date>-ingest.json (`--quick`: bench/results/quick/).
 */
import { jetstreamManager } from "@nats-io/jetstream"
import { connect as natsConnect } from "@nats-io/transport-node"
import amqp from "amqplib"
import IORedis from "ioredis"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { answers, type BusName, publish, type Published } from "../../test/ingest/bus.ts"
import { startGatewayCluster } from "../../test/support/gatewayNodes.ts"
import { redisUrl } from "../../test/support/ports.ts"
import { type Client, closeAll } from "../../test/support/wsClient.ts"
import { connectUser, keepAlive, onNotification } from "./onlineUsers.ts"
import { machine } from "./report.ts"

const quick = process.argv.includes("--quick")
const parameters = { users: 1000, nodes: 2, events: quick ? 1000 : 5000, paced: quick ? 300 : 1000, maxInFlight: 64 }
const natsUrl = "nats://127.0.0.1:4222"
const amqpUrl = "amqp://guest:guest@127.0.0.1:5672"

const suffix = Math.random().toString(36).slice(2, 8)
const prefix = `bench${suffix}`
const stream = `WEFT_BENCH_${suffix}`
const queue = `weft-bench-${suffix}`
const exchange = `weft-bench-${suffix}-events`
const redisStream = `weft-bench-${suffix}:events`

const available: Record<BusName, boolean> = {
  nats: await answers(4222),
  amqp: await answers(5672),
  redis: await answers(Number(new URL(redisUrl).port || 6379), new URL(redisUrl).hostname)
}
if (!available.redis) {
  console.error(`no Redis at ${redisUrl}: the cluster needs it`)
  process.exit(2)
}

const cleanups: Array<() => Promise<unknown>> = []
const flags: Array<string> = []
if (available.nats) {
  const nc = await natsConnect({ servers: natsUrl })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] })
  cleanups.push(async () => {
    await jsm.streams.delete(stream).catch(() => false)
    await nc.close()
  })
  flags.push("--ingest-nats-url", natsUrl, "--ingest-nats-stream", stream)
}
if (available.amqp) {
  flags.push("--ingest-amqp-url", amqpUrl, "--ingest-amqp-queue", queue, "--ingest-amqp-exchange", exchange)
  cleanups.push(async () => {
    const connection = await amqp.connect(amqpUrl)
    const channel = await connection.createChannel()
    for (const name of [queue, `${queue}.dead-letter`]) await channel.deleteQueue(name).catch(() => undefined)
    for (const name of [exchange, `${queue}.dead-letter`]) await channel.deleteExchange(name).catch(() => undefined)
    await connection.close()
  })
}
flags.push("--ingest-redis-stream", redisStream)
cleanups.push(async () => {
  const redis = new IORedis(redisUrl)
  await redis.del(redisStream, `${redisStream}:dead-letter`)
  redis.disconnect()
})
flags.push(
  "--ingest-rules",
  JSON.stringify([{ match: `${prefix}.user.{user}.>`, to: { users: ["{user}"] } }]),
  "--ingest-max-in-flight",
  String(parameters.maxInFlight))

const cluster = await startGatewayCluster("bench-ingest", parameters.nodes, flags)
cleanups.unshift(() => cluster.stop())
const cleanup = async () => {
  for (const step of cleanups) await step().catch(() => undefined)
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void cleanup().then(() => process.exit(130)))

interface BusResult {
  readonly bus: BusName
  readonly mode: string
  readonly events: number
  readonly received: number
  readonly eventsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

const results: Array<BusResult> = []
const notes: Array<string> = []
const clients: Array<Client> = []
try {
  for (const node of cluster.nodes) await node.waitForLog((line) => line.message === "ingest: consuming", 30_000)

  // Receipt times: `${run}:${seq}` → [sentAt, receivedAt].
  const receipts = new Map<string, readonly [number, number]>()
  const user = (n: number) => `bu${n}`
  const stopUpkeep = keepAlive(clients)
  const connectStarted = Date.now()
  process.stdout.write(`connecting ${parameters.users} users`)
  const connectOne = async (n: number) => {
    const node = cluster.nodes[n % parameters.nodes]!
    const client = await connectUser(node.url(), user(n))
    // Wall-clock time, as the publisher stamps `sentAt` in another process.
    onNotification(client, () => Date.now(), (event, receivedAt) => {
      if ("run" in event && "seq" in event && "sentAt" in event) {
        receipts.set(`${String(event.run)}:${String(event.seq)}`, [Number(event.sentAt), receivedAt])
      }
    })
    clients.push(client)
    if (clients.length % 100 === 0) process.stdout.write(".")
  }
  // 20 at a time: each is a JWT, a ticket, an upgrade and a registration with the user's entity.
  for (let first = 0; first < parameters.users; first += 20) {
    await Promise.all(Array.from({ length: Math.min(20, parameters.users - first) }, (_, i) => connectOne(first + i)))
  }
  process.stdout.write(` done in ${((Date.now() - connectStarted) / 1000).toFixed(1)} s\n`)

  const publisherConfig: Record<BusName, Record<string, unknown>> = {
    nats: { url: natsUrl },
    amqp: { url: amqpUrl, exchange },
    redis: { url: redisUrl, stream: redisStream }
  }

  const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
    sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!


  /** Publishes `count` events of `run` on `bus` (as fast as the publisher goes, or at `rate` a second) and measures their receipt. */
  const measure = async (bus: BusName, run: string, count: number, rate?: number): Promise<BusResult> => {
    const events: Array<Published> = Array.from({ length: count }, (_, seq) => ({
      subject: `${prefix}.user.${user(seq % parameters.users)}.bench`,
      body: JSON.stringify({ data: { run, seq, sentAt: "__SENT_AT__" } }),
      id: `${run}-${seq}`
    }))
    const key = (seq: number) => `${run}:${seq}`
    const started = Date.now()
    const publishing = rate === undefined ? 60_000 : 60_000 + (count / rate) * 1000
    await publish(bus, rate === undefined ? publisherConfig[bus] : { ...publisherConfig[bus], ratePerSecond: rate }, events, publishing)
    // Until every event is in, or none came for 30 s.
    let received = 0
    let progressAt = Date.now()
    while (Date.now() - progressAt < 30_000) {
      let now = 0
      for (let seq = 0; seq < count; seq++) if (receipts.has(key(seq))) now++
      if (now > received) progressAt = Date.now()
      received = now
      if (received === count) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const timings = Array.from({ length: count }, (_, seq) => receipts.get(key(seq))).filter((t) => t !== undefined)
    const latencies = timings.map(([sentAt, receivedAt]) => receivedAt - sentAt).sort((a, b) => a - b)
    const firstSent = timings.reduce((min, [sentAt]) => Math.min(min, sentAt), started)
    const lastReceived = timings.reduce((max, [, receivedAt]) => Math.max(max, receivedAt), firstSent)
    return {
      bus,
      mode: rate === undefined ? "burst" : `paced ${rate}/s`,
      events: count,
      received: timings.length,
      eventsPerSecond: Math.round(timings.length / (Math.max(1, lastReceived - firstSent) / 1000)),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1) ?? Number.NaN
    }
  }

  for (const bus of ["nats", "amqp", "redis"] as const) {
    if (!available[bus]) {
      notes.push(`${bus}: no server on its loopback port, left out`)
      continue
    }
    // Throughput: every event at once, the consumers as fast as they go (latency here is mostly queueing).
    process.stdout.write(`${bus}: ${parameters.events} events at once... `)
    const burst = await measure(bus, `${bus}-${suffix}-burst`, parameters.events)
    results.push(burst)
    process.stdout.write(`${burst.received} received, ${burst.eventsPerSecond}/s\n`)
    // Latency: at half that throughput, what one event takes from the bus to the socket.
    const rate = Math.max(10, Math.round(burst.eventsPerSecond / 2))
    process.stdout.write(`${bus}: ${parameters.paced} events at ${rate}/s... `)
    const paced = await measure(bus, `${bus}-${suffix}-paced`, parameters.paced, rate)
    results.push(paced)
    process.stdout.write(`${paced.received} received, p50 ${paced.p50Ms} ms\n`)
  }
  stopUpkeep()

  console.log(`\ningest: ${parameters.events} events per bus to ${parameters.users} online users on ${parameters.nodes} nodes (publish on the bus -> receipt on the socket)\n`)
  const header = ["bus", "run", "events/s", "p50", "p99", "max", "received"]
  const rows = results.map((r) => [r.bus, r.mode, String(r.eventsPerSecond), `${r.p50Ms} ms`, `${r.p99Ms} ms`, `${r.maxMs} ms`, `${r.received}/${r.events}`])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  for (const line of [header, widths.map((w) => "-".repeat(w)), ...rows]) console.log(line.map((cell, i) => cell.padEnd(widths[i]!)).join("  "))
  for (const note of notes) console.log(`note: ${note}`)

  const dir = join(import.meta.dirname, "..", "results", ...(quick ? ["quick"] : []))
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-ingest.json`)
  writeFileSync(file, `${JSON.stringify({ scenario: "ingest", machine: machine(), parameters, results, notes }, null, 2)}\n`)
  console.log(`\nwrote ${file}`)
} finally {
  await closeAll(clients).catch(() => undefined)
  await cleanup()
}
process.exit(results.length > 0 && results.every((r) => r.received === r.events) ? 0 : 1)
