/**
 * Scenario 3, connection capacity: idle connections on one server process, opened
 * in batches up to `target` or until the first failure (whose reason is kept), with
 * the server's RSS after each batch. Weft's connections are authenticated (a JWT per
 * user, a ticket each) and speak msgpack; they subscribe to nothing and ping every
 * half heartbeat as the SDK does. The other contenders' are plain open sockets
 * (Socket.IO: connected to its main namespace).
 *
 * Figures: connections reached, RSS per connection ((RSS - RSS before any) / N, at the
 * end of a short hold), connect rate. Aim: Weft <= 2x raw Bun's RSS per connection.
 * One process holds at most as many sockets as its open-files limit allows: the target
 * is capped to that and the table says so. Connecting is bounded in time too
 * (`maxConnectSeconds` per contender): a contender that connects slowly stops there, with
 * a note, and its RSS per connection is read at what it reached.
 */
import type { ComparisonResult, ComparisonRow } from "../comparison.ts"
import { type ContenderId, labels } from "../contenders.ts"
import type { ClientSpec } from "../loadgen/protocol.ts"
import { rssBytes } from "../procs.ts"
import * as Progress from "../progress.ts"
import { capConnections, connectClients, type Context, sleep, withSession } from "./common.ts"

export interface Options {
  readonly target: number
  readonly batch: number
  /** How long the connections stay idle before the final RSS reading. */
  readonly holdMs: number
  readonly connectConcurrency: number
  /** Time budget for opening the connections, per contender. */
  readonly maxConnectSeconds: number
}

export const defaults: Options = { target: 50_000, batch: 2500, holdMs: 5000, connectConcurrency: 100, maxConnectSeconds: 60 }
export const quick: Options = { target: 2000, batch: 500, holdMs: 2000, connectConcurrency: 100, maxConnectSeconds: 30 }

interface Step {
  readonly connections: number
  readonly rssBytes: number
  readonly connectSeconds: number
}

interface Outcome {
  readonly baselineRss: number
  readonly steps: Array<Step>
  readonly reached: number
  readonly finalRss: number
  readonly connectSeconds: number
  readonly firstFailure?: string
  readonly failures: Record<string, number>
}

const idle = (from: number, count: number): Array<ClientSpec> =>
  Array.from({ length: count }, (_, i) => ({ user: `idle-${from + i}`, device: "d1", node: 0, rooms: [] }))

export const run = async (ctx: Context, options: Options): Promise<ComparisonResult> => {
  const notes: Array<string> = []
  const target = capConnections(options.target, notes, "capacity")
  const outcomes: Partial<Record<ContenderId, Outcome>> = {}
  for (const contender of ctx.contenders) {
    const failure = await withSession(ctx, contender, 1, async (session) => {
      const { loadgen, deployment } = session
      const pid = deployment.servers[0]!.pid()
      await sleep(1000)
      const baselineRss = rssBytes(pid) ?? 0
      const steps: Array<Step> = []
      let reached = 0
      let connectSeconds = 0
      let firstFailure: string | undefined
      const failures: Record<string, number> = {}
      let outOfTime = false
      while (reached < target && firstFailure === undefined && !outOfTime) {
        const count = Math.min(options.batch, target - reached)
        const result = await connectClients(session, idle(reached, count), {
          concurrency: options.connectConcurrency,
          stopOnFailure: true,
          deadlineMs: Math.max(0, options.maxConnectSeconds * 1000 - connectSeconds * 1000)
        })
        connectSeconds += result.seconds
        for (const [reason, n] of Object.entries(result.failures)) failures[reason] = (failures[reason] ?? 0) + n
        reached = result.open
        if (result.firstFailure !== undefined) firstFailure = result.firstFailure
        if (result.skipped > 0 || connectSeconds >= options.maxConnectSeconds) outOfTime = reached < target
        steps.push({ connections: reached, rssBytes: rssBytes(pid) ?? 0, connectSeconds })
      }
      if (outOfTime) {
        notes.push(
          `${labels[contender]}: stopped at ${reached.toLocaleString("en-US")} connections by the time budget ` +
            `(${options.maxConnectSeconds} s of connecting, ${(reached / connectSeconds).toFixed(0)} conn/s)`
        )
      }
      Progress.setPhase(`holding ${reached.toLocaleString("en-US")} idle`)
      await sleep(options.holdMs)
      const status = await loadgen.status()
      if (status.open < reached) {
        notes.push(`${labels[contender]}: ${(reached - status.open).toLocaleString("en-US")} connections closed while idle (${Object.entries(status.errors).map(([k, v]) => `${k} x${v}`).join(", ")})`)
      }
      reached = status.open
      outcomes[contender] = {
        baselineRss,
        steps,
        reached,
        finalRss: rssBytes(pid) ?? 0,
        connectSeconds,
        ...(firstFailure === undefined ? {} : { firstFailure }),
        failures
      }
      if (firstFailure !== undefined) {
        notes.push(`${labels[contender]}: stopped at ${reached.toLocaleString("en-US")} connections, first failure: ${firstFailure}`)
      }
    })
    if (failure !== undefined) notes.push(failure)
  }

  const values = (f: (o: Outcome) => number | undefined): Partial<Record<ContenderId, number>> =>
    Object.fromEntries(ctx.contenders.flatMap((c) => {
      const o = outcomes[c]
      const v = o === undefined ? undefined : f(o)
      return v === undefined || !Number.isFinite(v) ? [] : [[c, v]]
    }))
  const perConnection = (o: Outcome) => (o.reached > 0 ? (o.finalRss - o.baselineRss) / o.reached : undefined)
  const c = `idle connections, target ${target.toLocaleString("en-US")}`
  const rows: Array<ComparisonRow> = [
    { case: c, metric: "connections held", unit: "conns", better: "higher", values: values((o) => o.reached) },
    {
      case: c,
      metric: "RSS per connection",
      unit: "KiB",
      better: "lower",
      values: values((o) => {
        const bytes = perConnection(o)
        return bytes === undefined ? undefined : bytes / 1024
      }),
      aims: [{ text: "Weft <= 2x raw Bun", vs: "bun", atLeast: 0.5 }]
    },
    { case: c, metric: "RSS before connections", unit: "MiB", better: "lower", values: values((o) => o.baselineRss / 2 ** 20) },
    { case: c, metric: "RSS with connections", unit: "MiB", better: "lower", values: values((o) => o.finalRss / 2 ** 20) },
    { case: c, metric: "connect rate", unit: "conn/s", better: "higher", values: values((o) => (o.connectSeconds > 0 ? o.reached / o.connectSeconds : undefined)) }
  ]

  return {
    scenario: "capacity",
    title: `Connection capacity: idle connections on one server process (${ctx.quick ? "quick" : "full"} run)`,
    parameters: {
      ...options,
      target,
      wanted: options.target,
      weftConnections: "JWT + ticket each, subprotocol weft.v1.msgpack, no subscriptions, a ping every 12.5 s (half the heartbeat)",
      otherConnections: "open WebSocket (Socket.IO: connected to its main namespace), nothing else",
      rssPerConnection: "(server RSS at the end of the hold - server RSS before the first connection) / connections held"
    },
    contenders: ctx.contenders,
    rows,
    notes,
    plot: {
      title: "Connection capacity: idle connections on one process",
      subtitle: `${target.toLocaleString("en-US")} connections wanted (${ctx.quick ? "quick run" : "full run"})`,
      charts: [
        {
          kind: "bars",
          title: "Server RSS per idle connection (lower is better)",
          unit: "KiB per connection",
          groups: [{
            label: `${target.toLocaleString("en-US")} idle connections`,
            values: Object.fromEntries(ctx.contenders.map((ct) => {
              const o = outcomes[ct]
              const bytes = o === undefined ? undefined : perConnection(o)
              return [labels[ct], bytes === undefined ? undefined : bytes / 1024]
            }))
          }]
        },
        {
          kind: "bars",
          title: "Server RSS as connections are added (MiB)",
          unit: "MiB",
          // Every contender connects in batches of the same size: step i is (i + 1) batches for all.
          groups: (Object.values(outcomes).reduce<Array<Step>>((longest, o) => (o.steps.length > longest.length ? o.steps : longest), [])).map((step, i) => ({
            label: `${step.connections.toLocaleString("en-US")}`,
            values: Object.fromEntries(ctx.contenders.map((ct) => {
              const s = outcomes[ct]?.steps[i]
              return [labels[ct], s === undefined ? undefined : s.rssBytes / 2 ** 20]
            }))
          }))
        }
      ]
    },
    raw: { outcomes }
  }
}
