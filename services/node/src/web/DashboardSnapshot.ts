/**
 * What the dashboard shows, computed from the cluster's node reports
 * (NodeStats): one row per node (roles, readiness, connections, actors by
 * kind, messages/s in and out, p99 fan-out latency, restarts), the cluster's
 * totals, and the largest rooms. Reports carry counters since each node
 * started; rates and the p99 are over the interval between a node's two
 * latest reports, so they describe the last few seconds, not the node's life.
 *
 * Pure: `next(state, reports, now)` gives the frame and the state to keep
 * (each node's previous report) for the next call.
 */
import type { NodeStats } from "@weft/cluster"

type Report = NodeStats.Report
type Histogram = NonNullable<Report["fanoutLatency"]>

export interface ActorRow {
  readonly kind: string
  readonly alive: number
  readonly mailboxDepth: number
}

export interface NodeRow {
  readonly node: string
  readonly roles: ReadonlyArray<string>
  readonly ready: boolean
  readonly connections: number
  readonly actors: ReadonlyArray<ActorRow>
  /** Frames from clients per second; null until the node has reported twice (or when it does not report it). */
  readonly messagesInPerSecond: number | null
  /** Frames to client sockets per second (one per recipient). */
  readonly messagesOutPerSecond: number | null
  /** The 99th percentile of fan-out latency over the interval, in ms; null when nothing was fanned out. */
  readonly fanoutP99Ms: number | null
  /** Actor restarts since the node started. */
  readonly restarts: number | null
  /** UTC ms of the node's report. */
  readonly reportedAt: number
}

export interface RoomRow {
  readonly room: string
  readonly members: number
  readonly users: number
  /** The node hosting the room's activation. */
  readonly node: string
}

export interface Frame {
  readonly type: "snapshot"
  /** UTC ms when the frame was made. */
  readonly at: number
  /** The node serving this feed. */
  readonly servedBy: string
  readonly nodes: ReadonlyArray<NodeRow>
  readonly totals: {
    readonly nodes: number
    readonly ready: number
    readonly connections: number
    readonly actors: ReadonlyArray<ActorRow>
    readonly messagesInPerSecond: number | null
    readonly messagesOutPerSecond: number | null
    readonly fanoutP99Ms: number | null
    readonly restarts: number | null
  }
  readonly rooms: { readonly active: number; readonly top: ReadonlyArray<RoomRow> }
}

/** Per node: its latest report and the one before it (a different `at`), to compute rates from. */
export interface State {
  readonly reports: ReadonlyMap<string, { readonly latest: Report; readonly previous: Report | undefined }>
}

export const initial: State = { reports: new Map() }

/** Rooms a frame lists at most. */
export const roomsInFrame = 50

/** Two reports further apart than this are not used for a rate (a node that was away, a feed that slept). */
export const maxIntervalMs = 10_000

/** Counts per second of a counter between two reports; null when either lacks it or they are unusable. */
export const ratePerSecond = (previous: number | undefined, latest: number | undefined, intervalMs: number): number | null => {
  if (previous === undefined || latest === undefined || intervalMs <= 0) return null
  // A counter that went down is a restarted node: no rate for this interval.
  if (latest < previous) return null
  return ((latest - previous) * 1000) / intervalMs
}

/** The histogram of the values recorded between two cumulative snapshots (same buckets). */
export const histogramDelta = (previous: Histogram | undefined, latest: Histogram): Histogram | null => {
  if (previous === undefined) return null
  if (latest.count < previous.count || latest.buckets.length !== previous.buckets.length) return null
  const buckets: Array<readonly [number, number]> = []
  for (let i = 0; i < latest.buckets.length; i++) {
    const [le, count] = latest.buckets[i]!
    const [lePrevious, countPrevious] = previous.buckets[i]!
    if (le !== lePrevious) return null
    buckets.push([le, count - countPrevious])
  }
  return { count: latest.count - previous.count, buckets }
}

/** Sums histograms with the same buckets (the nodes'), skipping any whose buckets differ from the first. */
export const histogramSum = (histograms: ReadonlyArray<Histogram>): Histogram | null => {
  const first = histograms[0]
  if (first === undefined) return null
  const buckets = first.buckets.map(([le]) => [le, 0] as [number, number])
  let count = 0
  for (const histogram of histograms) {
    if (histogram.buckets.length !== buckets.length || histogram.buckets.some(([le], i) => le !== buckets[i]![0])) continue
    count += histogram.count
    histogram.buckets.forEach(([, n], i) => {
      buckets[i]![1] += n
    })
  }
  return { count, buckets }
}

/**
 * The `q` quantile (0-1) of a histogram of cumulative buckets, interpolated linearly inside the
 * bucket it falls in (as Prometheus' `histogram_quantile`); past the last finite bucket, that
 * bucket's bound. Null when the histogram is empty.
 */
export const quantile = (histogram: Histogram, q: number): number | null => {
  if (histogram.count <= 0) return null
  const rank = q * histogram.count
  let lowerBound = 0
  let lowerCount = 0
  for (const [le, cumulative] of histogram.buckets) {
    if (cumulative >= rank) {
      const inBucket = cumulative - lowerCount
      return inBucket <= 0 ? le : lowerBound + (le - lowerBound) * ((rank - lowerCount) / inBucket)
    }
    lowerBound = le
    lowerCount = cumulative
  }
  const last = histogram.buckets[histogram.buckets.length - 1]
  return last === undefined ? null : last[0]
}

const toMs = (seconds: number | null): number | null => (seconds === null ? null : Math.round(seconds * 1000 * 1000) / 1000)

const sumOrNull = (values: ReadonlyArray<number | null>): number | null =>
  values.some((value) => value !== null) ? values.reduce<number>((sum, value) => sum + (value ?? 0), 0) : null

/** Folds the latest reports into the state and makes the frame. `servedBy` is the node serving the feed. */
export const next = (
  state: State,
  reports: ReadonlyArray<Report>,
  now: number,
  servedBy: string
): { readonly state: State; readonly frame: Frame } => {
  const kept = new Map<string, { readonly latest: Report; readonly previous: Report | undefined }>()
  for (const report of reports) {
    const known = state.reports.get(report.node)
    if (known === undefined) kept.set(report.node, { latest: report, previous: undefined })
    else if (known.latest.at === report.at) kept.set(report.node, known)
    else kept.set(report.node, { latest: report, previous: known.latest })
  }

  const deltas: Array<Histogram> = []
  const nodes: Array<NodeRow> = []
  for (const { latest, previous: before } of kept.values()) {
    const interval = before === undefined ? 0 : latest.at - before.at
    const previous = interval > 0 && interval <= maxIntervalMs ? before : undefined
    const delta = latest.fanoutLatency === undefined ? null : histogramDelta(previous?.fanoutLatency, latest.fanoutLatency)
    if (delta !== null) deltas.push(delta)
    nodes.push({
      node: latest.node,
      roles: latest.roles,
      ready: latest.ready,
      connections: latest.connections,
      actors: latest.actors,
      messagesInPerSecond: ratePerSecond(previous?.messagesIn, latest.messagesIn, interval),
      messagesOutPerSecond: ratePerSecond(previous?.messagesOut, latest.messagesOut, interval),
      fanoutP99Ms: delta === null ? null : toMs(quantile(delta, 0.99)),
      restarts: latest.restarts ?? null,
      reportedAt: latest.at
    })
  }
  nodes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))

  const actors = new Map<string, { alive: number; mailboxDepth: number }>()
  for (const row of nodes) {
    for (const actor of row.actors) {
      const total = actors.get(actor.kind) ?? { alive: 0, mailboxDepth: 0 }
      total.alive += actor.alive
      total.mailboxDepth += actor.mailboxDepth
      actors.set(actor.kind, total)
    }
  }

  // Each room has one activation in the cluster, on one node: the nodes' lists do not overlap.
  const rooms: Array<RoomRow> = []
  let activeRooms = 0
  for (const { latest } of kept.values()) {
    if (latest.rooms === undefined) continue
    activeRooms += latest.rooms.active
    for (const room of latest.rooms.top) rooms.push({ ...room, node: latest.node })
  }
  rooms.sort((a, b) => b.members - a.members || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0))

  const clusterLatency = histogramSum(deltas)
  const frame: Frame = {
    type: "snapshot",
    at: now,
    servedBy,
    nodes,
    totals: {
      nodes: nodes.length,
      ready: nodes.filter((row) => row.ready).length,
      connections: nodes.reduce((sum, row) => sum + row.connections, 0),
      actors: Array.from(actors, ([kind, total]) => ({ kind, ...total })).sort((a, b) => (a.kind < b.kind ? -1 : 1)),
      messagesInPerSecond: sumOrNull(nodes.map((row) => row.messagesInPerSecond)),
      messagesOutPerSecond: sumOrNull(nodes.map((row) => row.messagesOutPerSecond)),
      fanoutP99Ms: clusterLatency === null ? null : toMs(quantile(clusterLatency, 0.99)),
      restarts: sumOrNull(nodes.map((row) => row.restarts))
    },
    rooms: { active: activeRooms, top: rooms.slice(0, roomsInFrame) }
  }
  return { state: { reports: kept }, frame }
}
