/**
 * The room: one @effect/cluster entity per room id, so exactly one live
 * activation in the cluster orders its messages. This is the cluster-level
 * skeleton (membership, per-room offsets, recent messages); permissions,
 * edits, history in Redis and fan-out to members arrive with the rooms issue.
 */
import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Entities } from "@weft/cluster"
import { Effect, Schema } from "effect"

export const RoomId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:-]{1,128}$/))

export class Member extends Schema.Class<Member>("Member")({
  /** The connection actor's address, `conn/<node>/<n>`. */
  conn: Schema.String,
  user: Schema.String,
  node: Schema.String
}) {}

export class RoomMessage extends Schema.Class<RoomMessage>("RoomMessage")({
  offset: Schema.Number,
  sender: Schema.String,
  body: Schema.String,
  at: Schema.Number
}) {}

export class RoomInfo extends Schema.Class<RoomInfo>("RoomInfo")({
  room: Schema.String,
  /** Where this activation runs (`host:port` of its runner). */
  runner: Schema.String,
  /** Random per activation: two answers with different ids came from two activations. */
  activation: Schema.String,
  members: Schema.Number,
  offset: Schema.Number
}) {}

/** The shard group of rooms: hosted by the nodes that run the chat role. */
export const shardGroup = "chat"

export const Room = Entity.make("room", [
  Rpc.make("Join", { payload: { member: Member }, success: Schema.Struct({ members: Schema.Number }) }),
  Rpc.make("Leave", { payload: { conn: Schema.String }, success: Schema.Struct({ members: Schema.Number }) }),
  Rpc.make("Publish", {
    payload: { sender: Schema.String, body: Schema.String },
    success: Schema.Struct({ offset: Schema.Number, activation: Schema.String })
  }),
  Rpc.make("Recent", { payload: { limit: Schema.Number.pipe(Schema.int(), Schema.between(1, 1000)) }, success: Schema.Array(RoomMessage) }),
  Rpc.make("Info", { success: RoomInfo })
]).annotate(ClusterSchema.ShardGroup, () => shardGroup)

/** Messages kept in memory per activation (the rooms issue moves history to Redis streams). */
const RECENT_LIMIT = 1000

export const RoomLive = Entities.toLayer(
  Room,
  Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    const runner = yield* Entity.CurrentRunnerAddress
    const activation = crypto.randomUUID().slice(0, 8)
    const members = new Map<string, Member>()
    const recent: Array<RoomMessage> = []
    let offset = 0
    return Room.of({
      Join: ({ payload }) =>
        Effect.sync(() => {
          members.set(payload.member.conn, payload.member)
          return { members: members.size }
        }),
      Leave: ({ payload }) =>
        Effect.sync(() => {
          members.delete(payload.conn)
          return { members: members.size }
        }),
      Publish: ({ payload }) =>
        Effect.gen(function*() {
          const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          offset++
          recent.push(new RoomMessage({ offset, sender: payload.sender, body: payload.body, at }))
          if (recent.length > RECENT_LIMIT) recent.splice(0, recent.length - RECENT_LIMIT)
          return { offset, activation }
        }),
      Recent: ({ payload }) => Effect.sync(() => recent.slice(-payload.limit)),
      Info: () =>
        Effect.succeed(
          new RoomInfo({
            room: address.entityId,
            runner: `${runner.host}:${runner.port}`,
            activation,
            members: members.size,
            offset
          })
        )
    })
  }),
  { maxIdleTime: "5 minutes" }
)
