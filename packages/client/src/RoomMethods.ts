/**
 * Typed helpers over `rpc` for the chat role's room methods
 * (docs/protocol.md section 11.3): `client.rooms.send(room, body)` and the
 * rest. `room` is always the room's id, without `room:`. Each result is
 * checked against the shape the protocol gives it; a wrong one rejects with
 * a `protocol_error`. Refusals are the server's own errors (`forbidden`,
 * `not_found`, `invalid_params`, `unavailable`).
 */
import type { RequestOptions } from "./Client.ts"
import type { ChannelMessage } from "./Events.ts"
import type { Position } from "./Position.ts"
import { checked, type Guard, isArrayOf, isCount, isNumber, isOptional, isPosition, isRecord, isString } from "./Shapes.ts"

/** `client.rpc`, which the helpers are written over. */
export type Rpc = (method: string, params?: unknown, options?: RequestOptions) => Promise<unknown>

/** A stored room event was appended: where, and when. */
export interface RoomAccepted {
  readonly position: Position
  readonly at: number
}

/** A message was sent: its id (`<epoch>-<offset>`), position and time. */
export interface RoomSent extends RoomAccepted {
  readonly id: string
}

export interface RoomPin {
  /** The pinned message's id. */
  readonly id: string
  /** Who pinned it. */
  readonly by: string
  readonly at: number
}

/** A user in the room, with how many of their connections are in it. */
export interface RoomMember {
  readonly user: string
  readonly devices: number
}

export interface RoomHistory {
  /** The room's epoch: offsets count within it. */
  readonly epoch: string
  /** The first retained offset. */
  readonly first: number
  /** The last stored offset (0 in a new room). */
  readonly last: number
  /** The stored events asked for, oldest first, as subscribers received them (`data` is the room event). */
  readonly messages: ReadonlyArray<ChannelMessage>
}

export interface SendOptions extends RequestOptions {
  /** Quotes this message (its id). */
  readonly replyTo?: string
  /** Makes the new message a follow-up in this message's thread (its id). */
  readonly thread?: string
}

export interface HistoryOptions extends RequestOptions {
  /** The events just before this offset (default: the newest). */
  readonly before?: number
  /** The events just after this offset (instead of `before`). */
  readonly after?: number
  /** How many, 1-500 (default 50). */
  readonly limit?: number
}

export interface RoomSettings {
  /** Only moderators may send in a read-only room. */
  readonly readOnly: boolean
}

export interface RoomMethods {
  /** `room.send`: a new message (write permission). */
  readonly send: (room: string, body: unknown, options?: SendOptions) => Promise<RoomSent>
  /** `room.edit`: replaces the body of a message you wrote. */
  readonly edit: (room: string, id: string, body: unknown, options?: RequestOptions) => Promise<RoomAccepted>
  /** `room.delete`: deletes a message you wrote (or any, as a moderator), leaving a tombstone. */
  readonly delete: (room: string, id: string, options?: RequestOptions) => Promise<RoomAccepted>
  /** `room.pin`. */
  readonly pin: (room: string, id: string, options?: RequestOptions) => Promise<RoomAccepted>
  /** `room.unpin`. */
  readonly unpin: (room: string, id: string, options?: RequestOptions) => Promise<RoomAccepted>
  /** `room.pins`: the pinned messages (read permission). */
  readonly pins: (room: string, options?: RequestOptions) => Promise<ReadonlyArray<RoomPin>>
  /** `room.typing`: tells the room you are typing (ephemeral). */
  readonly typing: (room: string, options?: RequestOptions) => Promise<void>
  /** `room.history`: stored events by offset (read permission). */
  readonly history: (room: string, options?: HistoryOptions) => Promise<RoomHistory>
  /** `room.presence`: who is in the room now (read permission). */
  readonly presence: (room: string, options?: RequestOptions) => Promise<ReadonlyArray<RoomMember>>
  /** `room.configure`: the room's settings (moderate permission). */
  readonly configure: (room: string, settings: RoomSettings, options?: RequestOptions) => Promise<RoomAccepted>
}

const isAccepted: Guard<RoomAccepted> = (value): value is RoomAccepted =>
  isRecord(value) && isPosition(value["position"]) && isNumber(value["at"])

const isSent: Guard<RoomSent> = (value): value is RoomSent => isRecord(value) && isAccepted(value) && isString(value["id"])

const isPin: Guard<RoomPin> = (value): value is RoomPin =>
  isRecord(value) && isString(value["id"]) && isString(value["by"]) && isNumber(value["at"])

const isMember: Guard<RoomMember> = (value): value is RoomMember =>
  isRecord(value) && isString(value["user"]) && isCount(value["devices"])

/** A `message` frame as history returns it. */
type HistoryFrame = { readonly [key: string]: unknown } & Omit<ChannelMessage, "data">

const isHistoryFrame: Guard<HistoryFrame> = (value): value is HistoryFrame =>
  isRecord(value) && isString(value["channel"]) && isNumber(value["at"]) && isOptional(isString)(value["from"]) &&
  isOptional(isPosition)(value["position"])

const isHistoryPage = (value: unknown): value is { readonly epoch: string; readonly first: number; readonly last: number; readonly messages: ReadonlyArray<HistoryFrame> } =>
  isRecord(value) && isString(value["epoch"]) && isCount(value["first"]) && isCount(value["last"]) &&
  isArrayOf(isHistoryFrame)(value["messages"])

const messageOf = (frame: HistoryFrame): ChannelMessage => ({
  channel: frame.channel,
  data: frame["data"],
  ...(frame.from === undefined ? {} : { from: frame.from }),
  ...(frame.position === undefined ? {} : { position: frame.position }),
  at: frame.at
})

const accepted = "{ position, at }"

/** The room helpers over `rpc` (the client's `rooms`). */
export const roomMethods = (rpc: Rpc): RoomMethods => {
  const call = <A>(method: string, params: object, options: RequestOptions, guard: Guard<A>, shape: string): Promise<A> =>
    rpc(method, params, options).then(checked(guard, shape, { method }))
  const byId = (method: string) => (room: string, id: string, options: RequestOptions = {}) =>
    call(method, { room, id }, options, isAccepted, accepted)
  return {
    send: (room, body, { replyTo, thread, ...options } = {}) =>
      call(
        "room.send",
        {
          room,
          body: body === undefined ? null : body,
          ...(replyTo === undefined ? {} : { replyTo }),
          ...(thread === undefined ? {} : { thread })
        },
        options,
        isSent,
        "{ id, position, at }"
      ),
    edit: (room, id, body, options = {}) =>
      call("room.edit", { room, id, body: body === undefined ? null : body }, options, isAccepted, accepted),
    delete: byId("room.delete"),
    pin: byId("room.pin"),
    unpin: byId("room.unpin"),
    pins: (room, options = {}) => call("room.pins", { room }, options, isArrayOf(isPin), "[{ id, by, at }]"),
    // The result is `null`: nothing to read.
    typing: (room, options = {}) => rpc("room.typing", { room }, options).then(() => undefined),
    history: (room, { before, after, limit, ...options } = {}) =>
      call(
        "room.history",
        {
          room,
          ...(before === undefined ? {} : { before }),
          ...(after === undefined ? {} : { after }),
          ...(limit === undefined ? {} : { limit })
        },
        options,
        isHistoryPage,
        "{ epoch, first, last, messages }"
      ).then((page) => ({ epoch: page.epoch, first: page.first, last: page.last, messages: page.messages.map(messageOf) })),
    presence: (room, options = {}) => call("room.presence", { room }, options, isArrayOf(isMember), "[{ user, devices }]"),
    configure: (room, settings, options = {}) =>
      call("room.configure", { room, readOnly: settings.readOnly }, options, isAccepted, accepted)
  }
}
