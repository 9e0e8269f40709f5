/**
 * The room: one @effect/cluster entity per room id, so exactly one live
 * activation in the cluster orders its messages. It keeps membership and
 * presence, checks who may edit, delete and send (its own settings; the
 * caller's JWT permissions are checked at the gateway), appends every stored
 * event to the room's history and then fans it out, encoded once, on the
 * cluster topic of `room:<id>`. Being the only publisher on that topic, it
 * gives every subscriber the room's one order.
 */
import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { ClusterTopics, Entities, History, NodeLeases } from "@weft/cluster"
import { Fanout } from "@weft/gateway"
import { Codec, type Frame } from "@weft/protocol"
import { BatchLanes } from "@weft/actor"
import { type Array as Arr, Duration, Effect, Schedule, Schema } from "effect"
import { ActiveRooms } from "./ActiveRooms.ts"
import * as MembersStore from "./Members.ts"
import { Member, Members } from "./Members.ts"
import {
  HistoryEntry,
  idOf,
  MessageId,
  offsetOf,
  Present,
  type StoredRoomEvent,
  StoredRoomEvent as StoredRoomEventSchema
} from "./RoomEvent.ts"

/** A room id: what follows `room:` in its channel name. */
export const RoomId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._\-:@/|+=]{1,195}$/))

export const channelOf = (room: string): string => `room:${room}`
export const presenceChannelOf = (room: string): string => `presence:room:${room}`

/** The shard group of rooms: hosted by the nodes that run the chat role. */
export const shardGroup = "chat"

export { Member }

export const Position = Schema.Struct({ epoch: Schema.String, offset: Schema.Number })
export type Position = typeof Position.Type

/** Why the room refused; the names are the protocol's error catalogue names. */
export class RoomRefused extends Schema.TaggedError<RoomRefused>()("RoomRefused", {
  reason: Schema.Literal("forbidden", "not_found", "unavailable"),
  message: Schema.String
}) {}

export class RoomInfo extends Schema.Class<RoomInfo>("RoomInfo")({
  room: Schema.String,
  /** Where this activation runs (`host:port` of its runner). */
  runner: Schema.String,
  /** Random per activation: two answers with different ids came from two activations. */
  activation: Schema.String,
  members: Schema.Number,
  position: Position
}) {}

const Accepted = Schema.Struct({ id: Schema.optional(MessageId), position: Position, at: Schema.Number })
type Accepted = typeof Accepted.Type

/**
 * A key the caller makes once per request (`newRequestKey`). The cluster delivers a request
 * again when the node of the room dies before answering; if the first delivery was stored, the
 * room answers the second as it did the first instead of storing the event twice.
 */
const RequestKey = Schema.String.pipe(Schema.maxLength(64))

/** A fresh request key for a Send, Edit, Delete or Pin. */
export const newRequestKey = (): string => crypto.randomUUID()

/** How many keys a room remembers: a repeat follows its first delivery within a failover. */
const rememberedKeys = 64

const Pin = Schema.Struct({ id: MessageId, by: Schema.String, at: Schema.Number })

export const Room = Entity.make("room", [
  /** Membership (presence) and, with `since`, the events the member missed. */
  Rpc.make("Join", {
    payload: { member: Member, since: Schema.optional(Position) },
    success: Schema.Struct({
      position: Position,
      recovery: Schema.optional(Schema.Literal("ok", "failed")),
      missed: Schema.Array(HistoryEntry)
    }),
    error: RoomRefused
  }),
  Rpc.make("Leave", { payload: { conn: Schema.String } }),
  Rpc.make("Send", {
    payload: {
      from: Schema.String,
      device: Schema.optional(Schema.String),
      body: Schema.Unknown,
      replyTo: Schema.optional(MessageId),
      thread: Schema.optional(MessageId),
      moderator: Schema.Boolean,
      key: Schema.optional(RequestKey)
    },
    success: Accepted,
    error: RoomRefused
  }),
  /**
   * A connection's publishes to the room, in the order it sent them (a batch of those that
   * arrived while its previous batch was on its way); one answer per message, in order.
   */
  Rpc.make("Publish", {
    payload: {
      from: Schema.String,
      device: Schema.optional(Schema.String),
      moderator: Schema.Boolean,
      messages: Schema.Array(Schema.Struct({ body: Schema.Unknown, key: RequestKey }))
    },
    success: Schema.Array(Accepted),
    error: RoomRefused
  }),
  Rpc.make("Edit", {
    payload: { from: Schema.String, id: MessageId, body: Schema.Unknown, key: Schema.optional(RequestKey) },
    success: Accepted,
    error: RoomRefused
  }),
  Rpc.make("Delete", {
    payload: { from: Schema.String, id: MessageId, moderator: Schema.Boolean, key: Schema.optional(RequestKey) },
    success: Accepted,
    error: RoomRefused
  }),
  Rpc.make("Pin", {
    payload: { from: Schema.String, id: MessageId, pinned: Schema.Boolean, key: Schema.optional(RequestKey) },
    success: Accepted,
    error: RoomRefused
  }),
  Rpc.make("Pins", { success: Schema.Array(Pin) }),
  Rpc.make("Configure", { payload: { from: Schema.String, readOnly: Schema.Boolean }, success: Accepted, error: RoomRefused }),
  Rpc.make("Typing", { payload: { from: Schema.String, device: Schema.optional(Schema.String) } }),
  /** A service's notification to everyone in the room now: ephemeral, like typing (never stored). */
  Rpc.make("Announce", { payload: { from: Schema.String, type: Schema.String, data: Schema.Unknown } }),
  Rpc.make("History", {
    payload: {
      before: Schema.optional(Schema.Number),
      after: Schema.optional(Schema.Number),
      limit: Schema.Number.pipe(Schema.int(), Schema.between(1, 500))
    },
    success: Schema.Struct({ epoch: Schema.String, first: Schema.Number, last: Schema.Number, entries: Schema.Array(HistoryEntry) }),
    error: RoomRefused
  }),
  Rpc.make("Presence", { success: Schema.Array(Present) }),
  /** The room's own timer: drops members on nodes that died, and keeps a room with members active. */
  Rpc.make("Tick"),
  Rpc.make("Info", { success: RoomInfo })
]).annotate(ClusterSchema.ShardGroup, () => shardGroup)

/** What a stored history event holds: the room event, who caused it, and the request's key. */
const Stored = Schema.Struct({ from: Schema.String, event: StoredRoomEventSchema, key: Schema.optional(RequestKey) })
const decodeStored = Schema.decodeUnknownEither(Stored)
const encodeStored = Schema.encodeSync(Stored)

interface Indexed {
  readonly author: string
  deleted: boolean
}

/**
 * A stored event on its way to the history. It takes its offset when the request arrives (the
 * room's order is arrival order), and is numbered again if the history moved under it.
 */
interface Write {
  readonly from: string
  readonly make: (id: string) => StoredRoomEvent
  readonly key: string | undefined
  readonly at: number
  epoch: string
  offset: number
  event: StoredRoomEvent
}

/** Most stored events written to the history in one round trip, and published in one step. */
const maxBatch = 256

export interface RoomOptions {
  /** How often a room with members ticks to stay active and to sweep members a missed node departure left (default 30 s). */
  readonly tickInterval?: Duration.DurationInput
  readonly maxIdleTime?: Duration.DurationInput
}

/** The incarnation in a connection address `conn/<node>/<incarnation>-<n>`. */
const incarnationOf = (conn: string): string => {
  const last = conn.slice(conn.lastIndexOf("/") + 1)
  return last.slice(0, Math.max(0, last.lastIndexOf("-")))
}

const refused = (reason: RoomRefused["reason"], message: string) => Effect.fail(new RoomRefused({ reason, message }))

/** Well inside `maxIdleTime`: a room with members stays active (its presence lives in memory). */
const keepAliveEvery = Duration.seconds(30)

export const layer = (options: RoomOptions = {}) =>
  Entities.toLayer(
    Room,
    Effect.gen(function*() {
      const address = yield* Entity.CurrentAddress
      const runner = yield* Entity.CurrentRunnerAddress
      const history = yield* History.History
      const stored = yield* Members
      const topics = yield* ClusterTopics.ClusterTopics
      const leases = yield* NodeLeases.NodeLeases
      const rooms = yield* Room.client
      const room = address.entityId
      const channel = channelOf(room)
      const activation = crypto.randomUUID().slice(0, 8)

      const members = new Map<string, Member>()
      const devices = new Map<string, Set<string>>()
      // Counted in the node's stats (the dashboard) while this activation lives, when the node keeps the count.
      const active = yield* Effect.serviceOption(ActiveRooms)
      if (active._tag === "Some") yield* active.value.track(room, () => ({ members: members.size, users: devices.size }))
      const index = new Map<string, Indexed>()
      const pins = new Map<string, { readonly by: string; readonly at: number }>()
      // Insertion order is age: the first key is the oldest.
      const answered = new Map<string, Accepted>()
      const remember = (key: string, accepted: Accepted): void => {
        answered.set(key, accepted)
        if (answered.size > rememberedKeys) answered.delete(answered.keys().next().value!)
      }
      let readOnly = false
      let head: History.HistoryHead = { epoch: "", lastOffset: 0, firstOffset: 1 }
      // The offset the next stored event takes; ahead of head.lastOffset while writes are on their way.
      let nextOffset = 1
      // A write failed: what the room assumed of its history may be wrong until it loads it again.
      let mustReload = false
      const clock = yield* Effect.clock

      const apply = (from: string, event: StoredRoomEvent, at: number): void => {
        switch (event.kind) {
          case "message":
            index.set(event.id, { author: from, deleted: false })
            return
          case "edit":
            return
          case "delete": {
            const entry = index.get(event.id)
            if (entry !== undefined) entry.deleted = true
            pins.delete(event.id)
            return
          }
          case "pin":
            pins.set(event.id, { by: event.by, at })
            return
          case "unpin":
            pins.delete(event.id)
            return
          case "settings":
            readOnly = event.readOnly
            return
        }
      }

      const acceptedOf = (event: StoredRoomEvent, position: Position, at: number): Accepted => ({
        ...(event.kind === "message" ? { id: event.id } : {}),
        position,
        at
      })

      const recordOf = (offset: number, at: number, stored: unknown) => {
        const decoded = decodeStored(stored)
        if (decoded._tag === "Left") return undefined
        const entry: HistoryEntry = { position: { epoch: head.epoch, offset }, from: decoded.right.from, at, event: decoded.right.event }
        return { entry, key: decoded.right.key }
      }

      /** Loads the head and rebuilds what the room needs to know from the retained history. */
      const load = Effect.gen(function*() {
        head = yield* history.open(room)
        index.clear()
        pins.clear()
        answered.clear()
        readOnly = false
        let after = head.firstOffset - 1
        while (after < head.lastOffset) {
          const batch = yield* history.readAfter(room, after, 500)
          if (batch.length === 0) break
          for (const stored of batch) {
            const record = recordOf(stored.offset, stored.at, stored.event)
            if (record === undefined) continue
            const { entry, key } = record
            apply(entry.from, entry.event, entry.at)
            if (key !== undefined) remember(key, acceptedOf(entry.event, entry.position, entry.at))
          }
          after = batch[batch.length - 1]!.offset
        }
        nextOffset = head.lastOffset + 1
        mustReload = false
      })
      yield* load.pipe(
        Effect.retry(Schedule.intersect(Schedule.exponential("100 millis"), Schedule.recurs(8))),
        Effect.orDie
      )

      /** The head as the store has it now (trimming moves its start); reloads if the epoch changed. */
      const refreshHead = Effect.gen(function*() {
        const current = yield* history.open(room)
        if (current.epoch !== head.epoch) yield* load
        // A batch stored after this read was sent may have moved lastOffset on already.
        else head = { ...current, lastOffset: Math.max(current.lastOffset, head.lastOffset) }
      }).pipe(Effect.mapError((error) => new RoomRefused({ reason: "unavailable", message: error.message })))

      /** Ephemeral events (typing, presence, announcements): at most once, so a failure is only logged. */
      const publish = (topicChannel: string, frame: typeof Frame.Message.Type) =>
        topics.publish(Fanout.clusterTopic(topicChannel), Codec.toBytes(Codec.encodeServerFrame(frame, "msgpack"))).pipe(
          Effect.catchAll((error) => Effect.logWarning(`room ${room}: fan-out failed: ${error.message}`))
        )

      /**
       * A request whose key the room has answered gets that answer again, before any check;
       * otherwise `request` runs now, in the request's arrival order.
       */
      const answeredOr = (key: string | undefined, request: () => Effect.Effect<Accepted, RoomRefused>) => {
        const earlier = key === undefined ? undefined : answered.get(key)
        return earlier === undefined ? request() : Effect.succeed(earlier)
      }
      const once = (key: string | undefined, request: () => Effect.Effect<Accepted, RoomRefused>) => Rpc.fork(answeredOr(key, request))

      /** The next offset for `request`, applied to what the room knows (a reload undoes it if it is never stored). */
      const numbered = (request: Pick<Write, "from" | "make" | "key" | "at">): Write => {
        const offset = nextOffset++
        const event = request.make(idOf(head.epoch, offset))
        apply(request.from, event, request.at)
        return { ...request, epoch: head.epoch, offset, event }
      }

      // Stored events go out in the order they were stored, a batch per step.
      const announcer = yield* BatchLanes.make<ClusterTopics.TopicMessage, void, never>({
        maxBatch,
        send: (_, messages) =>
          topics.publishAll(messages).pipe(
            // Stored events are in the history already; subscribers see the gap in offsets and recover.
            Effect.catchAll((error) => Effect.logWarning(`room ${room}: fan-out failed: ${error.message}`)),
            Effect.as(messages.map(() => undefined))
          )
      })

      /** Stored: the room's head moves on, keys are remembered, and members hear of it. */
      const commit = (batch: Arr.NonEmptyReadonlyArray<Write>): ReadonlyArray<Accepted> =>
        batch.map(({ at, epoch, event, from, key, offset }) => {
          head = { ...head, lastOffset: Math.max(head.lastOffset, offset) }
          const position = { epoch, offset }
          const accepted = acceptedOf(event, position, at)
          if (key !== undefined) remember(key, accepted)
          const frame = Codec.encodeServerFrame({ type: "message", channel, data: event, from, position, at }, "msgpack")
          announcer.offer(channel, { topic: Fanout.clusterTopic(channel), payload: Codec.toBytes(frame) })
          return accepted
        })

      const reload = (batch: Arr.NonEmptyReadonlyArray<Write>) =>
        Effect.zipRight(
          Effect.orElse(load, () => refused("unavailable", "history unavailable")),
          Effect.sync(() => batch.forEach((write) => Object.assign(write, numbered(write))))
        )

      /**
       * Writes a batch in one round trip. On a conflict (the history expired, or a stale
       * activation wrote) the room loads its history again and numbers the batch from the new
       * head, once.
       */
      const writer = yield* BatchLanes.make<Write, Accepted, RoomRefused>({
        maxBatch,
        send: (_, batch) =>
          Effect.gen(function*() {
            if (mustReload) yield* reload(batch)
            for (let attempt = 0;; attempt++) {
              const records = batch.map(({ at, event, from, key, offset }) => ({
                offset,
                at,
                event: encodeStored({ from, event, ...(key === undefined ? {} : { key }) })
              }))
              const written = yield* Effect.either(history.appendAll(room, batch[0].epoch, records))
              if (written._tag === "Right") return commit(batch)
              mustReload = true
              if (written.left.reason !== "conflict" || attempt > 0) {
                return yield* refused("unavailable", `history unavailable: ${written.left.message}`)
              }
              yield* reload(batch)
            }
          })
      })

      /** Appends a stored event: numbered now, answered once it is stored. */
      const append = (from: string, make: (id: string) => StoredRoomEvent, key?: string) =>
        writer.submit(channel, numbered({ from, make, key, at: clock.unsafeCurrentTimeMillis() }))

      /** The message `id` if it exists and is not deleted. */
      const liveEntry = (id: string): Indexed | undefined => {
        const entry = index.get(id)
        return entry === undefined || entry.deleted || offsetOf(id) === undefined || !id.startsWith(`${head.epoch}-`)
          ? undefined
          : entry
      }

      const notFound = (id: string) => refused("not_found", `no message ${id} in ${channel}`)

      const presenceEvent = (user: string, kind: "join" | "leave") =>
        Effect.clockWith((clock) =>
          publish(presenceChannelOf(room), {
            type: "message",
            channel: presenceChannelOf(room),
            data: { kind, user, devices: devices.get(user)?.size ?? 0 },
            at: clock.unsafeCurrentTimeMillis()
          })
        )

      /** Presence is best effort: a store failure is logged, never a refusal. */
      const persisted = (effect: Effect.Effect<void, { readonly message: string }>) =>
        Effect.catchAll(effect, (error) => Effect.logWarning(`room ${room}: membership not saved: ${error.message}`))

      const track = (member: Member): boolean => {
        members.set(member.conn, member)
        const set = devices.get(member.user) ?? new Set<string>()
        const first = set.size === 0
        set.add(member.conn)
        devices.set(member.user, set)
        return first
      }

      const removeMember = (conn: string) => {
        const member = members.get(conn)
        if (member === undefined) return Effect.void
        members.delete(conn)
        const set = devices.get(member.user)
        set?.delete(conn)
        const left = set !== undefined && set.size === 0
        if (left) devices.delete(member.user)
        return Effect.zipRight(persisted(stored.remove(room, [conn])), left ? presenceEvent(member.user, "leave") : Effect.void)
      }

      /** Drops members whose node incarnation has no live lease, announcing their leave. */
      const sweep = Effect.gen(function*() {
        const nodes = Array.from(new Set(Array.from(members.values(), (member) => member.node)))
        const known = yield* Effect.either(leases.alive(nodes))
        // Leases unreadable (Redis down): unknown is not dead, keep everyone.
        if (known._tag === "Left") return
        const alive = known.right
        const gone = Array.from(members.values()).filter((member) =>
          !NodeLeases.isAlive(alive, member.node, incarnationOf(member.conn))
        )
        yield* Effect.forEach(gone, (member) => removeMember(member.conn), { discard: true })
      })

      // Members outlive activations: a room re-activated after its node died knows who was in
      // it, and drops (with leave events) those whose own node died too.
      for (const member of yield* MembersStore.load(stored, room).pipe(Effect.orElseSucceed(() => []))) {
        track(member)
      }
      yield* sweep

      const page = (payload: { readonly before?: number | undefined; readonly after?: number | undefined; readonly limit: number }) =>
        Effect.gen(function*() {
          const stored = payload.after !== undefined
            ? yield* history.readAfter(room, payload.after, payload.limit)
            : yield* history.readBefore(room, payload.before ?? head.lastOffset + 1, payload.limit)
          return stored.flatMap((s) => {
            const record = recordOf(s.offset, s.at, s.event)
            return record === undefined ? [] : [record.entry]
          })
        }).pipe(Effect.mapError((error) => new RoomRefused({ reason: "unavailable", message: error.message })))

      // While it has members the room stays active (presence lives in memory), and drops the
      // members of a node as soon as the node is gone.
      const tickEvery = Duration.decode(options.tickInterval ?? keepAliveEvery)
      yield* NodeLeases.tickOnDepartures({
        nodesInUse: () => Array.from(new Set(Array.from(members.values(), (member) => member.node))),
        every: tickEvery,
        tick: rooms(room).Tick().pipe(Entities.withTimeout(`room/${room}`, tickEvery), Effect.ignore)
      })

      return Room.of({
        Join: ({ payload }) =>
          Effect.gen(function*() {
            const { member, since } = payload
            const known = members.has(member.conn)
            const first = track(member)
            if (!known) yield* persisted(MembersStore.add(stored, room, member))
            if (!known && first) yield* presenceEvent(member.user, "join")
            if (since !== undefined) yield* refreshHead
            const position = { epoch: head.epoch, offset: head.lastOffset }
            if (since === undefined) return { position, missed: [] }
            const resumable = since.epoch === head.epoch && since.offset >= head.firstOffset - 1 && since.offset <= head.lastOffset
            if (!resumable) return { position, recovery: "failed" as const, missed: [] }
            const missed: Array<HistoryEntry> = []
            let after = since.offset
            while (after < head.lastOffset) {
              const batch = yield* page({ after, limit: 500 })
              if (batch.length === 0) break
              missed.push(...batch)
              after = batch[batch.length - 1]!.position.offset
            }
            // A gap inside the retained range (trimmed while we read) makes recovery fail too.
            const complete = missed.every((entry, i) => entry.position.offset === since.offset + i + 1)
            return complete ? { position, recovery: "ok" as const, missed } : { position, recovery: "failed" as const, missed: [] }
          }),
        Leave: ({ payload }) => removeMember(payload.conn),
        Send: ({ payload }) =>
          once(payload.key, () => {
            if (readOnly && !payload.moderator) return refused("forbidden", `${channel} is read-only`)
            for (const id of [payload.replyTo, payload.thread]) {
              if (id !== undefined && liveEntry(id) === undefined) return notFound(id)
            }
            return append(payload.from, (id) => ({
              kind: "message",
              id,
              body: payload.body,
              ...(payload.device === undefined ? {} : { device: payload.device }),
              ...(payload.replyTo === undefined ? {} : { replyTo: payload.replyTo }),
              ...(payload.thread === undefined ? {} : { thread: payload.thread })
            }), payload.key)
          }),
        Publish: ({ payload }) => {
          if (readOnly && !payload.moderator) return Rpc.fork(refused("forbidden", `${channel} is read-only`))
          const device = payload.device === undefined ? {} : { device: payload.device }
          // Each message numbered now, in the connection's order; the answers once all are stored.
          const each = payload.messages.map(({ body, key }) =>
            answeredOr(key, () => append(payload.from, (id) => ({ kind: "message", id, body, ...device }), key))
          )
          return Rpc.fork(Effect.all(each))
        },
        Edit: ({ payload }) =>
          once(payload.key, () => {
            const entry = liveEntry(payload.id)
            if (entry === undefined) return notFound(payload.id)
            if (entry.author !== payload.from) return refused("forbidden", "only the author may edit a message")
            return append(payload.from, () => ({ kind: "edit", id: payload.id, body: payload.body }), payload.key)
          }),
        Delete: ({ payload }) =>
          once(payload.key, () => {
            const entry = liveEntry(payload.id)
            if (entry === undefined) return notFound(payload.id)
            if (entry.author !== payload.from && !payload.moderator) {
              return refused("forbidden", "only the author or a moderator may delete a message")
            }
            return append(payload.from, () => ({ kind: "delete", id: payload.id, by: payload.from }), payload.key)
          }),
        Pin: ({ payload }) =>
          once(payload.key, () =>
            liveEntry(payload.id) === undefined
              ? notFound(payload.id)
              : append(payload.from, () => ({ kind: payload.pinned ? "pin" : "unpin", id: payload.id, by: payload.from }), payload.key)),
        Pins: () => Effect.sync(() => Array.from(pins, ([id, pin]) => ({ id, ...pin }))),
        Configure: ({ payload }) =>
          once(undefined, () => append(payload.from, () => ({ kind: "settings", readOnly: payload.readOnly, by: payload.from }))),
        Typing: ({ payload }) =>
          Effect.clockWith((clock) =>
            publish(channel, {
              type: "message",
              channel,
              data: { kind: "typing", ...(payload.device === undefined ? {} : { device: payload.device }) },
              from: payload.from,
              at: clock.unsafeCurrentTimeMillis()
            })
          ),
        Announce: ({ payload }) =>
          Effect.clockWith((clock) =>
            publish(channel, {
              type: "message",
              channel,
              data: { kind: "notification", type: payload.type, data: payload.data },
              from: payload.from,
              at: clock.unsafeCurrentTimeMillis()
            })
          ),
        History: ({ payload }) =>
          Effect.zipRight(
            refreshHead,
            Effect.map(page(payload), (entries) => ({ epoch: head.epoch, first: head.firstOffset, last: head.lastOffset, entries }))
          ),
        Presence: () => Effect.sync(() => Array.from(devices, ([user, set]) => ({ user, devices: set.size }))),
        Tick: () => sweep,
        Info: () =>
          Effect.succeed(
            new RoomInfo({
              room,
              runner: `${runner.host}:${runner.port}`,
              activation,
              members: members.size,
              position: { epoch: head.epoch, offset: head.lastOffset }
            })
          )
      })
    }),
    { maxIdleTime: options.maxIdleTime ?? "5 minutes" }
  )
