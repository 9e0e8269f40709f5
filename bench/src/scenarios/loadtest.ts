/**
 * Scenario 2, the seed's load test: `users` users with `devices` connections each,
 * `rooms` rooms, each user in 1 to 3 of them (drawn with a fixed seed, the same for
 * every contender), every device subscribed to its user's rooms. Users chat at a
 * steady rate in all (`rate` msg/s): each message goes from one of a user's devices to
 * one of its rooms, users taking turns. On one server process (every contender), and
 * on two sharing the rooms over Redis (Weft and Socket.IO), devices alternating
 * between them.
 *
 * Figures: deliveries/s, publish -> deliver percentiles, deliveries lost and errors,
 * and CPU and RSS of every server process.
 */
import type { ComparisonResult, ComparisonRow } from "../comparison.ts"
import { clusterable, type ContenderId, labels } from "../contenders.ts"
import type { ClientSpec, Publisher } from "../loadgen/protocol.ts"
import type { CurveChart } from "../svg.ts"
import { capConnections, connectClients, type Context, type Measured, ms, runNotes, withSession } from "./common.ts"

export interface Options {
  readonly users: number
  readonly devices: number
  readonly rooms: number
  /** Messages per second, all users together. */
  readonly rate: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly drainMs: number
  readonly connectConcurrency: number
  readonly seed: number
}

export const defaults: Options = {
  users: 1000,
  devices: 5,
  rooms: 10,
  rate: 50,
  warmupMs: 3000,
  durationMs: 10_000,
  drainMs: 3000,
  connectConcurrency: 64,
  seed: 42
}

export const quick: Options = { ...defaults, users: 100, warmupMs: 1000, durationMs: 4000, drainMs: 2000, rate: 50 }

/** mulberry32: a small seeded PRNG, so every contender gets the same rooms. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

export interface Population {
  readonly clients: ReadonlyArray<ClientSpec>
  readonly publishers: ReadonlyArray<Publisher>
  readonly membersPerRoom: Record<string, number>
}

/** Users, their rooms and devices; publishers cycle through users, each using its devices and rooms in turn. */
export const population = (options: Options, users: number, nodes: number): Population => {
  const random = prng(options.seed)
  const roomsOf: Array<Array<string>> = []
  for (let u = 0; u < users; u++) {
    const count = 1 + Math.floor(random() * 3)
    const mine = new Set<string>()
    while (mine.size < Math.min(count, options.rooms)) mine.add(`room-${Math.floor(random() * options.rooms)}`)
    roomsOf.push([...mine])
  }
  const clients: Array<ClientSpec> = []
  const membersPerRoom: Record<string, number> = {}
  for (let u = 0; u < users; u++) {
    for (let d = 0; d < options.devices; d++) {
      clients.push({ user: `user-${u}`, device: `device-${d}`, node: (u + d) % nodes, rooms: roomsOf[u]! })
      for (const room of roomsOf[u]!) membersPerRoom[room] = (membersPerRoom[room] ?? 0) + 1
    }
  }
  // Round k: every user sends once, from device k mod devices to its room k mod (its rooms).
  const publishers: Array<Publisher> = []
  const rounds = options.devices * 6
  for (let k = 0; k < rounds; k++) {
    for (let u = 0; u < users; u++) {
      const rooms = roomsOf[u]!
      publishers.push({ conn: u * options.devices + (k % options.devices), room: rooms[k % rooms.length]! })
    }
  }
  return { clients, publishers, membersPerRoom }
}

interface Outcome {
  readonly measured: Measured
  readonly connectSeconds: number
  readonly connected: number
}

export const run = async (ctx: Context, options: Options): Promise<ComparisonResult> => {
  const notes: Array<string> = []
  const wanted = options.users * options.devices
  const allowed = capConnections(wanted, notes, "load test")
  const users = Math.floor(allowed / options.devices)
  const configs: Array<{ contender: ContenderId; nodes: 1 | 2 }> = [
    ...ctx.contenders.map((contender) => ({ contender, nodes: 1 as const })),
    ...ctx.contenders.filter((c) => clusterable.includes(c)).map((contender) => ({ contender, nodes: 2 as const }))
  ]
  const outcomes: Partial<Record<ContenderId, Partial<Record<1 | 2, Outcome>>>> = {}
  for (const { contender, nodes } of configs) {
    const people = population(options, users, nodes)
    const failure = await withSession(ctx, contender, nodes, async (session) => {
      const connected = await connectClients(session, people.clients, { concurrency: options.connectConcurrency })
      if (connected.failed > 0) {
        notes.push(`${labels[contender]}, ${nodes} node(s): ${connected.failed} of ${people.clients.length} connections failed (${connected.firstFailure})`)
      }
      const measured = await session.measure({
        label: `${users} users, ${options.rate}/s`,
        mode: "fixed",
        rate: options.rate,
        publishers: people.publishers,
        warmupMs: options.warmupMs,
        durationMs: options.durationMs,
        drainMs: options.drainMs
      })
      notes.push(...runNotes(`${labels[contender]}, ${nodes} node(s)`, "load test", measured))
      const byNodes = outcomes[contender] ?? {}
      byNodes[nodes] = { measured, connectSeconds: connected.seconds, connected: connected.opened }
      outcomes[contender] = byNodes
    })
    if (failure !== undefined) notes.push(failure)
  }

  const rows: Array<ComparisonRow> = []
  for (const nodes of [1, 2] as const) {
    const present = configs.filter((c) => c.nodes === nodes).map((c) => c.contender)
    if (present.length === 0) continue
    const c = `${users.toLocaleString("en-US")} users x ${options.devices} devices, ${options.rate} msg/s, ${nodes} node${nodes > 1 ? "s" : ""}`
    const values = (f: (o: Outcome) => number | undefined): Partial<Record<ContenderId, number>> =>
      Object.fromEntries(present.flatMap((ct) => {
        const o = outcomes[ct]?.[nodes]
        const v = o === undefined ? undefined : f(o)
        return v === undefined || !Number.isFinite(v) ? [] : [[ct, v]]
      }))
    rows.push(
      { case: c, metric: "connections", unit: "conns", better: "higher", values: values((o) => o.connected) },
      { case: c, metric: "deliveries/s", unit: "1/s", better: "higher", values: values((o) => o.measured.run.deliveriesPerSecond) },
      { case: c, metric: "p50", unit: "ms", better: "lower", values: values((o) => ms(o.measured.run.latencyUs.p50)) },
      { case: c, metric: "p95", unit: "ms", better: "lower", values: values((o) => ms(o.measured.run.latencyUs.p95)) },
      { case: c, metric: "p99", unit: "ms", better: "lower", values: values((o) => ms(o.measured.run.latencyUs.p99)) },
      { case: c, metric: "max", unit: "ms", better: "lower", values: values((o) => ms(o.measured.run.latencyUs.max)) },
      { case: c, metric: "deliveries lost", unit: "count", better: "lower", values: values((o) => o.measured.run.lost) },
      {
        case: c,
        metric: "errors",
        unit: "count",
        better: "lower",
        values: values((o) => Object.values(o.measured.run.errors).reduce((a, b) => a + b, 0))
      }
    )
    for (let p = 0; p < nodes; p++) {
      const name = nodes > 1 ? `, process ${p + 1}` : ""
      rows.push(
        { case: c, metric: `CPU${name}`, unit: "cores", better: "lower", values: values((o) => o.measured.usage[p]?.cpu) },
        { case: c, metric: `RSS peak${name}`, unit: "MiB", better: "lower", values: values((o) => (o.measured.usage[p]?.rssPeakBytes ?? 0) / 2 ** 20) }
      )
    }
    rows.push({ case: c, metric: "connect time", unit: "s", better: "lower", values: values((o) => o.connectSeconds) })
  }

  const curves: Array<CurveChart> = ([1, 2] as const).map((nodes) => ({
    kind: "curves",
    title: `Latency, ${nodes} process${nodes > 1 ? "es" : ""}`,
    series: Object.fromEntries(configs.filter((c) => c.nodes === nodes).flatMap((c) => {
      const o = outcomes[c.contender]?.[nodes]
      return o === undefined ? [] : [[labels[c.contender], o.measured.run.latencyUs.curve]]
    }))
  }))
  const sample = population(options, users, 1)
  return {
    scenario: "loadtest",
    title: `Load test: ${users.toLocaleString("en-US")} users, ${options.devices} devices each, ${options.rooms} rooms, steady chat (${ctx.quick ? "quick" : "full"} run)`,
    parameters: {
      ...options,
      users,
      connections: users * options.devices,
      connectionsPerRoom: sample.membersPerRoom,
      expectedDeliveriesPerSecond: Math.round(
        (options.rate * sample.publishers.reduce((sum, p) => sum + (sample.membersPerRoom[p.room] ?? 0), 0)) / sample.publishers.length
      ),
      placement: "on 2 processes, device d of user u on process (u + d) mod 2"
    },
    contenders: ctx.contenders,
    rows,
    notes,
    plot: {
      title: "Load test: many users, rooms and devices",
      subtitle: `${(users * options.devices).toLocaleString("en-US")} connections, ${options.rate} msg/s in all (${ctx.quick ? "quick run" : "full run"})`,
      charts: [
        {
          kind: "bars",
          title: "Deliveries per second (the same offered load for all)",
          unit: "deliveries/s",
          groups: ([1, 2] as const).map((nodes) => ({
            label: `${nodes} process${nodes > 1 ? "es" : ""}`,
            values: Object.fromEntries(configs.filter((c) => c.nodes === nodes).map((c) => [labels[c.contender], outcomes[c.contender]?.[nodes]?.measured.run.deliveriesPerSecond]))
          }))
        },
        {
          kind: "bars",
          title: "Server CPU, all processes (cores, lower is better)",
          unit: "cores",
          groups: ([1, 2] as const).map((nodes) => ({
            label: `${nodes} process${nodes > 1 ? "es" : ""}`,
            values: Object.fromEntries(configs.filter((c) => c.nodes === nodes).map((c) => [labels[c.contender], outcomes[c.contender]?.[nodes]?.measured.serverCpu]))
          }))
        },
        ...curves
      ]
    },
    raw: { outcomes }
  }
}
