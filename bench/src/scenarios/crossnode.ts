/**
 * Scenario 4, cross-node fan-out: the contenders that run as a cluster (Weft:
 * 2 nodes + Redis, a cluster name of the run's own; Socket.IO: 2 processes with
 * @socket.io/redis-adapter, a key prefix of the run's own), each measured the
 * same way on 1 process and on 2 in the same run. Subscribers alternate between
 * the processes; the publisher is on the first, so half the deliveries cross.
 *
 * - latency: `latency.subscribers` in one room at `latency.rate` msg/s in all, from
 *   `latency.publishers` connections taking turns, as a busy room has several people typing
 *   (aim: Weft's p99 <= 5 ms across 2 nodes at 1,000 msg/s into 100 members);
 * - throughput: `sizes` subscribers at max rate from one publisher, and the 2-process figure
 *   over the 1-process one (aim: Weft >= 0.5).
 */
import type { ComparisonResult, ComparisonRow } from "../comparison.ts"
import { clusterable, type ContenderId, labels } from "../contenders.ts"
import type { ClientSpec } from "../loadgen/protocol.ts"
import type { CurveChart } from "../svg.ts"
import { capConnections, connectClients, type Context, type Measured, ms, publisherSpec, runNotes, subscribers, withSession } from "./common.ts"

export interface Options {
  readonly latency: { readonly subscribers: number; readonly rate: number; readonly publishers: number }
  readonly sizes: ReadonlyArray<number>
  readonly window: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly drainMs: number
  readonly connectConcurrency: number
}

export const defaults: Options = {
  latency: { subscribers: 100, rate: 1000, publishers: 10 },
  sizes: [1000],
  window: 20_000,
  warmupMs: 2000,
  durationMs: 4000,
  drainMs: 3000,
  connectConcurrency: 64
}

export const quick: Options = { ...defaults, sizes: [500], warmupMs: 1000, durationMs: 2000, drainMs: 2000 }

const room = "crossnode"
type Runs = { latency?: Measured; max: Record<number, Measured> }

export const run = async (ctx: Context, options: Options): Promise<ComparisonResult> => {
  const notes: Array<string> = []
  const contenders = ctx.contenders.filter((c) => clusterable.includes(c))
  const skipped = ctx.contenders.filter((c) => !clusterable.includes(c))
  if (skipped.length > 0) notes.push(`${skipped.map((c) => labels[c]).join(" and ")} have no multi-process mode: not in this scenario`)
  const sizes = options.sizes.map((size) => capConnections(size + 1, notes, "cross-node") - 1)
  const results: Partial<Record<ContenderId, Record<1 | 2, Runs>>> = {}
  for (const contender of contenders) {
    const byNodes = {} as Record<1 | 2, Runs>
    for (const nodes of [1, 2] as const) {
      const runs: Runs = { max: {} }
      byNodes[nodes] = runs
      const where = `${nodes} node${nodes > 1 ? "s" : ""}`
      const failure = await withSession(ctx, contender, nodes, async (session) => {
        const connect = (clients: ReadonlyArray<ClientSpec>) => connectClients(session, clients, { concurrency: options.connectConcurrency })
        const publisherCount = options.latency.publishers
        const publishers = await connect(
          Array.from({ length: publisherCount }, (_, i) => ({ ...publisherSpec(0), user: `publisher-${i}` }))
        )
        if (publishers.opened !== publisherCount) throw new Error(`the publishers could not connect: ${publishers.firstFailure}`)
        let connected = 0
        const grow = async (size: number) => {
          if (size <= connected) return
          // Subscriber i on process i mod nodes (the publishers come first in the pool).
          const added = await connect(subscribers(size - connected, room, connected, nodes))
          connected = size
          if (added.failed > 0) notes.push(`${labels[contender]}, ${where}: ${added.failed} subscribers could not connect (${added.firstFailure})`)
        }
        await grow(options.latency.subscribers)
        runs.latency = await session.measure({
          label: `${options.latency.subscribers} subs, ${options.latency.rate}/s`,
          mode: "fixed",
          rate: options.latency.rate,
          publishers: Array.from({ length: publisherCount }, (_, conn) => ({ conn, room })),
          warmupMs: options.warmupMs,
          durationMs: options.durationMs,
          drainMs: options.drainMs
        })
        notes.push(...runNotes(`${labels[contender]}, ${where}`, `${options.latency.subscribers} subscribers at ${options.latency.rate} msg/s`, runs.latency))
        for (const size of sizes) {
          await grow(size)
          const max = await session.measure({
            label: `${size} subs, max`,
            mode: "max",
            window: Math.max(options.window, 2 * size),
            publishers: [{ conn: 0, room }],
            warmupMs: options.warmupMs,
            durationMs: options.durationMs,
            drainMs: options.drainMs
          })
          runs.max[size] = max
          notes.push(...runNotes(`${labels[contender]}, ${where}`, `${size} subscribers at max rate`, max))
        }
      })
      if (failure !== undefined) notes.push(failure)
    }
    results[contender] = byNodes
  }

  const values = (f: (runs: Record<1 | 2, Runs>) => number | undefined): Partial<Record<ContenderId, number>> =>
    Object.fromEntries(contenders.flatMap((c) => {
      const r = results[c]
      const v = r === undefined ? undefined : f(r)
      return v === undefined || !Number.isFinite(v) ? [] : [[c, v]]
    }))
  const rows: Array<ComparisonRow> = []
  const { subscribers: latSubs, rate } = options.latency
  for (const nodes of [2, 1] as const) {
    const c = `${latSubs.toLocaleString("en-US")} subs, ${rate.toLocaleString("en-US")} msg/s (${options.latency.publishers} publishers), ${nodes} node${nodes > 1 ? "s" : ""}`
    const lat = (f: (m: Measured) => number | undefined) => values((r) => (r[nodes].latency === undefined ? undefined : f(r[nodes].latency!)))
    rows.push(
      { case: c, metric: "deliveries/s", unit: "1/s", better: "higher", values: lat((m) => m.run.deliveriesPerSecond) },
      { case: c, metric: "p50", unit: "ms", better: "lower", values: lat((m) => ms(m.run.latencyUs.p50)) },
      { case: c, metric: "p95", unit: "ms", better: "lower", values: lat((m) => ms(m.run.latencyUs.p95)) },
      {
        case: c,
        metric: "p99",
        unit: "ms",
        better: "lower",
        values: lat((m) => ms(m.run.latencyUs.p99)),
        ...(nodes === 2 ? { aims: [{ text: "Weft <= 5 ms", atMost: 5 }] } : {})
      },
      { case: c, metric: "max", unit: "ms", better: "lower", values: lat((m) => ms(m.run.latencyUs.max)) }
    )
  }
  for (const size of sizes) {
    const c = `${size.toLocaleString("en-US")} subs, max rate`
    const at = (nodes: 1 | 2, f: (m: Measured) => number | undefined) =>
      values((r) => (r[nodes].max[size] === undefined ? undefined : f(r[nodes].max[size]!)))
    rows.push(
      { case: c, metric: "deliveries/s, 2 nodes", unit: "1/s", better: "higher", values: at(2, (m) => m.run.deliveriesPerSecond) },
      { case: c, metric: "deliveries/s, 1 node", unit: "1/s", better: "higher", values: at(1, (m) => m.run.deliveriesPerSecond) },
      {
        case: c,
        metric: "2 nodes / 1 node",
        unit: "x",
        better: "higher",
        values: values((r) => {
          const two = r[2].max[size]?.run.deliveriesPerSecond
          const one = r[1].max[size]?.run.deliveriesPerSecond
          return two === undefined || one === undefined || one === 0 ? undefined : two / one
        }),
        aims: [{ text: "Weft >= 0.5", atLeast: 0.5 }]
      },
      { case: c, metric: "p50, 2 nodes", unit: "ms", better: "lower", values: at(2, (m) => ms(m.run.latencyUs.p50)) },
      { case: c, metric: "p99, 2 nodes", unit: "ms", better: "lower", values: at(2, (m) => ms(m.run.latencyUs.p99)) },
      { case: c, metric: "server CPU, 2 nodes", unit: "cores", better: "lower", values: at(2, (m) => m.serverCpu) },
      { case: c, metric: "server CPU, 1 node", unit: "cores", better: "lower", values: at(1, (m) => m.serverCpu) }
    )
  }

  const series = (nodes: 1 | 2) =>
    contenders.flatMap((c) => {
      const m = results[c]?.[nodes].latency
      return m === undefined ? [] : [[`${labels[c]}, ${nodes} node${nodes > 1 ? "s" : ""}`, m.run.latencyUs.curve] as const]
    })
  const latencyChart: CurveChart = {
    kind: "curves",
    title: `Latency: ${latSubs.toLocaleString("en-US")} subscribers, ${rate.toLocaleString("en-US")} msg/s, 1 and 2 nodes`,
    series: Object.fromEntries([...series(2), ...series(1)])
  }
  return {
    scenario: "crossnode",
    title: `Cross-node fan-out: 2 processes sharing a room over Redis against 1 (${ctx.quick ? "quick" : "full"} run)`,
    parameters: {
      ...options,
      sizes,
      placement: "subscriber i on process i mod 2; the publishers on process 1",
      weft: "2 Bun nodes, --redis-url, a cluster name of the run's own, every role on each",
      socketio: "2 Node processes with @socket.io/redis-adapter (ioredis pub/sub), a key prefix of the run's own",
      redis: "127.0.0.1:6379 (REDIS_URL)"
    },
    contenders,
    rows,
    notes,
    plot: {
      title: "Cross-node fan-out over Redis",
      subtitle: `deliveries/s at max rate on 1 and 2 processes; latency at a fixed rate (${ctx.quick ? "quick run" : "full run"})`,
      charts: [
        {
          kind: "bars",
          title: "Deliveries per second at max rate (higher is better)",
          unit: "deliveries/s",
          groups: sizes.flatMap((size) =>
            ([1, 2] as const).map((nodes) => ({
              label: `${size.toLocaleString("en-US")} subs, ${nodes} node${nodes > 1 ? "s" : ""}`,
              values: Object.fromEntries(contenders.map((c) => [labels[c], results[c]?.[nodes].max[size]?.run.deliveriesPerSecond]))
            }))
          )
        },
        latencyChart
      ]
    },
    raw: { results }
  }
}
