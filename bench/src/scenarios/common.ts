/**
 * What every side-by-side scenario does the same way: start a contender's
 * servers and a fresh load generator, measure a run with the CPU and RSS of
 * every process, stop everything (also when something fails, which becomes a
 * note in the results instead of ending the whole bench), and check the
 * machine's limits before opening thousands of sockets.
 */
import { clientKinds, type ContenderId, deploy, type Deployment, labels } from "../contenders.ts"
import * as LoadGen from "../loadgen/handle.ts"
import type { ClientSpec, ConnectArgs, ConnectResult, RunArgs, RunResult } from "../loadgen/protocol.ts"
import { ephemeralPorts, fdLimits, type ProcessUsage, sampler } from "../procs.ts"
import * as Progress from "../progress.ts"

export interface Context {
  readonly quick: boolean
  readonly contenders: ReadonlyArray<ContenderId>
  /** Unique per bench run: Weft cluster names and Socket.IO Redis key prefixes derive from it. */
  readonly runId: string
  /** The exact server command lines of the scenario, by deployment (`weft x2`), for the results file. */
  readonly commands: Record<string, ReadonlyArray<ReadonlyArray<string>>>
  /** The last lines each server process wrote, when it wrote any (errors), for the results file. */
  readonly serverOutput: Record<string, ReadonlyArray<string>>
}

export interface Session {
  readonly contender: ContenderId
  readonly deployment: Deployment
  readonly loadgen: LoadGen.LoadGenerator
  /** Server processes and the load generator, for CPU and RSS. */
  readonly processes: () => ReadonlyArray<{ readonly name: string; readonly pid: number }>
  readonly measure: (args: RunArgs) => Promise<Measured>
}

/**
 * Opens `clients` on the session's servers as its contender's clients connect (Weft's with the
 * nodes' JWT secret), each within 20 s; failures are counted unless `stopOnFailure`.
 */
export const connectClients = (
  session: Session,
  clients: ReadonlyArray<ClientSpec>,
  options: Pick<ConnectArgs, "concurrency"> & Partial<Pick<ConnectArgs, "stopOnFailure" | "deadlineMs">>
): Promise<ConnectResult> =>
  session.loadgen.connect({
    kind: clientKinds[session.contender],
    urls: session.deployment.urls,
    ...(session.deployment.jwtSecret === undefined ? {} : { jwtSecret: session.deployment.jwtSecret }),
    clients,
    concurrency: options.concurrency,
    timeoutMs: 20_000,
    stopOnFailure: options.stopOnFailure ?? false,
    ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs })
  })

export interface Measured {
  readonly run: RunResult
  readonly usage: ReadonlyArray<ProcessUsage>
  /** CPU of the server processes together, in cores. */
  readonly serverCpu: number
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Deploys `contender` on `nodes` processes with a load generator of its own, runs `body`, and
 * stops both whatever happens. A failure is returned as a note (the scenario goes on with
 * the next contender) rather than thrown.
 */
export const withSession = async (
  ctx: Context,
  contender: ContenderId,
  nodes: number,
  body: (session: Session) => Promise<void>
): Promise<string | undefined> => {
  const name = nodes > 1 ? `${labels[contender]} x${nodes}` : labels[contender]
  Progress.setContender(name)
  Progress.setPhase("starting servers")
  let deployment: Deployment | undefined
  let loadgen: LoadGen.LoadGenerator | undefined
  try {
    deployment = await deploy(contender, { nodes, runId: `${ctx.runId}-${contender}-${nodes}` })
    ctx.commands[`${contender} x${nodes}`] = deployment.commands
    Progress.setPhase("starting load generator")
    loadgen = await LoadGen.start(Progress.fromLoadGenerator)
    const d = deployment
    const lg = loadgen
    const processes = () => [
      ...d.servers.map((s) => ({ name: s.name, pid: s.pid() })),
      { name: "load generator", pid: lg.pid }
    ]
    const session: Session = {
      contender,
      deployment: d,
      loadgen: lg,
      processes,
      measure: async (args) => {
        const s = sampler(processes())
        s.start()
        const run = await lg.run(args)
        const usage = s.stop()
        const serverCpu = usage.filter((u) => u.name !== "load generator").reduce((sum, u) => sum + u.cpu, 0)
        return { run, usage, serverCpu }
      }
    }
    await body(session)
    // What the servers said (Weft logs errors only): a hint at why a run lost deliveries.
    for (const server of d.servers) {
      const lines = server.output().filter((line) => !line.includes(`"listening"`))
      if (lines.length > 0) {
        const last = lines[lines.length - 1]!
        Progress.note(`${server.name} wrote ${lines.length >= 40 ? "40+" : lines.length} lines; the last: ${last.slice(0, 400)}`)
        ctx.serverOutput[`${name}: ${server.name}`] = [...lines]
      }
    }
    return undefined
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    Progress.note(`${name}: failed: ${message.split("\n").slice(0, 6).join("\n  ")}`)
    return `${name} failed: ${message.split("\n")[0]}`
  } finally {
    Progress.setPhase("stopping")
    await loadgen?.stop()
    await deployment?.stop()
    Progress.clear()
  }
}

/**
 * How many sockets this machine lets one server (and the load generator) hold: the open-files
 * limit of the processes (the bench raises its soft limit to the hard one at start, see
 * bench/run.sh) and the ephemeral ports of one client address to one server port.
 * `reserve` leaves room for the runtime's own files, Redis and HTTP.
 */
export const socketBudget = (reserve = 200): { readonly max: number; readonly reason: string } => {
  const { soft, hard } = fdLimits()
  const ports = ephemeralPorts()
  const byFiles = soft - reserve
  const byPorts = ports - reserve
  return byFiles <= byPorts
    ? { max: byFiles, reason: `the open-files limit (ulimit -n: soft ${soft}, hard ${hard}) of each server and load-generator process` }
    : { max: byPorts, reason: `the ephemeral port range (${ports} ports per client address and server port)` }
}

/** Caps a wanted connection count to the machine's budget, with a note when it had to. */
export const capConnections = (wanted: number, notes: Array<string>, what: string): number => {
  const budget = socketBudget()
  if (wanted <= budget.max) return wanted
  const note = `${what}: wanted ${wanted.toLocaleString("en-US")} connections, capped at ${budget.max.toLocaleString("en-US")} by ${budget.reason}`
  if (!notes.includes(note)) notes.push(note)
  Progress.note(`limit: ${note}`)
  return budget.max
}

export const subscribers = (count: number, room: string, offset: number, nodes = 1): Array<ClientSpec> =>
  Array.from({ length: count }, (_, i) => ({ user: `sub-${offset + i}`, device: "d1", node: (offset + i) % nodes, rooms: [room] }))

export const publisherSpec = (node = 0): ClientSpec => ({ user: "publisher", device: "d1", node, rooms: [] })

/** Milliseconds from microseconds, for the tables. */
export const ms = (us: number | undefined): number | undefined => (us === undefined ? undefined : us / 1000)

/** Notes about a run that lost deliveries or saw errors. */
export const runNotes = (who: string, what: string, measured: Measured): Array<string> => {
  const notes: Array<string> = []
  const { run } = measured
  if (run.lost > 0) notes.push(`${who}, ${what}: ${run.lost.toLocaleString("en-US")} deliveries lost (not received within the drain time)`)
  const errors = Object.entries(run.errors)
  if (errors.length > 0) notes.push(`${who}, ${what}: errors ${errors.map(([k, v]) => `${k} x${v}`).join(", ")}`)
  if (run.stale > 0) {
    notes.push(`${who}, ${what}: ${run.stale.toLocaleString("en-US")} deliveries of earlier runs' messages arrived during this run (the server was still working off a backlog; not counted)`)
  }
  if (run.publishersReconnected > 0) {
    notes.push(`${who}, ${what}: ${run.publishersReconnected} publisher connection(s) had been closed by the server and were opened again before this run`)
  }
  if (run.askedRate !== undefined && run.publishedPerSecond < 0.95 * run.askedRate) {
    notes.push(`${who}, ${what}: published ${run.publishedPerSecond.toFixed(0)} msg/s of the ${run.askedRate} asked (the publisher fell behind or its connection was lost)`)
  }
  if (run.loadgenCpu > 0.9) notes.push(`${who}, ${what}: the load generator was near one full core (${run.loadgenCpu.toFixed(2)}): this figure may be the client's limit, not the server's`)
  return notes
}
