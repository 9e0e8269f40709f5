/**
 * What every node reports about itself, readable from any node: the service
 * API's `cluster.stats` and the dashboard. Each node writes its report every
 * few seconds into one Redis hash (`weft:{<cluster>}:node-stats`, field = node
 * id); a report older than `staleAfterMs` is a node that stopped reporting and
 * is left out (and removed). In memory on the embedded node.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { keyPrefix, Redis } from "./Redis.ts"

/** A histogram as counters: `buckets` are `[le, count of values <= le]`, finite bounds only; `count` includes the rest. */
export const LatencyHistogram = Schema.Struct({
  count: Schema.Number,
  buckets: Schema.Array(Schema.Tuple(Schema.Number, Schema.Number))
})

/** A node's active rooms: `active` counts them all, `top` lists the largest (bounded) with connections and distinct users. */
export const ActiveRooms = Schema.Struct({
  active: Schema.Number,
  top: Schema.Array(Schema.Struct({ room: Schema.String, members: Schema.Number, users: Schema.Number }))
})

export const Report = Schema.Struct({
  node: Schema.String,
  roles: Schema.Array(Schema.String),
  ready: Schema.Boolean,
  connections: Schema.Number,
  actors: Schema.Array(Schema.Struct({ kind: Schema.String, alive: Schema.Number, mailboxDepth: Schema.Number })),
  /** UTC ms of the report. */
  at: Schema.Number,
  // Optional, so that reports of nodes that do not send them (older versions) still decode.
  /** Frames received from clients since the node started (a counter: readers compute rates). */
  messagesIn: Schema.optionalWith(Schema.Number, { exact: true }),
  /** Frames handed to client sockets since the node started, one per recipient. */
  messagesOut: Schema.optionalWith(Schema.Number, { exact: true }),
  /** Actor restarts by supervisors since the node started, every kind. */
  restarts: Schema.optionalWith(Schema.Number, { exact: true }),
  /** The fan-out latency histogram since the node started: cumulative counts per finite bucket (`le` in seconds). */
  fanoutLatency: Schema.optionalWith(LatencyHistogram, { exact: true }),
  /** The rooms active on this node (the chat role): how many, and the largest by members. */
  rooms: Schema.optionalWith(ActiveRooms, { exact: true })
})
export type Report = typeof Report.Type

export class NodeStatsError extends Schema.TaggedError<NodeStatsError>()("NodeStatsError", { message: Schema.String }) {}

export interface NodeStatsService {
  readonly report: (report: Report) => Effect.Effect<void, NodeStatsError>
  /** Every node's latest report that is not stale, by node id. */
  readonly all: Effect.Effect<ReadonlyArray<Report>, NodeStatsError>
}

export class NodeStats extends Context.Tag("@weft/cluster/NodeStats")<NodeStats, NodeStatsService>() {}

const encode = Schema.encodeSync(Schema.parseJson(Report))
const decode = Schema.decodeUnknownEither(Schema.parseJson(Report))

export const layerMemory = (staleAfterMs: number): Layer.Layer<NodeStats> =>
  Layer.sync(NodeStats, () => {
    const reports = new Map<string, Report>()
    return {
      report: (report) => Effect.sync(() => void reports.set(report.node, report)),
      all: Effect.clockWith((clock) =>
        Effect.sync(() => Array.from(reports.values()).filter((r) => r.at > clock.unsafeCurrentTimeMillis() - staleAfterMs))
      )
    }
  })

export const layerRedis = (options: { readonly cluster: string; readonly staleAfterMs: number }): Layer.Layer<NodeStats, never, Redis> =>
  Layer.effect(
    NodeStats,
    Effect.map(Redis, (redis) => {
      const key = `${keyPrefix(options.cluster)}node-stats`
      const failed = (error: { readonly message: string }) => new NodeStatsError({ message: error.message })
      return {
        report: (report) =>
          redis.use((client) => client.multi().hset(key, report.node, encode(report)).pexpire(key, options.staleAfterMs * 10).exec()).pipe(
            Effect.asVoid,
            Effect.mapError(failed)
          ),
        all: Effect.gen(function*() {
          const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          const values = yield* redis.use((client) => client.hgetall(key)).pipe(Effect.mapError(failed))
          const reports: Array<Report> = []
          const stale: Array<string> = []
          for (const [node, value] of Object.entries(values)) {
            const report = decode(value)
            if (report._tag === "Right" && report.right.at > now - options.staleAfterMs) reports.push(report.right)
            else stale.push(node)
          }
          if (stale.length > 0) yield* Effect.ignore(redis.use((client) => client.hdel(key, ...stale)))
          return reports
        })
      }
    })
  )
