/**
 * Scenario 5, reconnect storm: `connections` clients, each subscribed to one of
 * `rooms` rooms, lose their server at once (SIGKILL: a crashed node, every socket
 * dropped without a goodbye) and the server is started again on the same port at
 * once. Every client reconnects on its own with the client SDK's backoff (full
 * jitter, 500 ms base, 30 s cap: packages/client/src/Backoff.ts; the same policy for
 * every contender) and subscribes again (Weft: with a new ticket per attempt).
 *
 * Figures: how long until 50%, 90%, 99% and all clients were back and resubscribed,
 * counted from the kill and from the moment the new server took connections; the
 * server's own restart time; attempts and failed attempts.
 */
import type { ComparisonResult, ComparisonRow } from "../comparison.ts"
import { type ContenderId, labels } from "../contenders.ts"
import type { ClientSpec, StormResult } from "../loadgen/protocol.ts"
import * as Progress from "../progress.ts"
import { capConnections, connectClients, type Context, sleep, withSession } from "./common.ts"

export interface Options {
  readonly connections: number
  readonly rooms: number
  /** Give up waiting for the last clients after this long. */
  readonly timeoutMs: number
  readonly connectConcurrency: number
}

export const defaults: Options = { connections: 5000, rooms: 10, timeoutMs: 90_000, connectConcurrency: 64 }
export const quick: Options = { connections: 500, rooms: 10, timeoutMs: 30_000, connectConcurrency: 64 }

interface Outcome {
  readonly storm: StormResult
  readonly killAt: number
  readonly readyAt: number
  readonly connected: number
}

export const run = async (ctx: Context, options: Options): Promise<ComparisonResult> => {
  const notes: Array<string> = []
  const connections = capConnections(options.connections, notes, "reconnect storm")
  const clients: Array<ClientSpec> = Array.from({ length: connections }, (_, i) => ({
    user: `storm-${i}`,
    device: "d1",
    node: 0,
    rooms: [`room-${i % options.rooms}`]
  }))
  const outcomes: Partial<Record<ContenderId, Outcome>> = {}
  for (const contender of ctx.contenders) {
    const failure = await withSession(ctx, contender, 1, async (session) => {
      const { loadgen, deployment } = session
      const connected = await connectClients(session, clients, { concurrency: options.connectConcurrency })
      if (connected.failed > 0) throw new Error(`${connected.failed} clients could not connect before the storm (${connected.firstFailure})`)
      await sleep(1000)
      await loadgen.arm()
      const server = deployment.servers[0]!
      Progress.setPhase("killing the server")
      const killAt = Date.now()
      await server.crash()
      Progress.setPhase("restarting the server")
      await server.start()
      const readyAt = Date.now()
      Progress.setPhase("waiting for every client")
      const storm = await loadgen.awaitBack(killAt, options.timeoutMs)
      outcomes[contender] = { storm, killAt, readyAt, connected: connected.opened }
      if (storm.back < storm.total) {
        notes.push(`${labels[contender]}: only ${storm.back} of ${storm.total} clients were back within ${options.timeoutMs / 1000} s`)
      }
      const failures = Object.entries(storm.failures)
      if (failures.length > 0) {
        notes.push(`${labels[contender]}: failed attempts: ${failures.map(([k, v]) => `${k} x${v}`).join(", ")}`)
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
  const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000)
  const c = `${connections.toLocaleString("en-US")} clients dropped at once`
  const rows: Array<ComparisonRow> = [
    { case: c, metric: "server restart", unit: "s", better: "lower", values: values((o) => (o.readyAt - o.killAt) / 1000) },
    { case: c, metric: "50% back, from kill", unit: "s", better: "lower", values: values((o) => seconds(o.storm.backAfterMs.p50)) },
    { case: c, metric: "90% back, from kill", unit: "s", better: "lower", values: values((o) => seconds(o.storm.backAfterMs.p90)) },
    { case: c, metric: "99% back, from kill", unit: "s", better: "lower", values: values((o) => seconds(o.storm.backAfterMs.p99)) },
    { case: c, metric: "all back, from kill", unit: "s", better: "lower", values: values((o) => seconds(o.storm.backAfterMs.all)) },
    {
      case: c,
      metric: "all back, from server ready",
      unit: "s",
      better: "lower",
      values: values((o) => (o.storm.backAfterMs.all === undefined ? undefined : (o.storm.backAfterMs.all - (o.readyAt - o.killAt)) / 1000))
    },
    { case: c, metric: "clients back", unit: "clients", better: "higher", values: values((o) => o.storm.back) },
    { case: c, metric: "attempts", unit: "count", better: "lower", values: values((o) => o.storm.attempts) },
    {
      case: c,
      metric: "failed attempts",
      unit: "count",
      better: "lower",
      values: values((o) => Object.values(o.storm.failures).reduce((a, b) => a + b, 0))
    }
  ]
  return {
    scenario: "storm",
    title: `Reconnect storm: ${connections.toLocaleString("en-US")} clients lose their server at once (${ctx.quick ? "quick" : "full"} run)`,
    parameters: {
      ...options,
      connections,
      drop: "SIGKILL of the server process, then the same command again on the same port",
      backoff: "the client SDK's: a random delay in [0, min(30 s, 500 ms x 2^attempt)), attempt counting from 0 at the drop",
      resubscribe: "each client subscribes again to its one room; back = open and subscription acknowledged"
    },
    contenders: ctx.contenders,
    rows,
    notes,
    plot: {
      title: "Reconnect storm",
      subtitle: `${connections.toLocaleString("en-US")} clients, SDK backoff (${ctx.quick ? "quick run" : "full run"})`,
      charts: [
        {
          kind: "bars",
          title: "Seconds from the kill until clients are back and resubscribed (lower is better)",
          unit: "seconds",
          groups: (["p50", "p90", "p99", "all"] as const).map((q) => ({
            label: q === "all" ? "all clients" : `${q.slice(1)}% of clients`,
            values: Object.fromEntries(ctx.contenders.map((ct) => [labels[ct], seconds(outcomes[ct]?.storm.backAfterMs[q])]))
          }))
        }
      ]
    },
    raw: { outcomes }
  }
}
