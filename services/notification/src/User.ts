/**
 * The user: one @effect/cluster entity per user id, knowing every live
 * connection of that user on every node. This is the cluster-level skeleton;
 * delivery, the offline inbox and read state arrive with the notifications
 * issue.
 */
import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Entities } from "@weft/cluster"
import { Effect, Schema } from "effect"

export class Connection extends Schema.Class<Connection>("Connection")({
  /** The connection actor's address, `conn/<node>/<n>`. */
  conn: Schema.String,
  node: Schema.String,
  device: Schema.optional(Schema.String)
}) {}

/** The shard group of users: hosted by the nodes that run the notification role. */
export const shardGroup = "notification"

export const User = Entity.make("user", [
  /** Registers a connection unless the user already has `max` (then `accepted` is false). */
  Rpc.make("Attach", {
    payload: { connection: Connection, max: Schema.optional(Schema.Number) },
    success: Schema.Struct({ accepted: Schema.Boolean, connections: Schema.Number })
  }),
  Rpc.make("Detach", { payload: { conn: Schema.String }, success: Schema.Struct({ connections: Schema.Number }) }),
  /** Drops every connection registered by `node` (that node died or drained). */
  Rpc.make("DetachNode", { payload: { node: Schema.String }, success: Schema.Struct({ connections: Schema.Number }) }),
  Rpc.make("Connections", { success: Schema.Array(Connection) })
]).annotate(ClusterSchema.ShardGroup, () => shardGroup)

export const UserLive = Entities.toLayer(
  User,
  Effect.sync(() => {
    const connections = new Map<string, Connection>()
    const count = () => ({ connections: connections.size })
    return User.of({
      Attach: ({ payload }) =>
        Effect.sync(() => {
          const known = connections.has(payload.connection.conn)
          if (!known && payload.max !== undefined && connections.size >= payload.max) {
            return { accepted: false, ...count() }
          }
          connections.set(payload.connection.conn, payload.connection)
          return { accepted: true, ...count() }
        }),
      Detach: ({ payload }) =>
        Effect.sync(() => {
          connections.delete(payload.conn)
          return count()
        }),
      DetachNode: ({ payload }) =>
        Effect.sync(() => {
          for (const [conn, connection] of connections) if (connection.node === payload.node) connections.delete(conn)
          return count()
        }),
      Connections: () => Effect.sync(() => Array.from(connections.values()))
    })
  }),
  { maxIdleTime: "5 minutes" }
)
