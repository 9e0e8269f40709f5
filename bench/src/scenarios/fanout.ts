/**
 * Scenario 1, fan-out: N subscribers in one room on one server process, one
 * publisher (a connection of its own, not subscribed) sending the ~200-byte
 * chat payload,
 * - at a fixed rate (1,000 msg/s into 100 subscribers, 50 msg/s into 1,000, 10 msg/s into
 *   5,000: 100,000, 50,000 and 50,000 deliveries a second), to read latency at a load the
 *   contenders should carry;
 * - at max rate: as fast as deliveries complete, with at most `window` deliveries (and at
 *   least one message) outstanding, to read throughput.
 * Subscribers are added between sizes (100, then 900 more, ...), so each contender opens
 * its connections once. Figures: deliveries/s, publish -> deliver p50/p95/p99/max, the
 * server's CPU and deliveries per server CPU-second.
 */
import type { ContenderId } from "../contenders.ts"
import { labels } from "../contenders.ts"
import type { ClientSpec } from "../loadgen/protocol.ts"
import type { ComparisonResult, ComparisonRow } from "../comparison.ts"
import type { CurveChart } from "../svg.ts"
import { capConnections, connectClients, type Context, type Measured, ms, publisherSpec, runNotes, subscribers, withSession } from "./common.ts"

export interface Options {
  /** Subscriber counts, each with the publish rate (msg/s) of its fixed-rate run. */
  readonly sizes: ReadonlyArray<{ readonly subscribers: number; readonly rate: number }>
  /** Max-rate runs keep at most this many deliveries outstanding (at least 2N). */
  readonly window: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly drainMs: number
  readonly connectConcurrency: number
}

export const defaults: Options = {
  sizes: [{ subscribers: 100, rate: 1000 }, { subscribers: 1000, rate: 50 }, { subscribers: 5000, rate: 10 }],
  window: 20_000,
  warmupMs: 2000,
  durationMs: 4000,
  drainMs: 3000,
  connectConcurrency: 64
}

export const quick: Options = { ...defaults, sizes: defaults.sizes.slice(0, 2), warmupMs: 1000, durationMs: 2000, drainMs: 2000 }

const room = "fanout"

export const run = async (ctx: Context, options: Options): Promise<ComparisonResult> => {
  const notes: Array<string> = []
  const sizes = options.sizes.map((size) => capConnections(size.subscribers + 1, notes, "fan-out") - 1)
  const rates = new Map(options.sizes.map((size, i) => [sizes[i]!, size.rate]))
  const fixedRate = (size: number): number => rates.get(size)!
  const results: Partial<Record<ContenderId, Record<number, { fixed?: Measured; max?: Measured; connectSeconds: number }>>> = {}
  for (const contender of ctx.contenders) {
    const byCase: Record<number, { fixed?: Measured; max?: Measured; connectSeconds: number }> = {}
    const failure = await withSession(ctx, contender, 1, async (session) => {
      const connect = (clients: ReadonlyArray<ClientSpec>) => connectClients(session, clients, { concurrency: options.connectConcurrency })
      const publisher = await connect([publisherSpec()])
      if (publisher.opened !== 1) throw new Error(`the publisher could not connect: ${publisher.firstFailure}`)
      let connected = 0
      for (const size of sizes) {
        const added = await connect(subscribers(size - connected, room, connected))
        connected = size
        if (added.failed > 0) {
          notes.push(`${labels[contender]}: ${added.failed} of ${added.opened + added.failed} subscribers could not connect (${added.firstFailure})`)
        }
        const fixed = await session.measure({
          label: `${size} subs, fixed`,
          mode: "fixed",
          rate: fixedRate(size),
          publishers: [{ conn: 0, room }],
          warmupMs: options.warmupMs,
          durationMs: options.durationMs,
          drainMs: options.drainMs
        })
        const max = await session.measure({
          label: `${size} subs, max`,
          mode: "max",
          window: Math.max(options.window, 2 * size),
          publishers: [{ conn: 0, room }],
          warmupMs: options.warmupMs,
          durationMs: options.durationMs,
          drainMs: options.drainMs
        })
        byCase[size] = { fixed, max, connectSeconds: added.seconds }
        notes.push(...runNotes(labels[contender], `${size} subscribers, fixed rate`, fixed))
        notes.push(...runNotes(labels[contender], `${size} subscribers, max rate`, max))
      }
    })
    if (failure !== undefined) notes.push(failure)
    results[contender] = byCase
  }

  const rows: Array<ComparisonRow> = []
  const pick = (size: number, kind: "fixed" | "max", f: (m: Measured) => number | undefined) =>
    Object.fromEntries(
      ctx.contenders.flatMap((c) => {
        const m = results[c]?.[size]?.[kind]
        const value = m === undefined ? undefined : f(m)
        return value === undefined ? [] : [[c, value]]
      })
    ) as Partial<Record<ContenderId, number>>
  for (const size of sizes) {
    const fixedCase = `${size.toLocaleString("en-US")} subs, ${fixedRate(size).toLocaleString("en-US")} msg/s`
    rows.push(
      { case: fixedCase, metric: "deliveries/s", unit: "1/s", better: "higher", values: pick(size, "fixed", (m) => m.run.deliveriesPerSecond) },
      { case: fixedCase, metric: "p50", unit: "ms", better: "lower", values: pick(size, "fixed", (m) => ms(m.run.latencyUs.p50)) },
      { case: fixedCase, metric: "p95", unit: "ms", better: "lower", values: pick(size, "fixed", (m) => ms(m.run.latencyUs.p95)) },
      { case: fixedCase, metric: "p99", unit: "ms", better: "lower", values: pick(size, "fixed", (m) => ms(m.run.latencyUs.p99)) },
      { case: fixedCase, metric: "max", unit: "ms", better: "lower", values: pick(size, "fixed", (m) => ms(m.run.latencyUs.max)) },
      { case: fixedCase, metric: "server CPU", unit: "cores", better: "lower", values: pick(size, "fixed", (m) => m.serverCpu) }
    )
    const maxCase = `${size.toLocaleString("en-US")} subs, max rate`
    rows.push(
      {
        case: maxCase,
        metric: "deliveries/s",
        unit: "1/s",
        better: "higher",
        values: pick(size, "max", (m) => m.run.deliveriesPerSecond),
        aims: [{ text: ">= 0.7x raw Bun", vs: "bun", atLeast: 0.7 }, { text: ">= 5x Socket.IO", vs: "socketio", atLeast: 5 }]
      },
      { case: maxCase, metric: "publishes/s", unit: "1/s", better: "higher", values: pick(size, "max", (m) => m.run.publishedPerSecond) },
      { case: maxCase, metric: "p50", unit: "ms", better: "lower", values: pick(size, "max", (m) => ms(m.run.latencyUs.p50)) },
      { case: maxCase, metric: "p99", unit: "ms", better: "lower", values: pick(size, "max", (m) => ms(m.run.latencyUs.p99)) },
      { case: maxCase, metric: "server CPU", unit: "cores", better: "lower", values: pick(size, "max", (m) => m.serverCpu) },
      {
        case: maxCase,
        metric: "deliveries per server CPU-s",
        unit: "1/cpu-s",
        better: "higher",
        values: pick(size, "max", (m) => (m.serverCpu > 0 ? m.run.deliveriesPerSecond / m.serverCpu : undefined))
      },
      { case: maxCase, metric: "load generator CPU", unit: "cores", better: "lower", values: pick(size, "max", (m) => m.run.loadgenCpu) }
    )
  }

  const curves: Array<CurveChart> = sizes.map((size) => ({
    kind: "curves",
    title: `Latency at a fixed rate: ${size.toLocaleString("en-US")} subscribers, ${fixedRate(size).toLocaleString("en-US")} msg/s`,
    series: Object.fromEntries(
      ctx.contenders.flatMap((c) => {
        const m = results[c]?.[size]?.fixed
        return m === undefined ? [] : [[labels[c], m.run.latencyUs.curve]]
      })
    )
  }))

  return {
    scenario: "fanout",
    title: `Fan-out: one room on one server process, one publisher (${ctx.quick ? "quick" : "full"} run)`,
    parameters: {
      ...options,
      sizes,
      payload: "~200-byte JSON chat message {n, t, user, room, text} (msgpack inside a Weft publish frame)",
      publisher: "one connection of its own, not subscribed",
      nodes: 1
    },
    contenders: ctx.contenders,
    rows,
    notes,
    plot: {
      title: "Fan-out: one room, one server process",
      subtitle: `deliveries/s at max rate; latency curves at a fixed rate (${ctx.quick ? "quick run" : "full run"})`,
      charts: [
        {
          kind: "bars",
          title: "Deliveries per second at max rate (higher is better)",
          unit: "deliveries/s",
          groups: sizes.map((size) => ({
            label: `${size.toLocaleString("en-US")} subscribers`,
            values: Object.fromEntries(ctx.contenders.map((c) => [labels[c], results[c]?.[size]?.max?.run.deliveriesPerSecond]))
          }))
        },
        ...curves
      ]
    },
    raw: { results }
  }
}
