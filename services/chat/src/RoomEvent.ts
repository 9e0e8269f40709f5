/**
 * What travels on a room's channel (`room:<id>`), as the `data` of `message`
 * frames. Stored events (message, edit, delete, pin, unpin, settings) have a
 * position and are replayed by recovery and history; `typing` is ephemeral
 * and has none. Presence events go on `presence:room:<id>`.
 *
 * `body` is the application's content (any JSON-compatible value); the
 * server stores and forwards it as is.
 */
import { Schema } from "effect"

/** A message id: `<epoch>-<offset>`, unique within the room. */
export const MessageId = Schema.String.pipe(Schema.pattern(/^[a-z0-9]+-[1-9][0-9]*$/))

export const idOf = (epoch: string, offset: number): string => `${epoch}-${offset}`

/** The offset in a message id (if the id has that shape). */
export const offsetOf = (id: string): number | undefined => {
  const dash = id.lastIndexOf("-")
  const offset = Number(id.slice(dash + 1))
  return dash > 0 && Number.isSafeInteger(offset) && offset > 0 ? offset : undefined
}

export const Body = Schema.Unknown

/** A new message; `replyTo` quotes a message, `thread` makes it a follow-up in that message's thread. */
export const Posted = Schema.Struct({
  kind: Schema.Literal("message"),
  id: MessageId,
  body: Body,
  device: Schema.optional(Schema.String),
  replyTo: Schema.optional(MessageId),
  thread: Schema.optional(MessageId)
})

/** The author changed a message's body; `at` of the frame is the edit time (the edit marker). */
export const Edited = Schema.Struct({ kind: Schema.Literal("edit"), id: MessageId, body: Body })

/** A message was deleted (a tombstone: the id stays, the body is gone). */
export const Deleted = Schema.Struct({ kind: Schema.Literal("delete"), id: MessageId, by: Schema.String })

export const Pinned = Schema.Struct({ kind: Schema.Literal("pin"), id: MessageId, by: Schema.String })
export const Unpinned = Schema.Struct({ kind: Schema.Literal("unpin"), id: MessageId, by: Schema.String })

/** The room's own settings changed (`readOnly`: only moderators may send). */
export const SettingsChanged = Schema.Struct({
  kind: Schema.Literal("settings"),
  readOnly: Schema.Boolean,
  by: Schema.String
})

/** Stored in the room's history, each with a position. */
export const StoredRoomEvent = Schema.Union(Posted, Edited, Deleted, Pinned, Unpinned, SettingsChanged)
export type StoredRoomEvent = typeof StoredRoomEvent.Type

/** Someone is typing: ephemeral, never stored, no position. */
export const Typing = Schema.Struct({ kind: Schema.Literal("typing"), device: Schema.optional(Schema.String) })

/** A service's notification to the room (`notify.toRoom`): ephemeral, never stored, no position; `from` is the service. */
export const Announced = Schema.Struct({ kind: Schema.Literal("notification"), type: Schema.String, data: Schema.Unknown })

/** On `presence:room:<id>`: a user's first device joined, or last device left. */
export const PresenceChanged = Schema.Struct({
  kind: Schema.Literal("join", "leave"),
  user: Schema.String,
  devices: Schema.Number
})

/** A user in a room's presence. */
export const Present = Schema.Struct({ user: Schema.String, devices: Schema.Number })

/** A stored event with its author and time, as history returns it. */
export const HistoryEntry = Schema.Struct({
  position: Schema.Struct({ epoch: Schema.String, offset: Schema.Number }),
  from: Schema.String,
  at: Schema.Number,
  event: StoredRoomEvent
})
export type HistoryEntry = typeof HistoryEntry.Type
