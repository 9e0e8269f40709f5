/**
 * The chat role's part of the client protocol, plugged into the gateway:
 * `room:<id>` channels (subscribing joins the room and recovers from a
 * position; publishing sends a message), `presence:room:<id>` channels (join
 * and leave events), and the `room.*` RPC methods. Permissions from the JWT
 * are checked here; the room checks its own settings and authorship.
 */
import { BatchLanes } from "@weft/actor"
import { Entities } from "@weft/cluster"
import { Extensions } from "@weft/gateway"
import { Data, Effect, Schedule, Schema } from "effect"
import { channelOf, Member, newRequestKey, type Position, Room, RoomId, RoomRefused } from "./Room.ts"
import { type HistoryEntry, MessageId } from "./RoomEvent.ts"

const callTimeout = "10 seconds"

const RoomOnly = Schema.Struct({ room: RoomId })

/** A publish waiting in its connection's lane to the room. */
interface PublishItem {
  readonly caller: Extensions.Caller
  readonly room: string
  readonly body: unknown
  readonly key: string
}

/** The room's refusals keep their name; anything else (timeout, mailbox full, cluster trouble) is `unavailable`. */
const toRequestError = (error: unknown): Extensions.RequestError =>
  error instanceof RoomRefused
    ? Extensions.refuse(error.reason, error.message)
    : Extensions.refuse("unavailable", "the room is unavailable right now; retry")

/** A room call that died on its way between nodes (not a refusal): worth another try. */
class InTransit extends Data.TaggedError("InTransit")<{ readonly defect: unknown }> {}

/** 50 ms, 100 ms, ... up to 1 s between tries; `callTimeout` bounds the whole. */
const transitRetry = Schedule.exponential("50 millis").pipe(Schedule.union(Schedule.spaced("1 second")))

/** A history entry as the `message` frame a subscriber would have received live. */
const frameOf = (channel: string, entry: HistoryEntry): Extensions.MessageFrame => ({
  type: "message",
  channel,
  data: entry.event,
  from: entry.from,
  position: entry.position,
  at: entry.at
})

export const layer = Extensions.register((extensions) =>
  Effect.gen(function*() {
    const rooms = yield* Room.client
    /**
     * A call to a room, bounded by `callTimeout`. While a room moves between nodes (a node
     * draining or dying), a call can die on the way: the node-to-node socket breaks, or the room's
     * shard has no owner for a moment. Every room request is safe to repeat (stored events carry
     * their request key, the rest are idempotent), so those are retried within the same bound
     * instead of failing a client's subscribe or publish in the middle of a deploy.
     */
    const call = <A, E>(room: string, request: Effect.Effect<A, E>) =>
      request.pipe(
        Effect.catchAllDefect((defect) => Effect.fail(new InTransit({ defect }))),
        Effect.retry({ while: (error) => error instanceof InTransit, schedule: transitRetry }),
        Entities.withTimeout(`room/${room}`, callTimeout),
        Effect.mapError(toRequestError)
      )

    const roomOf = (channel: string, prefix: string): Effect.Effect<string, Extensions.RequestError> => {
      const room = channel.slice(prefix.length)
      return Schema.is(RoomId)(room) ? Effect.succeed(room) : Effect.fail(Extensions.refuse("invalid_channel", `not a room channel: ${channel}`))
    }

    /**
     * A connection's publishes to a room, in its order: one Publish per batch of those sent
     * while the previous batch was on its way (keyed, like a Send, against the cluster's repeats).
     */
    const lanes = yield* BatchLanes.make<PublishItem, { readonly position: Position }, Extensions.RequestError>({
      maxBatch: 256,
      send: (_, batch) => {
        const { caller, room } = batch[0]
        return call(
          room,
          rooms(room).Publish({
            from: caller.grant.user,
            ...(caller.grant.device === undefined ? {} : { device: caller.grant.device }),
            moderator: caller.canModerate(channelOf(room)),
            messages: batch.map(({ body, key }) => ({ body, key }))
          })
        )
      }
    })

    const allowed = (ok: boolean, what: string, channel: string) =>
      ok ? Effect.void : Effect.fail(Extensions.refuse("forbidden", `not allowed to ${what} ${channel}`))

    yield* extensions.addChannel({
      prefix: "room:",
      subscribe: (caller, channel, since) =>
        Effect.gen(function*() {
          yield* allowed(caller.canSubscribe(channel), "subscribe to", channel)
          const room = yield* roomOf(channel, "room:")
          const member = new Member({
            conn: caller.conn,
            user: caller.grant.user,
            ...(caller.grant.device === undefined ? {} : { device: caller.grant.device }),
            node: caller.node
          })
          const joined = yield* call(room, rooms(room).Join({ member, ...(since === undefined ? {} : { since }) }))
          return {
            position: joined.position,
            ...(joined.recovery === undefined ? {} : { recovery: joined.recovery }),
            catchUp: joined.missed.map((entry) => frameOf(channel, entry))
          }
        }),
      unsubscribe: (caller, channel) =>
        Effect.ignore(Effect.flatMap(roomOf(channel, "room:"), (room) => call(room, rooms(room).Leave({ conn: caller.conn })))),
      publish: (caller, channel, data) =>
        Effect.gen(function*() {
          yield* allowed(caller.canPublish(channel), "publish to", channel)
          const room = yield* roomOf(channel, "room:")
          const pending = lanes.submit(`${caller.conn} ${room}`, { caller, room, body: data, key: newRequestKey() })
          return Effect.map(pending, (accepted) => ({ position: accepted.position }))
        })
    })

    // Presence events of a room, for those who may read the room.
    yield* extensions.addChannel({
      prefix: "presence:room:",
      subscribe: (caller, channel) =>
        Effect.gen(function*() {
          const room = yield* roomOf(channel, "presence:room:")
          yield* allowed(caller.canSubscribe(channelOf(room)), "subscribe to", channelOf(room))
          return { catchUp: [] }
        }),
      unsubscribe: () => Effect.void,
      publish: (_, channel) => Effect.fail(Extensions.refuse("forbidden", `${channel} is written by the server only`)),
      // As `subscribe` checks: who may read the room may hear its presence.
      allows: (caller, channel) => caller.canSubscribe(channelOf(channel.slice("presence:room:".length)))
    })

    const sendPayload = (
      caller: Extensions.Caller,
      channel: string,
      body: unknown,
      replyTo: string | undefined,
      thread: string | undefined
    ) => ({
      from: caller.grant.user,
      ...(caller.grant.device === undefined ? {} : { device: caller.grant.device }),
      body,
      ...(replyTo === undefined ? {} : { replyTo }),
      ...(thread === undefined ? {} : { thread }),
      moderator: caller.canModerate(channel),
      key: newRequestKey()
    })

    /** A room method: checks the permission on the room's channel, then calls the room. */
    const roomMethod = <P extends { readonly room: string }, I>(
      name: string,
      params: Schema.Schema<P, I>,
      permission: "subscribe" | "publish" | "moderate",
      run: (caller: Extensions.Caller, room: string, params: P) => Effect.Effect<unknown, Extensions.RequestError>
    ) =>
      extensions.addMethod(Extensions.method(name, params, (caller, decoded) => {
        const channel = channelOf(decoded.room)
        const ok = permission === "subscribe"
          ? caller.canSubscribe(channel)
          : permission === "publish"
          ? caller.canPublish(channel)
          : caller.canModerate(channel)
        return ok
          ? run(caller, decoded.room, decoded)
          : Effect.fail(Extensions.refuse("forbidden", `not allowed to ${permission === "subscribe" ? "read" : permission} ${channel}`))
      }))

    const position = (accepted: { readonly id?: string | undefined; readonly position: Position; readonly at: number }) => accepted

    yield* roomMethod(
      "room.send",
      Schema.Struct({ room: RoomId, body: Schema.Unknown, replyTo: Schema.optional(MessageId), thread: Schema.optional(MessageId) }),
      "publish",
      (caller, room, params) =>
        Effect.map(call(room, rooms(room).Send(sendPayload(caller, channelOf(room), params.body, params.replyTo, params.thread))), position)
    )
    yield* roomMethod("room.edit", Schema.Struct({ room: RoomId, id: MessageId, body: Schema.Unknown }), "publish", (caller, room, params) =>
      Effect.map(call(room, rooms(room).Edit({ from: caller.grant.user, id: params.id, body: params.body, key: newRequestKey() })), position))
    yield* roomMethod("room.delete", Schema.Struct({ room: RoomId, id: MessageId }), "publish", (caller, room, params) =>
      Effect.map(
        call(room, rooms(room).Delete({
          from: caller.grant.user,
          id: params.id,
          moderator: caller.canModerate(channelOf(room)),
          key: newRequestKey()
        })),
        position
      ))
    yield* roomMethod("room.pin", Schema.Struct({ room: RoomId, id: MessageId }), "publish", (caller, room, params) =>
      Effect.map(call(room, rooms(room).Pin({ from: caller.grant.user, id: params.id, pinned: true, key: newRequestKey() })), position))
    yield* roomMethod("room.unpin", Schema.Struct({ room: RoomId, id: MessageId }), "publish", (caller, room, params) =>
      Effect.map(call(room, rooms(room).Pin({ from: caller.grant.user, id: params.id, pinned: false, key: newRequestKey() })), position))
    yield* roomMethod("room.pins", RoomOnly, "subscribe", (_, room) => call(room, rooms(room).Pins()))
    yield* roomMethod("room.typing", RoomOnly, "publish", (caller, room) =>
      call(room, rooms(room).Typing({ from: caller.grant.user, ...(caller.grant.device === undefined ? {} : { device: caller.grant.device }) })))
    yield* roomMethod(
      "room.history",
      Schema.Struct({
        room: RoomId,
        before: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
        after: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative())),
        limit: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 500)), { default: () => 50 })
      }),
      "subscribe",
      (_, room, params) =>
        Effect.map(
          call(room, rooms(room).History({
            limit: params.limit,
            ...(params.before === undefined ? {} : { before: params.before }),
            ...(params.after === undefined ? {} : { after: params.after })
          })),
          (page) => ({
            epoch: page.epoch,
            first: page.first,
            last: page.last,
            messages: page.entries.map((entry) => frameOf(channelOf(room), entry))
          })
        )
    )
    yield* roomMethod("room.presence", RoomOnly, "subscribe", (_, room) => call(room, rooms(room).Presence()))
    yield* roomMethod("room.configure", Schema.Struct({ room: RoomId, readOnly: Schema.Boolean }), "moderate", (caller, room, params) =>
      Effect.map(call(room, rooms(room).Configure({ from: caller.grant.user, readOnly: params.readOnly })), position))
  })
)
