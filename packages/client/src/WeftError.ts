/**
 * The one error type the SDK rejects with and emits: `code` and `name` come
 * from the protocol's error catalogue (docs/protocol.md, section 6) when the
 * server answered with an `error` frame, or from the client-side reasons below
 * when the client gave up on its own (no answer in time, the connection went
 * away, the offline queue was full, ...).
 */
import { ErrorCodes } from "@weft/protocol"

/**
 * The protocol's error catalogue (docs/protocol.md, section 6.1), spelt out so
 * that the published types stand alone. The assignment fails the type check
 * if `@weft/protocol`'s `ErrorCodes` drops or renumbers one of these. Codes
 * the catalogue gains later reach the app all the same (`name` is then a
 * string this type does not list; `category` still sorts it by range).
 */
export const ServerErrorCodes: {
  readonly malformed_frame: 1000
  readonly unknown_type: 1001
  readonly invalid_frame: 1002
  readonly duplicate_id: 1003
  readonly wrong_encoding: 1004
  readonly forbidden: 2000
  readonly not_subscribed: 2001
  readonly already_subscribed: 2002
  readonly invalid_channel: 2003
  readonly not_found: 2004
  readonly invalid_credentials: 2005
  readonly wrong_user: 2006
  readonly rate_limited: 3000
  readonly too_many_subscriptions: 3001
  readonly unknown_method: 4000
  readonly internal_error: 4001
  readonly unavailable: 4002
  readonly timeout: 4003
  readonly invalid_params: 4004
} = ErrorCodes

/** Reasons the client decides on its own; codes 9000 and up are never sent by a server. */
export const ClientErrorCodes = {
  /** No answer within the request timeout (treat like `unavailable`: the request may or may not have happened). */
  timeout: 9000,
  /** The connection went away before the answer came, or the client stopped reconnecting with the request queued. */
  disconnected: 9001,
  /** The offline queue was full: this request was refused (`reject`) or pushed out by a newer one (`drop-oldest`). */
  queue_full: 9002,
  /** `close()` was called. */
  closed: 9003,
  /** The request's `AbortSignal` fired. */
  aborted: 9004,
  /** `getTicket` failed (for the ready helper: `POST /v1/tickets` did not give a ticket; see `status`). */
  ticket_failed: 9005,
  /** A frame from the server could not be decoded. */
  protocol_error: 9006,
  /** An event listener or subscription handler threw (see `cause`). */
  handler_error: 9007,
  /** The frame would exceed the connection's `limits.maxFrameBytes` (the server would close the connection). */
  frame_too_large: 9008,
  /** The client gave up: `maxAttempts` connection attempts failed in a row, or the server said not to come back. */
  connect_failed: 9009,
  /** `getToken` failed (threw, or did not answer in time) when the server asked for new credentials. */
  token_failed: 9010
} as const

export type ServerErrorName = keyof typeof ServerErrorCodes
export type ClientErrorName = keyof typeof ClientErrorCodes
/** A catalogue name, a client-side reason, or (from a newer server) a name this SDK does not know yet. */
export type WeftErrorName = ServerErrorName | ClientErrorName | (string & {})

/**
 * What kind of problem, from the code's range (the protocol asks clients to
 * handle unknown codes by range): 1xxx the frame was wrong (a bug), 2xxx the
 * channel or permission, 3xxx a limit (slow down), 4xxx the server could not
 * do it (retrying may help), 9xxx decided by the client.
 */
export type WeftErrorCategory = "frame" | "channel" | "limit" | "server" | "client" | "unknown"

export const categoryOf = (code: number): WeftErrorCategory => {
  if (code >= 1000 && code < 2000) return "frame"
  if (code >= 2000 && code < 3000) return "channel"
  if (code >= 3000 && code < 4000) return "limit"
  if (code >= 4000 && code < 5000) return "server"
  if (code >= 9000 && code < 10000) return "client"
  return "unknown"
}

export interface WeftErrorDetails {
  /** The request's channel, for subscribe/unsubscribe/publish. */
  readonly channel?: string
  /** The rpc method. */
  readonly method?: string
  /** The HTTP status, for `ticket_failed` from the ready ticket helper. */
  readonly status?: number
  readonly cause?: unknown
}

export class WeftError extends Error {
  /** The catalogue code (1000-4999) or a client-side code (9000-9999). */
  readonly code: number
  /** The catalogue name (`forbidden`, `unavailable`, ...) or the client-side reason (`timeout`, `disconnected`, ...). */
  override readonly name: WeftErrorName
  /** `server`: an `error` frame; `client`: decided by this SDK. */
  readonly origin: "server" | "client"
  readonly category: WeftErrorCategory
  readonly channel: string | undefined
  readonly method: string | undefined
  readonly status: number | undefined

  constructor(code: number, name: WeftErrorName, message: string, origin: "server" | "client", details: WeftErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.code = code
    this.name = name
    this.origin = origin
    this.category = categoryOf(code)
    this.channel = details.channel
    this.method = details.method
    this.status = details.status
  }
}

/** An error decided by the client. */
export const clientError = (name: ClientErrorName, message: string, details?: WeftErrorDetails): WeftError =>
  new WeftError(ClientErrorCodes[name], name, message, "client", details)

/**
 * A catalogue error the client raises before sending (an invalid channel
 * name, a frame that cannot be encoded), so the app sees the same code the
 * server would have answered with.
 */
export const localCatalogueError = (name: ServerErrorName, message: string, details?: WeftErrorDetails): WeftError =>
  new WeftError(ServerErrorCodes[name], name, message, "client", details)

/** A short text for any thrown value. */
export const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** Whether `error` is a `WeftError` with this name. */
export const isWeftError = (error: unknown, name?: WeftErrorName): error is WeftError =>
  error instanceof WeftError && (name === undefined || error.name === name)
