/**
 * The error catalogue: every `error` frame carries one of these codes and its
 * name. Codes are stable: a code keeps its meaning forever; new ones are added.
 * The same table is in docs/protocol.md (a test keeps them equal).
 */

export const ErrorCodes = {
  /** The frame is not a msgpack (or JSON) map of plain data (no extension types, nested at most 64 deep). */
  malformed_frame: 1000,
  /** The frame's `type` is not one the server accepts. */
  unknown_type: 1001,
  /** A field is missing or has the wrong type. */
  invalid_frame: 1002,
  /** A request id is reused while a request with that id is still in flight. */
  duplicate_id: 1003,
  /** A text frame on the msgpack protocol, or a binary frame on the JSON protocol. */
  wrong_encoding: 1004,
  /** The connection's permissions do not allow this channel. */
  forbidden: 2000,
  /** Unsubscribe from a channel the connection is not subscribed to. */
  not_subscribed: 2001,
  /** Subscribe to a channel the connection is already subscribed to. */
  already_subscribed: 2002,
  /** The channel name is not valid. */
  invalid_channel: 2003,
  /** The message (or other thing) the request names does not exist, or is no longer retained. */
  not_found: 2004,
  /** A `refresh` JWT was refused: malformed, expired, badly signed, wrong claims, or the user is banned. */
  invalid_credentials: 2005,
  /** A `refresh` JWT is for another user (or another device) than the connection's. */
  wrong_user: 2006,
  /** Too many frames: the connection's rate limit was exceeded. */
  rate_limited: 3000,
  /** The connection already has the maximum number of subscriptions. */
  too_many_subscriptions: 3001,
  /** The RPC method does not exist. */
  unknown_method: 4000,
  /** The server failed to handle the request; retrying may help. */
  internal_error: 4001,
  /** A part of the cluster needed for the request is unavailable right now; retry later. */
  unavailable: 4002,
  /** The request took too long. */
  timeout: 4003,
  /** The RPC's params do not match the method's schema. */
  invalid_params: 4004
} as const

export type ErrorName = keyof typeof ErrorCodes
export type ErrorCodeNumber = (typeof ErrorCodes)[ErrorName]

/** WebSocket close codes the server uses. */
export const CloseCodes = {
  /** Normal closure. */
  normal: 1000,
  /** The server is going away (drain); a `goodbye` frame came first. */
  going_away: 1001,
  /** A text message that is not valid UTF-8 (RFC 6455 §8.1): the WebSocket layer closes the connection. */
  invalid_payload: 1007,
  /** Sustained abuse after `rate_limited` errors. */
  policy_violation: 1008,
  /** A frame exceeded the maximum frame size. */
  message_too_big: 1009,
  /** The server hit an unexpected condition. */
  internal_error: 1011,
  /** No frame from the client within the idle timeout. */
  heartbeat_timeout: 4001,
  /** The client reads too slowly: its send buffer passed the limit. */
  slow_consumer: 4002,
  /** The connection's credentials expired without a refresh. */
  credentials_expired: 4003,
  /** The service API disconnected the connection, its device or its user (or banned the user). */
  revoked: 4004
} as const
