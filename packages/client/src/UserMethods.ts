/**
 * Typed helpers over `rpc` for the user methods (docs/protocol.md section
 * 12.1): the connection's own inbox (`client.notifications.list` and
 * `read`) and signals to other users (`client.signal`). Each result is
 * checked against the shape the protocol gives it; a wrong one rejects with
 * a `protocol_error`.
 */
import type { RequestOptions } from "./Client.ts"
import type { Position } from "./Position.ts"
import type { Rpc } from "./RoomMethods.ts"
import { checked, type Guard, isArrayOf, isBoolean, isCount, isNumber, isPosition, isRecord, isString } from "./Shapes.ts"

/** A notification in the inbox. */
export interface InboxNotification {
  readonly id: string
  /** The application's category, e.g. `order.completed`. */
  readonly type: string
  readonly data: unknown
  /** The service that sent it. */
  readonly sender: string
}

export interface InboxEntry {
  readonly position: Position
  readonly at: number
  readonly read: boolean
  readonly notification: InboxNotification
}

export interface InboxPage {
  /** Oldest first. */
  readonly entries: ReadonlyArray<InboxEntry>
  /** The user's unread count. */
  readonly unread: number
  /** The inbox's last position: where a `user:<me>` subscription would start. */
  readonly position: Position
}

export interface ListOptions extends RequestOptions {
  /** The entries just before this offset (to page back); default: the newest. */
  readonly before?: number
  /** How many, 1-200 (default 50). */
  readonly limit?: number
}

export interface NotificationMethods {
  /** `notifications.list`: a page of the user's inbox. */
  readonly list: (options?: ListOptions) => Promise<InboxPage>
  /**
   * `notifications.read`: marks these notifications (up to 1000 ids), or
   * `"all"` of the inbox, read; resolves with the new unread count. Every
   * device of the user gets a `read` event.
   */
  readonly read: (ids: ReadonlyArray<string> | "all", options?: RequestOptions) => Promise<{ readonly unread: number }>
}

export interface SignalOptions extends RequestOptions {
  /** Only this device of the user. */
  readonly device?: string
}

/** `signal.send`: sends `data` to `user`'s connected devices (at most once, not stored); resolves with how many got it. */
export type SendSignal = (user: string, data: unknown, options?: SignalOptions) => Promise<{ readonly devices: number }>

const isInboxNotification: Guard<InboxNotification> = (value): value is InboxNotification =>
  isRecord(value) && isString(value["id"]) && isString(value["type"]) && isString(value["sender"])

const isInboxEntry: Guard<InboxEntry> = (value): value is InboxEntry =>
  isRecord(value) && isPosition(value["position"]) && isNumber(value["at"]) && isBoolean(value["read"]) &&
  isInboxNotification(value["notification"])

const isInboxPage: Guard<InboxPage> = (value): value is InboxPage =>
  isRecord(value) && isArrayOf(isInboxEntry)(value["entries"]) && isCount(value["unread"]) && isPosition(value["position"])

const hasCount = <K extends string>(key: K): Guard<{ readonly [P in K]: number }> =>
  (value): value is { readonly [P in K]: number } => isRecord(value) && isCount(value[key])

const entryOf = (entry: InboxEntry): InboxEntry => ({
  position: entry.position,
  at: entry.at,
  read: entry.read,
  notification: { id: entry.notification.id, type: entry.notification.type, data: entry.notification.data, sender: entry.notification.sender }
})

/** The inbox helpers over `rpc` (the client's `notifications`). */
export const notificationMethods = (rpc: Rpc): NotificationMethods => ({
  list: ({ before, limit, ...options } = {}) =>
    rpc("notifications.list", { ...(before === undefined ? {} : { before }), ...(limit === undefined ? {} : { limit }) }, options)
      .then(checked(isInboxPage, "{ entries, unread, position }", { method: "notifications.list" }))
      .then((page) => ({ entries: page.entries.map(entryOf), unread: page.unread, position: page.position })),
  read: (ids, options = {}) =>
    rpc("notifications.read", ids === "all" ? { all: true } : { ids }, options)
      .then(checked(hasCount("unread"), "{ unread }", { method: "notifications.read" }))
      .then(({ unread }) => ({ unread }))
})

/** The signal helper over `rpc` (the client's `signal`). */
export const sendSignal = (rpc: Rpc): SendSignal => (user, data, { device, ...options } = {}) =>
  rpc("signal.send", { user, ...(device === undefined ? {} : { device }), data: data === undefined ? null : data }, options)
    .then(checked(hasCount("devices"), "{ devices }", { method: "signal.send" }))
    .then(({ devices }) => ({ devices }))
