/**
 * What the client tells the app, as a typed event map. `client.on(type,
 * listener)` is typed from `WeftEvents`; later server features add keys here
 * without changing anything else. The interface is exported, so declaration
 * merging can extend it too.
 *
 * Besides the connection's own events, some channel messages also arrive as
 * typed events (docs/protocol.md sections 11 and 12): `presence` (join and
 * leave on `presence:room:<id>`), `notification` (a service's, on
 * `user:<me>`, `room:<id>` or `broadcast`), `read` and `signal` (on
 * `user:<me>`). `MessageEvents.ts` reads them from messages.
 */
import type { Position } from "./Position.ts"
import type { WeftError } from "./WeftError.ts"

/**
 * - `idle`: created, `connect()` not called yet.
 * - `connecting`: an attempt is under way (ticket, WebSocket, waiting for `welcome`).
 * - `connected`: `welcome` received; subscriptions are being restored and the offline queue sent.
 * - `reconnecting`: waiting before the next attempt (backoff, the server's goodbye advice, or the network to come back).
 * - `disconnected`: stopped trying (`maxAttempts` failed in a row, the server said not to come back,
 *   or reconnecting is off); `connect()` starts again, subscriptions are kept.
 * - `closed`: `close()` was called; final.
 */
export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "disconnected" | "closed"

/** The connection as the server's `welcome` described it. */
export interface ConnectionInfo {
  /** The connection's address in the cluster, `conn/<node>/<n>`: quote it in support requests. */
  readonly conn: string
  readonly user: string
  readonly device?: string
  /** The node the connection landed on. */
  readonly node: string
  /** The server's heartbeat (ms): the client sends a frame at least this often. */
  readonly heartbeat: number
  readonly limits: {
    readonly maxFrameBytes: number
    readonly maxSubscriptions: number
    readonly ratePerSecond: number
  }
  /** The WebSocket URL this connection was opened on (without the ticket). */
  readonly url: string
  /**
   * When the connection's credentials (the JWT's `exp`) expire, ms since 1970-01-01 UTC; updated
   * by each successful refresh. Absent: they never expire.
   */
  readonly expiresAt?: number
}

/** A message on a subscribed channel. */
export interface ChannelMessage {
  readonly channel: string
  /** As published: any msgpack value (bytes arrive as `Uint8Array`; on JSON as `{"$base64": ...}`). */
  readonly data: unknown
  /** The publishing user, when a user published it (absent when a service did). */
  readonly from?: string
  /** Where it sits in the channel's history, for channels with history. */
  readonly position?: Position
  /** When the server accepted it, ms since 1970-01-01 UTC. */
  readonly at: number
}

/** The server's advice before it closes a connection (`goodbye` frame). */
export interface GoodbyeAdvice {
  /**
   * `draining`, `shutdown`, `policy`, `slow-consumer`, `credentials-expired` (reconnects with a
   * fresh ticket), `revoked` or `banned` (the service API ended the connection: no reconnect).
   */
  readonly reason: string
  /** Whether to connect again. */
  readonly reconnect: boolean
  /** How long to wait first (ms); the client adds jitter. */
  readonly after?: number
}

export interface StateEvent {
  readonly state: ConnectionState
  readonly previous: ConnectionState
  /** For `connecting` and `reconnecting`: failed attempts in a row so far. */
  readonly attempt?: number
  /** For `reconnecting`: how long until the next attempt (absent while waiting for the network). */
  readonly delayMs?: number
  /** For `reconnecting`: waiting for the browser to report the network back. */
  readonly waitingForNetwork?: boolean
  /** For `disconnected` and `closed`: why. */
  readonly error?: WeftError
}

export interface ConnectedEvent {
  readonly info: ConnectionInfo
  /** `false` for the first connection, `true` after a reconnect. */
  readonly reconnected: boolean
}

export interface DisconnectedEvent {
  /** The WebSocket close code (1006: dropped; 4000: closed by the client, e.g. for a missed heartbeat). */
  readonly code: number
  readonly reason: string
  /** The server's goodbye, when it sent one. */
  readonly goodbye?: GoodbyeAdvice
}

export interface SubscribedEvent {
  readonly channel: string
  /** `true` when re-subscribing after a reconnect. */
  readonly restored: boolean
  /** The `since` position sent (the last message delivered on the channel), if any. */
  readonly since?: Position
  /** Where the channel stands, when the server said (channels with history). */
  readonly position?: Position
  /**
   * For a restore with `since`: `ok` when every message after `since` was (or
   * is being) delivered, then live ones; `failed` when the server could not
   * (another epoch, or older than its retained history): messages in between
   * were missed, and the app should reload the channel's history.
   */
  readonly recovery?: "ok" | "failed"
}

/** On `presence:room:<id>`: a user's first connection joined the room, or their last one left. */
export interface PresenceEvent {
  /** The room's id (without `room:`). */
  readonly room: string
  readonly kind: "join" | "leave"
  readonly user: string
  /** How many connections the user has in the room now (0 after a `leave`). */
  readonly devices: number
  /** When the server sent it, ms since 1970-01-01 UTC. */
  readonly at: number
}

/** A service's notification to this user (`notify.toUser`): stored in the user's inbox, with a position. */
export interface UserNotificationEvent {
  readonly scope: "user"
  /** The notification's id in the inbox: mark it read with `client.notifications.read([id])`. */
  readonly id: string
  /** The application's category, e.g. `order.completed`. */
  readonly type: string
  /** The notification's content, as the service sent it. */
  readonly data: unknown
  /** The service that sent it. */
  readonly sender: string
  /** Where it sits in the user's inbox. */
  readonly position: Position
  readonly at: number
}

/** A service's notification to everyone in a room now (`notify.toRoom`): not stored. */
export interface RoomNotificationEvent {
  readonly scope: "room"
  /** The room's id (without `room:`). */
  readonly room: string
  readonly type: string
  readonly data: unknown
  /** The service that sent it (the frame's `from`), when the server said. */
  readonly sender?: string
  readonly at: number
}

/** A service's notification to every connection (`notify.broadcast`, on the `broadcast` channel): not stored. */
export interface BroadcastNotificationEvent {
  readonly scope: "broadcast"
  readonly type: string
  readonly data: unknown
  /** The service that sent it (the frame's `from`), when the server said. */
  readonly sender?: string
  readonly at: number
}

/** A service's notification; `scope` says to whom it was sent. */
export type NotificationEvent = UserNotificationEvent | RoomNotificationEvent | BroadcastNotificationEvent

/** On `user:<me>`: notifications were marked read (by any device of the user). */
export interface ReadEvent {
  /** The ids marked read. */
  readonly ids: ReadonlyArray<string>
  /** The user's unread count now, for the badge. */
  readonly unread: number
  readonly at: number
}

/** On `user:<me>`: a direct message from another user (`signal.send`), e.g. a WebRTC offer. Live only, never stored. */
export interface SignalEvent {
  /** The sending user. */
  readonly from: string
  /** The sending user's device, when it has one. */
  readonly fromDevice?: string
  readonly data: unknown
  readonly at: number
}

/** The server asks for new credentials before the connection's expire (`refresh-required`). */
export interface RefreshRequiredEvent {
  /** When the current credentials expire, ms since 1970-01-01 UTC. */
  readonly expiresAt: number
  /** When the server closes the connection (4003, `credentials-expired`) unless a refresh succeeded. */
  readonly deadline: number
}

/**
 * The outcome of a refresh (from `getToken`, or `client.refresh(token)`): `ok` with the new
 * expiry (absent: the new credentials never expire), or the error (`invalid_credentials`,
 * `wrong_user`, `token_failed`, `timeout`...). A transient failure is retried until the deadline.
 */
export type RefreshEvent =
  | { readonly ok: true; readonly expiresAt?: number }
  | { readonly ok: false; readonly error: WeftError }

/** The server ended a subscription on its own: after a refresh, the credentials no longer allow the channel. */
export interface UnsubscribedEvent {
  readonly channel: string
  /** `forbidden`: the refreshed credentials no longer allow the channel. */
  readonly reason: string
  /** The same, as the error the subscription's `ready` rejects with and its `ended` holds. */
  readonly error: WeftError
}

export interface WeftEvents {
  /** Every change of `client.state`. */
  state: StateEvent
  /** A `welcome` arrived: the client is connected (again). */
  connected: ConnectedEvent
  /** A connection (or an attempt) ended. */
  disconnected: DisconnectedEvent
  /**
   * Every message delivered to subscription handlers (after de-duplication),
   * and those that arrive without a subscription: `broadcast` messages and
   * signals on `user:<me>`.
   */
  message: ChannelMessage
  /** The server acknowledged a subscription, new or restored. */
  subscribed: SubscribedEvent
  /** The server said goodbye; the client follows its advice. */
  goodbye: GoodbyeAdvice
  /**
   * Errors with no promise to reject: a failed ticket or attempt, a restored
   * subscription the server refused, an `error` frame without an id, an
   * undecodable frame, a message whose event has the wrong shape for its
   * kind, a listener that threw.
   */
  error: WeftError
  /** A user joined or left a room whose `presence:room:<id>` channel is subscribed. */
  presence: PresenceEvent
  /** A service's notification: to this user (`user:<me>`), to a subscribed room, or to everyone (`broadcast`). */
  notification: NotificationEvent
  /** Notifications of this user were marked read. */
  read: ReadEvent
  /** Another user's signal to this user (arrives whether or not `user:<me>` is subscribed). */
  signal: SignalEvent
  /** The server asked for new credentials (with `getToken`, the client answers by itself). */
  refreshRequired: RefreshRequiredEvent
  /** A refresh succeeded or failed. */
  refresh: RefreshEvent
  /** The server ended a subscription (its handlers are no longer called). */
  unsubscribed: UnsubscribedEvent
}
