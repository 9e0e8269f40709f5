/**
 * Every frame of the client protocol, as Schema. A frame is a map with a
 * `type`; requests carry a client-chosen `id` and get exactly one `ack`,
 * `reply` or `error` with that id. Field names are short, lower case and the
 * same in both encodings (msgpack maps and JSON objects).
 *
 * `data`, `params` and `result` are application values: anything msgpack (or
 * JSON, on the JSON protocol) can carry. The server passes them through.
 */
import { Schema } from "effect"
import { Channel } from "./Channel.ts"

/** A client-chosen request id: an integer in [0, 2^32). */
export const RequestId = Schema.Number.pipe(Schema.int(), Schema.between(0, 4_294_967_295))

/** A position in a channel's history: the channel's epoch and the offset of the last message seen. */
export const Position = Schema.Struct({
  epoch: Schema.String,
  offset: Schema.Number.pipe(Schema.int(), Schema.nonNegative())
})
export type Position = typeof Position.Type

/** An application value carried as is. */
export const Data = Schema.Unknown

// ---------------------------------------------------------------------------
// Client to server
// ---------------------------------------------------------------------------

export const Subscribe = Schema.Struct({
  type: Schema.Literal("subscribe"),
  id: RequestId,
  channel: Channel,
  /** Resume after this position (history and recovery arrive with the rooms issue). */
  since: Schema.optional(Position)
})

export const Unsubscribe = Schema.Struct({
  type: Schema.Literal("unsubscribe"),
  id: RequestId,
  channel: Channel
})

export const Publish = Schema.Struct({
  type: Schema.Literal("publish"),
  id: RequestId,
  channel: Channel,
  data: Data
})

export const Rpc = Schema.Struct({
  type: Schema.Literal("rpc"),
  id: RequestId,
  method: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)),
  params: Schema.optional(Data)
})

/** Either side may send `ping`; the other answers `pong` with the same id (if any). */
export const Ping = Schema.Struct({
  type: Schema.Literal("ping"),
  id: Schema.optional(RequestId)
})

export const Pong = Schema.Struct({
  type: Schema.Literal("pong"),
  id: Schema.optional(RequestId)
})

/**
 * New credentials for the connection, before the current ones expire (the server asks with
 * `refresh-required`): a JWT for the same user and device, checked like one sent to
 * `POST /v1/tickets`. Answered by `ack` (with the new `expiresAt`) or `error`.
 */
export const Refresh = Schema.Struct({
  type: Schema.Literal("refresh"),
  id: RequestId,
  /** The new JWT (compact form). Never logged. */
  token: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(8192))
})

export const ClientFrame = Schema.Union(Subscribe, Unsubscribe, Publish, Rpc, Ping, Pong, Refresh)
export type ClientFrame = typeof ClientFrame.Type
export const clientFrameTypes: ReadonlyArray<ClientFrame["type"]> = ["subscribe", "unsubscribe", "publish", "rpc", "ping", "pong", "refresh"]

// ---------------------------------------------------------------------------
// Server to client
// ---------------------------------------------------------------------------

export const Welcome = Schema.Struct({
  type: Schema.Literal("welcome"),
  /** Protocol version. */
  protocol: Schema.Literal("weft.v1"),
  /** This connection's address, unique in the cluster: `conn/<node>/<id>` (`<id>` is opaque). */
  conn: Schema.String,
  user: Schema.String,
  device: Schema.optional(Schema.String),
  /** The node the connection landed on. */
  node: Schema.String,
  /** Send a frame (a `ping` if nothing else) at least this often, in milliseconds. */
  heartbeat: Schema.Number,
  /** The limits that apply to this connection. */
  limits: Schema.Struct({
    maxFrameBytes: Schema.Number,
    maxSubscriptions: Schema.Number,
    ratePerSecond: Schema.Number
  }),
  /** When the connection's credentials (the JWT's `exp`) expire, in ms since the epoch; absent: never. */
  expiresAt: Schema.optional(Schema.Number)
})

/** Success of a `subscribe`, `unsubscribe` or `publish`. */
export const Ack = Schema.Struct({
  type: Schema.Literal("ack"),
  id: RequestId,
  /** For subscribe: where the channel stands now; for publish: where the message went. */
  position: Schema.optional(Position),
  /**
   * For a subscribe with `since`: `ok` when every message after `since` follows (then live
   * ones), `failed` when they cannot (another epoch, or older than the retained history): the
   * subscription is live from `position` and the client should reload history.
   */
  recovery: Schema.optional(Schema.Literal("ok", "failed")),
  /** For `refresh`: when the new credentials expire (ms since the epoch); absent: they never do. */
  expiresAt: Schema.optional(Schema.Number)
})

export const Reply = Schema.Struct({
  type: Schema.Literal("reply"),
  id: RequestId,
  result: Data
})

export const ErrorFrame = Schema.Struct({
  type: Schema.Literal("error"),
  /** The request it answers; absent for an error about a frame without a usable id. */
  id: Schema.optional(RequestId),
  code: Schema.Number.pipe(Schema.int()),
  name: Schema.String,
  message: Schema.String
})

/** A message on a channel the connection subscribed to. */
export const Message = Schema.Struct({
  type: Schema.Literal("message"),
  channel: Channel,
  data: Data,
  /** The publishing user, when a user published it. */
  from: Schema.optional(Schema.String),
  /** Where the message sits in the channel's history (channels with history). */
  position: Schema.optional(Position),
  /** UTC milliseconds since the epoch when the server accepted it. */
  at: Schema.Number
})

/** The server is closing the connection; `reconnect` says whether and `after` (ms) when to come back. */
export const Goodbye = Schema.Struct({
  type: Schema.Literal("goodbye"),
  reason: Schema.Literal("draining", "shutdown", "policy", "slow-consumer", "credentials-expired", "revoked", "banned"),
  reconnect: Schema.Boolean,
  after: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
})

/**
 * The connection's credentials expire soon: send a `refresh` with a new JWT before `deadline`,
 * or the server says goodbye (`credentials-expired`) and closes the connection (4003) then.
 */
export const RefreshRequired = Schema.Struct({
  type: Schema.Literal("refresh-required"),
  /** When the current credentials expire (the JWT's `exp`), in ms since the epoch. */
  expiresAt: Schema.Number,
  /** When the server closes the connection without a successful `refresh`: `expiresAt` plus the grace period. */
  deadline: Schema.Number
})

/**
 * The server ended a subscription on its own: after a `refresh`, the new credentials no longer
 * allow the channel (`forbidden`). No `message` for the channel follows.
 */
export const Unsubscribed = Schema.Struct({
  type: Schema.Literal("unsubscribed"),
  channel: Channel,
  reason: Schema.Literal("forbidden")
})

export const ServerFrame = Schema.Union(Welcome, Ack, Reply, ErrorFrame, Message, Ping, Pong, Goodbye, RefreshRequired, Unsubscribed)
export type ServerFrame = typeof ServerFrame.Type
