/**
 * The service API: what other services (orders, billing, chat back-ends) call
 * to reach users. One source of truth: these Schemas define the @effect/rpc
 * group served at `/rpc`, and the HTTP JSON and gRPC doors are derived from
 * (or checked against) it.
 */
import { Rpc, RpcGroup, RpcMiddleware } from "@effect/rpc"
import { Context, Schema } from "effect"

// ---------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------

export const UserId = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))
export const RoomId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._\-:@/|+=]{1,195}$/))

/** A retried call with the same key (per caller, 24 h) is delivered once and answers as the first did. */
export const IdempotencyKey = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))

/** An IANA time zone such as `Europe/Paris`. */
export const TimeZone = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64))

/** A local wall-clock time, `HH:MM`. */
export const LocalTime = Schema.String.pipe(Schema.pattern(/^([01][0-9]|2[0-3]):[0-5][0-9]$/))

/** When to deliver: now (absent), at a UTC instant, or at a wall-clock time in the user's time zone. */
export const DeliverAt = Schema.Union(
  Schema.TaggedStruct("Utc", { at: Schema.Number.pipe(Schema.int(), Schema.nonNegative()) }),
  Schema.TaggedStruct("Local", {
    /** `YYYY-MM-DDTHH:MM` in the user's time zone. */
    at: Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}T([01][0-9]|2[0-3]):[0-5][0-9]$/))
  })
)
export type DeliverAt = typeof DeliverAt.Type

/** What a notification carries to the user's devices. */
export const NotificationContent = Schema.Struct({
  /** The application's own category, e.g. `order.completed`. */
  kind: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)),
  /** Any JSON-compatible value the app renders. */
  data: Schema.Unknown,
  /** Marketing and the like: never delivered during the user's quiet hours (held until they end). Default false. */
  respectQuietHours: Schema.optional(Schema.Boolean)
})

export const Delivery = Schema.Struct({
  /** `delivered`: sent to online devices now; `stored`: no device online, kept in the inbox; `scheduled`: held until `scheduledAt`. */
  status: Schema.Literal("delivered", "stored", "scheduled"),
  notificationId: Schema.String,
  /** Online devices it was sent to now. */
  devices: Schema.Number,
  scheduledAt: Schema.optional(Schema.Number),
  /** This answer repeats the first call with the same idempotency key. */
  duplicate: Schema.Boolean
})
export type Delivery = typeof Delivery.Type

/**
 * Why a call was refused. Each `reason` has a stable numeric code, an HTTP status and a gRPC
 * status (`Errors.ts`, docs/api.md), the same behind every door.
 */
export const ApiErrorReason = Schema.Literal("invalid", "not_found", "forbidden", "unavailable", "unauthorized", "too_large")
export type ApiErrorReason = typeof ApiErrorReason.Type

export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  reason: ApiErrorReason,
  message: Schema.String
}) {}

/**
 * The largest JSON-compatible value a call carries to users (a notification's `data`, a message's
 * `body`), measured as UTF-8 JSON; a bigger one is refused with `too_large`.
 */
export const maxContentBytes = 64 * 1024

/** The most users one `notify.toUsers` call takes. */
export const maxBatchUsers = 10_000

/** What one `notify.toUsers` call did, counted over its (distinct) users. */
export const BatchDelivery = Schema.Struct({
  /** The one id the notification has in every user's inbox. */
  notificationId: Schema.String,
  /** Users whose online devices got it now (and whose inbox has it). */
  delivered: Schema.Number,
  /** Users who get it later: no device online (kept in the inbox) or held until `deliverAt` / quiet hours end. */
  queued: Schema.Number,
  /** Users it was not given to; `refusals` says why (the first 100). */
  refused: Schema.Number,
  /** Online devices reached now, over every user. */
  devices: Schema.Number,
  refusals: Schema.Array(Schema.Struct({
    userId: Schema.String,
    reason: ApiErrorReason,
    message: Schema.String
  })),
  /** This answer repeats the first call with the same idempotency key. */
  duplicate: Schema.Boolean
})
export type BatchDelivery = typeof BatchDelivery.Type

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

/** The calling service, as identified by its credential. */
export class Caller extends Context.Tag("@weft/api/Caller")<Caller, { readonly service: string }>() {}

/**
 * Every call carries a service credential (`Authorization: Bearer <key>` or
 * `X-Weft-Key: <key>`), never a user's JWT; without a valid one it is refused.
 */
export class ServiceAuth extends RpcMiddleware.Tag<ServiceAuth>()("@weft/api/ServiceAuth", {
  provides: Caller,
  failure: ApiError,
  requiredForClient: true
}) {}

// ---------------------------------------------------------------------------
// The calls
// ---------------------------------------------------------------------------

export const PresenceEntry = Schema.Struct({ user: UserId, devices: Schema.Number })

/** Where a stored room event sits: the room's epoch and the event's offset in it. */
export const Position = Schema.Struct({ epoch: Schema.String, offset: Schema.Number })

/** A message id: `<epoch>-<offset>` of the event that created it. */
export const MessageId = Schema.String.pipe(Schema.pattern(/^[a-z0-9]+-[1-9][0-9]*$/))

/** A stored change to a room (edit, delete, pin): where it landed and when. */
export const RoomChange = Schema.Struct({ position: Position, at: Schema.Number })

export const HistoryMessage = Schema.Struct({
  position: Position,
  from: Schema.String,
  at: Schema.Number,
  event: Schema.Unknown
})

export const NodeStats = Schema.Struct({
  node: Schema.String,
  roles: Schema.Array(Schema.String),
  ready: Schema.Boolean,
  connections: Schema.Number,
  actors: Schema.Array(Schema.Struct({ kind: Schema.String, alive: Schema.Number, mailboxDepth: Schema.Number })),
  /** When the node last reported (UTC ms). */
  at: Schema.Number
})

export class WeftApi extends RpcGroup.make(
  Rpc.make("notify.toUser", {
    payload: {
      userId: UserId,
      notification: NotificationContent,
      deliverAt: Schema.optional(DeliverAt),
      idempotencyKey: Schema.optional(IdempotencyKey)
    },
    success: Delivery,
    error: ApiError
  }),
  /**
   * The same notification to up to `maxBatchUsers` users (repeats removed), worked through in
   * bounded chunks; one reply counts who got it now, later, or not at all. A user that cannot be
   * notified (their node does not answer) is counted in `refused` and does not fail the call.
   */
  Rpc.make("notify.toUsers", {
    payload: {
      userIds: Schema.Array(UserId).pipe(Schema.minItems(1), Schema.maxItems(maxBatchUsers)),
      notification: NotificationContent,
      deliverAt: Schema.optional(DeliverAt),
      idempotencyKey: Schema.optional(IdempotencyKey)
    },
    success: BatchDelivery,
    error: ApiError
  }),
  /** To everyone in a room now: an ephemeral `notification` event on the room's channel (not stored). */
  Rpc.make("notify.toRoom", {
    payload: { room: RoomId, notification: NotificationContent },
    success: Schema.Struct({ delivered: Schema.Boolean }),
    error: ApiError
  }),
  /** To every connected client of every node now (ephemeral). */
  Rpc.make("notify.broadcast", {
    payload: { notification: NotificationContent },
    success: Schema.Struct({ delivered: Schema.Boolean }),
    error: ApiError
  }),
  Rpc.make("presence.room", { payload: { room: RoomId }, success: Schema.Array(PresenceEntry), error: ApiError }),
  Rpc.make("presence.user", {
    payload: { userId: UserId },
    success: Schema.Struct({ online: Schema.Boolean, devices: Schema.Array(Schema.String), connections: Schema.Number }),
    error: ApiError
  }),
  Rpc.make("rooms.history", {
    payload: {
      room: RoomId,
      before: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
      after: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative())),
      /** 1-500, default 50. */
      limit: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.between(1, 500)))
    },
    success: Schema.Struct({ epoch: Schema.String, first: Schema.Number, last: Schema.Number, messages: Schema.Array(HistoryMessage) }),
    error: ApiError
  }),
  /**
   * Posts as a system or bot user (`as`), like a member would (also in a read-only room):
   * `replyTo` quotes a message, `thread` makes it a follow-up in that message's thread.
   */
  Rpc.make("rooms.send", {
    payload: {
      room: RoomId,
      as: UserId,
      body: Schema.Unknown,
      replyTo: Schema.optional(MessageId),
      thread: Schema.optional(MessageId),
      idempotencyKey: Schema.optional(IdempotencyKey)
    },
    success: Schema.Struct({ id: MessageId, position: Position, at: Schema.Number }),
    error: ApiError
  }),
  /** Replaces the body of a message `as` wrote (the author only); members get an `edit` event. */
  Rpc.make("rooms.edit", {
    payload: { room: RoomId, as: UserId, id: MessageId, body: Schema.Unknown },
    success: RoomChange,
    error: ApiError
  }),
  /** Deletes a message, leaving a tombstone; a service deletes like a moderator. */
  Rpc.make("rooms.delete", { payload: { room: RoomId, as: UserId, id: MessageId }, success: RoomChange, error: ApiError }),
  Rpc.make("rooms.pin", {
    payload: { room: RoomId, as: UserId, id: MessageId, pinned: Schema.Boolean },
    success: RoomChange,
    error: ApiError
  }),
  Rpc.make("rooms.pins", {
    payload: { room: RoomId },
    success: Schema.Array(Schema.Struct({ id: MessageId, by: Schema.String, at: Schema.Number })),
    error: ApiError
  }),
  /** `as` is typing: ephemeral, never stored. */
  Rpc.make("rooms.typing", { payload: { room: RoomId, as: UserId }, error: ApiError }),
  /** A user's time zone and quiet hours (also settable from the user's JWT, claim `weft.tz`). */
  Rpc.make("users.settings", {
    payload: {
      userId: UserId,
      timeZone: Schema.optional(TimeZone),
      quietHours: Schema.optional(Schema.NullOr(Schema.Struct({ start: LocalTime, end: LocalTime })))
    },
    success: Schema.Struct({
      timeZone: Schema.String,
      quietHours: Schema.NullOr(Schema.Struct({ start: LocalTime, end: LocalTime }))
    }),
    error: ApiError
  }),
  /**
   * Closes the user's live connections on every node (only `device`'s, or only the connection
   * `conn`, when given): each gets a `goodbye` (`revoked`, or `banned`) telling it not to
   * reconnect, and close code 4004. With `banForSeconds` the user is also banned that long: their
   * ticket requests and connections are refused (403) until it ends or `users.unban`; a ban is
   * for the whole user, so it takes no `device` or `conn`. `reason` is for logs and operators,
   * never sent to the user.
   */
  Rpc.make("users.disconnect", {
    payload: {
      userId: UserId,
      device: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))),
      /** A connection's address, as its `welcome` gave it: `conn/<node>/<id>`. */
      conn: Schema.optional(Schema.String.pipe(Schema.pattern(/^conn\/[A-Za-z0-9._-]{1,64}\/[A-Za-z0-9._-]{1,100}$/))),
      /** 1 s to 1 year. */
      banForSeconds: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.between(1, 31_536_000))),
      reason: Schema.optional(Schema.String.pipe(Schema.maxLength(500)))
    },
    success: Schema.Struct({
      /** How many connections were told to close. */
      disconnected: Schema.Number,
      /** With `banForSeconds`: when the ban ends (UTC ms). */
      bannedUntil: Schema.optional(Schema.Number)
    }),
    error: ApiError
  }),
  /** Lifts the user's ban at once; `unbanned` is false when there was none. */
  Rpc.make("users.unban", { payload: { userId: UserId }, success: Schema.Struct({ unbanned: Schema.Boolean }), error: ApiError }),
  Rpc.make("cluster.stats", { success: Schema.Struct({ nodes: Schema.Array(NodeStats) }), error: ApiError })
).middleware(ServiceAuth) {}

/** What the non-RPC doors (HTTP JSON, gRPC) need of a call: its Schemas. */
export interface CallSchemas {
  readonly payloadSchema: Schema.Schema.AnyNoContext
  readonly successSchema: Schema.Schema.AnyNoContext
}

/** Every call of `WeftApi` by tag (`notify.toUser`), with its Schemas: what every door serves. */
export const callSchemas: ReadonlyMap<string, CallSchemas> = new Map(
  Array.from(WeftApi.requests, ([tag, rpc]) => [tag, { payloadSchema: rpc.payloadSchema, successSchema: rpc.successSchema }])
)
