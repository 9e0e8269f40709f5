/**
 * The user: one @effect/cluster entity per user id. It knows every live
 * connection of the user on every node (registered by the gateway when a
 * connection is admitted), keeps the user's inbox of notifications (a bounded
 * log with read state, in Redis or memory) and settings, and delivers:
 * a notification is appended to the inbox, then published once on the
 * cluster topic of `user:<id>`, which every device of the user listens to;
 * a signal to one device goes straight to its connections.
 */
import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { ActorMail, ClusterTopics, Directory, Entities, History, NodeLeases } from "@weft/cluster"
import { Connection as ConnectionActor, Disconnect, Fanout, Push } from "@weft/gateway"
import { CloseCodes, Codec, type Frame } from "@weft/protocol"
import { Context, Duration, Effect, Either, Schema } from "effect"

export class Connection extends Schema.Class<Connection>("Connection")({
  /** The connection actor's address, `conn/<node>/<incarnation>-<n>`. */
  conn: Schema.String,
  node: Schema.String,
  device: Schema.optional(Schema.String)
}) {}

/** The shard group of users: hosted by the nodes that run the notification role. */
export const shardGroup = "notification"

export const channelOf = (user: string): string => `user:${user}`

const Position = Schema.Struct({ epoch: Schema.String, offset: Schema.Number })

/** A notification as stored in the inbox and sent to devices (the `data` of a `message` on `user:<id>`). */
export const NotificationEvent = Schema.Struct({
  kind: Schema.Literal("notification"),
  id: Schema.String,
  /** The application's category, e.g. `order.completed`. */
  type: Schema.String,
  data: Schema.Unknown,
  /** The service that sent it. */
  sender: Schema.String
})
export type NotificationEvent = typeof NotificationEvent.Type

export const InboxEntry = Schema.Struct({
  position: Position,
  at: Schema.Number,
  read: Schema.Boolean,
  notification: NotificationEvent
})

export const QuietHours = Schema.Struct({ start: Schema.String, end: Schema.String })
export const Settings = Schema.Struct({ timeZone: Schema.String, quietHours: Schema.NullOr(QuietHours) })
export type Settings = typeof Settings.Type
const defaultSettings: Settings = { timeZone: "UTC", quietHours: null }

export class UserRefused extends Schema.TaggedError<UserRefused>()("UserRefused", {
  reason: Schema.Literal("not_found", "unavailable", "invalid"),
  message: Schema.String
}) {}

export const User = Entity.make("user", [
  /**
   * Registers a connection unless the user already has `max` (then `accepted` is false).
   * `timeZone` (from the connection's JWT) becomes the user's time zone setting.
   */
  Rpc.make("Attach", {
    payload: { connection: Connection, max: Schema.optional(Schema.Number), timeZone: Schema.optional(Schema.String) },
    success: Schema.Struct({ accepted: Schema.Boolean, connections: Schema.Number })
  }),
  Rpc.make("Detach", { payload: { conn: Schema.String }, success: Schema.Struct({ connections: Schema.Number }) }),
  Rpc.make("Connections", { success: Schema.Array(Connection) }),
  /**
   * Closes the user's connections, wherever they are (only `device`'s, or only `conn`, when
   * given): each gets a `goodbye` with `reason` and not to reconnect, then close 4004.
   * `disconnected`: how many connections were told.
   */
  Rpc.make("Disconnect", {
    payload: {
      device: Schema.optional(Schema.String),
      conn: Schema.optional(Schema.String),
      reason: Schema.Literal("revoked", "banned")
    },
    success: Schema.Struct({ disconnected: Schema.Number })
  }),
  /**
   * Stores the notification in the inbox and sends it to every online device (`devices`: how
   * many; connections without a device id count one each). `id` makes a repeat a no-op.
   * A caller that gives up (its timeout) does not interrupt it: once in the inbox, a notification
   * is sent to the devices too (the caller's retry is a repeat, which sends nothing).
   */
  Rpc.make("Notify", {
    payload: { id: Schema.String, type: Schema.String, data: Schema.Unknown, sender: Schema.String },
    success: Schema.Struct({ devices: Schema.Number, position: Position, duplicate: Schema.Boolean }),
    error: UserRefused
  }).annotate(ClusterSchema.Uninterruptible, "client"),
  Rpc.make("Inbox", {
    payload: { before: Schema.optional(Schema.Number), after: Schema.optional(Schema.Number), limit: Schema.Number },
    success: Schema.Struct({ entries: Schema.Array(InboxEntry), unread: Schema.Number, position: Position }),
    error: UserRefused
  }),
  /** Marks notifications read (`all`, or the given ids); every device hears the new unread count. */
  Rpc.make("Read", {
    payload: { ids: Schema.Array(Schema.String), all: Schema.Boolean },
    success: Schema.Struct({ unread: Schema.Number }),
    error: UserRefused
  }),
  /** A direct message to the user's devices (`device`: only that one), e.g. WebRTC signalling. Not stored. */
  Rpc.make("Signal", {
    payload: { from: Schema.String, fromDevice: Schema.optional(Schema.String), device: Schema.optional(Schema.String), data: Schema.Unknown },
    success: Schema.Struct({ devices: Schema.Number })
  }),
  Rpc.make("GetSettings", { success: Settings }),
  Rpc.make("SetSettings", { payload: { timeZone: Schema.optional(Schema.String), quietHours: Schema.optional(Schema.NullOr(QuietHours)) }, success: Settings }),
  /** The user's own timer: drops connections of dead nodes, and keeps an active user in memory. */
  Rpc.make("Tick")
]).annotate(ClusterSchema.ShardGroup, () => shardGroup)

/** The user's inbox: a bounded log per user (namespace `inbox`). */
export class Inbox extends Context.Tag("@weft/notification/Inbox")<Inbox, History.HistoryService>() {}
/** Per user: connections, read marks and settings, kept beside the entity so they outlive it. */
export class Connections extends Context.Tag("@weft/notification/Connections")<Connections, Directory.DirectoryService>() {}
export class ReadMarks extends Context.Tag("@weft/notification/ReadMarks")<ReadMarks, Directory.DirectoryService>() {}
export class UserSettings extends Context.Tag("@weft/notification/UserSettings")<UserSettings, Directory.DirectoryService>() {}

const encodeConnection = Schema.encodeSync(Schema.parseJson(Connection))
const decodeConnection = Schema.decodeUnknownEither(Schema.parseJson(Connection))
const encodeSettings = Schema.encodeSync(Schema.parseJson(Settings))
const decodeSettings = Schema.decodeUnknownEither(Schema.parseJson(Settings))
const encodeEvent = Schema.encodeSync(NotificationEvent)
const decodeEvent = Schema.decodeUnknownEither(NotificationEvent)

/** The incarnation in a connection address `conn/<node>/<incarnation>-<n>`. */
const incarnationOf = (conn: string): string => {
  const last = conn.slice(conn.lastIndexOf("/") + 1)
  return last.slice(0, Math.max(0, last.lastIndexOf("-")))
}

/** Notification ids already delivered, remembered by the entity so a repeated `Notify` is a no-op. */
const REMEMBERED_IDS = 1000

/** Well inside `maxIdleTime`: a user with connections stays active (their presence lives in memory). */
const keepAliveEvery = Duration.seconds(30)

export const layer = (options: { readonly inboxScan?: number } = {}) =>
  Entities.toLayer(
    User,
    Effect.gen(function*() {
      const address = yield* Entity.CurrentAddress
      const user = address.entityId
      const channel = channelOf(user)
      const inbox = yield* Inbox
      const connectionsStore = yield* Connections
      const readStore = yield* ReadMarks
      const settingsStore = yield* UserSettings
      const topics = yield* ClusterTopics.ClusterTopics
      const leases = yield* NodeLeases.NodeLeases
      const mail = yield* ActorMail.ActorMail
      const users = yield* User.client
      const scan = options.inboxScan ?? 1000

      const unavailable = (error: { readonly message: string }) => new UserRefused({ reason: "unavailable", message: error.message })
      const persisted = (effect: Effect.Effect<void, { readonly message: string }>) =>
        Effect.catchAll(effect, (error) => Effect.logWarning(`user ${user}: not saved: ${error.message}`))

      const connections = new Map<string, Connection>()
      for (const value of yield* connectionsStore.load(user).pipe(Effect.orElseSucceed(() => []))) {
        const connection = decodeConnection(value)
        if (connection._tag === "Right") connections.set(connection.right.conn, connection.right)
      }
      let settings = defaultSettings
      for (const value of yield* settingsStore.load(user).pipe(Effect.orElseSucceed(() => []))) {
        const decoded = decodeSettings(value)
        if (decoded._tag === "Right") settings = decoded.right
      }
      // Ids of notifications in the inbox: a repeated Notify (a scheduler redelivery, a retried
      // call) is a no-op even after the entity moved to another node.
      const delivered = new Set<string>()

      const publish = (frame: typeof Frame.Message.Type) =>
        topics.publish(Fanout.clusterTopic(channel), Codec.toBytes(Codec.encodeServerFrame(frame, "msgpack"))).pipe(
          // Stored notifications are in the inbox: a device that missed one gets it on resubscribe.
          Effect.catchAll((error) => Effect.logWarning(`user ${user}: fan-out failed: ${error.message}`))
        )

      /** The whole retained inbox with read state; bounded by the inbox's length. */
      const readInbox = Effect.gen(function*() {
        const head = yield* inbox.open(user)
        const marks = new Set(yield* readStore.load(user))
        const stored = yield* inbox.readAfter(user, Math.max(head.firstOffset - 1, head.lastOffset - scan), scan)
        const entries = stored.flatMap((s) => {
          const event = decodeEvent(s.event)
          return event._tag === "Right"
            ? [{ position: { epoch: head.epoch, offset: s.offset }, at: s.at, read: marks.has(event.right.id), notification: event.right }]
            : []
        })
        return { head, entries, unread: entries.filter((entry) => !entry.read).length }
      }).pipe(Effect.mapError(unavailable))

      const saveSettings = (next: Settings) =>
        Effect.as(
          Effect.zipRight(Effect.sync(() => void (settings = next)), persisted(settingsStore.put(user, "settings", encodeSettings(next)))),
          next
        )

      const onlineDevices = () => {
        let anonymous = 0
        const named = new Set<string>()
        for (const c of connections.values()) c.device === undefined ? anonymous++ : named.add(c.device)
        return named.size + anonymous
      }

      const sweep = Effect.gen(function*() {
        const nodes = Array.from(new Set(Array.from(connections.values(), (c) => c.node)))
        const known = yield* Effect.either(leases.alive(nodes))
        if (known._tag === "Left") return
        const gone = Array.from(connections.values()).filter((c) => !NodeLeases.isAlive(known.right, c.node, incarnationOf(c.conn)))
        for (const c of gone) connections.delete(c.conn)
        if (gone.length > 0) yield* persisted(connectionsStore.remove(user, gone.map((c) => c.conn)))
      })
      yield* sweep
      const known = yield* Effect.either(readInbox)
      if (known._tag === "Right") for (const entry of known.right.entries.slice(-REMEMBERED_IDS)) delivered.add(entry.notification.id)

      yield* NodeLeases.tickOnDepartures({
        nodesInUse: () => Array.from(new Set(Array.from(connections.values(), (c) => c.node))),
        every: keepAliveEvery,
        tick: users(user).Tick().pipe(Entities.withTimeout(`user/${user}`, keepAliveEvery), Effect.ignore)
      })

      return User.of({
        Attach: ({ payload }) =>
          Effect.gen(function*() {
            const { connection, max } = payload
            const known = connections.has(connection.conn)
            if (!known && max !== undefined && connections.size >= max) return { accepted: false, connections: connections.size }
            connections.set(connection.conn, connection)
            if (!known) yield* persisted(connectionsStore.put(user, connection.conn, encodeConnection(connection)))
            if (payload.timeZone !== undefined && payload.timeZone !== settings.timeZone) {
              yield* saveSettings({ ...settings, timeZone: payload.timeZone })
            }
            return { accepted: true, connections: connections.size }
          }),
        Detach: ({ payload }) =>
          Effect.gen(function*() {
            if (connections.delete(payload.conn)) yield* persisted(connectionsStore.remove(user, [payload.conn]))
            return { connections: connections.size }
          }),
        Connections: () => Effect.sync(() => Array.from(connections.values())),
        Disconnect: ({ payload }) =>
          Effect.gen(function*() {
            const targets = Array.from(connections.values()).filter((c) =>
              (payload.device === undefined || c.device === payload.device) && (payload.conn === undefined || c.conn === payload.conn)
            )
            const goodbye = { type: "goodbye" as const, reason: payload.reason, reconnect: false }
            const close = new Disconnect({ code: CloseCodes.revoked, reason: payload.reason, goodbye }, true)
            // Straight to each connection actor, over its node's topic: one hop, whatever node it is on.
            const told = yield* Effect.forEach(
              targets,
              (c) => Effect.either(mail.tell(ConnectionActor, c.conn.slice("conn/".length), close)),
              { concurrency: "unbounded" }
            )
            return { disconnected: told.filter(Either.isRight).length }
          }),
        Notify: ({ payload }) =>
          Effect.gen(function*() {
            const head = yield* inbox.open(user).pipe(Effect.mapError(unavailable))
            if (delivered.has(payload.id)) {
              return { devices: 0, position: { epoch: head.epoch, offset: head.lastOffset }, duplicate: true }
            }
            const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
            const event: NotificationEvent = { kind: "notification", id: payload.id, type: payload.type, data: payload.data, sender: payload.sender }
            const offset = head.lastOffset + 1
            yield* inbox.append(user, head.epoch, offset, at, encodeEvent(event)).pipe(Effect.mapError(unavailable))
            delivered.add(payload.id)
            if (delivered.size > REMEMBERED_IDS) delivered.delete(delivered.values().next().value!)
            const position = { epoch: head.epoch, offset }
            yield* publish({ type: "message", channel, data: event, from: payload.sender, position, at })
            return { devices: onlineDevices(), position, duplicate: false }
          }),
        Inbox: ({ payload }) =>
          Effect.map(readInbox, ({ head, entries, unread }) => {
            const window = entries.filter((entry) =>
              (payload.after === undefined || entry.position.offset > payload.after) &&
              (payload.before === undefined || entry.position.offset < payload.before)
            )
            const page = payload.after !== undefined ? window.slice(0, payload.limit) : window.slice(-payload.limit)
            return { entries: page, unread, position: { epoch: head.epoch, offset: head.lastOffset } }
          }),
        Read: ({ payload }) =>
          Effect.gen(function*() {
            const { entries } = yield* readInbox
            const ids = payload.all ? entries.map((entry) => entry.notification.id) : payload.ids
            for (const id of ids) yield* persisted(readStore.put(user, id, id))
            const marks = new Set(ids)
            const unread = entries.filter((entry) => !entry.read && !marks.has(entry.notification.id)).length
            const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
            // Ephemeral: every device updates its badge.
            yield* publish({ type: "message", channel, data: { kind: "read", ids, unread }, at })
            return { unread }
          }),
        Signal: ({ payload }) =>
          Effect.gen(function*() {
            const targets = Array.from(connections.values()).filter((c) => payload.device === undefined || c.device === payload.device)
            const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
            const frame: typeof Frame.Message.Type = {
              type: "message",
              channel,
              data: {
                kind: "signal",
                data: payload.data,
                ...(payload.fromDevice === undefined ? {} : { fromDevice: payload.fromDevice })
              },
              from: payload.from,
              at
            }
            // Straight to each target connection, wherever it is: at-most-once, like any live signal.
            yield* Effect.forEach(
              targets,
              (c) =>
                Effect.ignore(mail.tell(ConnectionActor, c.conn.slice("conn/".length), new Push({ frame }, true))),
              { discard: true }
            )
            return { devices: targets.length }
          }),
        GetSettings: () => Effect.succeed(settings),
        SetSettings: ({ payload }) =>
          saveSettings({
            timeZone: payload.timeZone ?? settings.timeZone,
            quietHours: payload.quietHours === undefined ? settings.quietHours : payload.quietHours
          }),
        Tick: () => sweep
      })
    }),
    { maxIdleTime: "5 minutes" }
  )
