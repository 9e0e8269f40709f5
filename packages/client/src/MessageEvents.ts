/**
 * The typed events some channel messages carry (docs/protocol.md sections 11
 * and 12), read from a delivered message's channel and `data.kind`:
 *
 * | channel | `data.kind` | event |
 * | --- | --- | --- |
 * | `presence:room:<id>` | `join`, `leave` | `presence` |
 * | `room:<id>` | `notification` | `notification` (scope `room`) |
 * | `user:<me>` | `notification` | `notification` (scope `user`) |
 * | `user:<me>` | `read` | `read` |
 * | `user:<me>` | `signal` | `signal` |
 * | `broadcast` | `notification` | `notification` (scope `broadcast`) |
 *
 * A kind this table does not list (the room's own events, a newer server's)
 * is no typed event: the message reaches handlers and the `message` event
 * only, as the protocol asks clients to ignore what they do not know. A
 * listed kind with the wrong fields is `malformed`: the client reports it as
 * an `error` event, never throws.
 */
import type { ChannelMessage, NotificationEvent, PresenceEvent, ReadEvent, SignalEvent } from "./Events.ts"
import { isArrayOf, isCount, isPosition, isRecord, isString, preview } from "./Shapes.ts"

/** The channel every connection hears without subscribing (`notify.broadcast`). */
export const broadcastChannel = "broadcast"

const presencePrefix = "presence:room:"
const roomPrefix = "room:"

export type TypedEvent =
  | { readonly type: "presence"; readonly event: PresenceEvent }
  | { readonly type: "notification"; readonly event: NotificationEvent }
  | { readonly type: "read"; readonly event: ReadEvent }
  | { readonly type: "signal"; readonly event: SignalEvent }
  | { readonly type: "malformed"; readonly reason: string }

const kindOf = (data: unknown): unknown => (isRecord(data) ? data["kind"] : undefined)

/**
 * Whether a message reaches the app with no subscription on its channel:
 * broadcasts, and signals on the user's own channel (protocol section 12).
 * Anything else without a subscription is a late arrival after an
 * unsubscribe, and is dropped.
 */
export const arrivesUnsubscribed = (message: ChannelMessage, user: string): boolean =>
  message.channel === broadcastChannel || (message.channel === `user:${user}` && kindOf(message.data) === "signal")

const malformed = (message: ChannelMessage, kind: string, expected: string): TypedEvent => ({
  type: "malformed",
  reason: `a "${kind}" event on ${message.channel} has the wrong shape (expected ${expected}): ${preview(message.data)}`
})

/** The typed event `message` carries for `user` (the connection's user), if any. */
export const typedEventOf = (message: ChannelMessage, user: string): TypedEvent | undefined => {
  const { channel, data, at } = message
  if (!isRecord(data) || !isString(data["kind"])) return undefined
  const kind = data["kind"]
  const sender = message.from === undefined ? {} : { sender: message.from }

  if (channel.startsWith(presencePrefix)) {
    if (kind !== "join" && kind !== "leave") return undefined
    const { user: who, devices } = data
    if (!isString(who) || !isCount(devices)) return malformed(message, kind, "user: string, devices: count")
    return { type: "presence", event: { room: channel.slice(presencePrefix.length), kind, user: who, devices, at } }
  }

  if (channel.startsWith(roomPrefix) || channel === broadcastChannel) {
    if (kind !== "notification") return undefined
    const type = data["type"]
    if (!isString(type)) return malformed(message, kind, "type: string")
    const event: NotificationEvent = channel === broadcastChannel
      ? { scope: "broadcast", type, data: data["data"], ...sender, at }
      : { scope: "room", room: channel.slice(roomPrefix.length), type, data: data["data"], ...sender, at }
    return { type: "notification", event }
  }

  if (channel !== `user:${user}`) return undefined
  switch (kind) {
    case "notification": {
      const { id, type, sender: service } = data
      const position = message.position
      if (!isString(id) || !isString(type) || !isString(service) || !isPosition(position)) {
        return malformed(message, kind, "id, type, sender: string, and a position")
      }
      return { type: "notification", event: { scope: "user", id, type, data: data["data"], sender: service, position, at } }
    }
    case "read": {
      const { ids, unread } = data
      if (!isArrayOf(isString)(ids) || !isCount(unread)) return malformed(message, kind, "ids: string[], unread: count")
      return { type: "read", event: { ids, unread, at } }
    }
    case "signal": {
      const { fromDevice } = data
      if (message.from === undefined || !(fromDevice === undefined || isString(fromDevice))) {
        return malformed(message, kind, "the sender in from, fromDevice?: string")
      }
      return {
        type: "signal",
        event: { from: message.from, ...(fromDevice === undefined ? {} : { fromDevice }), data: data["data"], at }
      }
    }
    default:
      return undefined
  }
}
