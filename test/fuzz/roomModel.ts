/**
 * A simple model of one room, for the model-based test of the room entity: the stored events in
 * order, each message's author and whether it is deleted, the pins, who is present, and each
 * client's own view (the history it read when it first joined, then what it heard live or
 * recovered on rejoining). The rules are those of docs/protocol.md §11: only the author edits;
 * the author or a moderator deletes; anyone with write access pins; a reply or edit of a
 * deleted or unknown message is not_found.
 */

import type { RoomEvent } from "@weft/chat"

/** A stored room event, as the room stores and sends it (the model makes no `settings` events). */
export type StoredEvent = RoomEvent.StoredRoomEvent

export interface LogEntry {
  readonly offset: number
  readonly from: string
  readonly event: StoredEvent
}

export interface ClientModel {
  readonly name: string
  readonly user: string
  /** The connection address while connected (a new one per connection, as on a real node). */
  conn: string | undefined
  /** Whether it has ever joined (its first join reads history, later ones recover from `seen`). */
  joined: boolean
  /** The offset of the last event in its view. */
  seen: number
  /** Everything the client knows of the room, in order. */
  readonly view: Array<LogEntry>
}

export interface RoomModel {
  readonly log: Array<LogEntry>
  readonly messages: Map<string, { readonly author: string; deleted: boolean }>
  readonly pins: Map<string, string>
  readonly clients: ReadonlyArray<ClientModel>
  /** Ephemeral typing events sent so far (never stored, never recovered). */
  typing: number
  /** join/leave events expected on the room's presence channel, in order. */
  readonly presence: Array<{ readonly kind: "join" | "leave"; readonly user: string }>
}

export const users = ["alice", "bob", "carol"] as const

export const makeModel = (): RoomModel => ({
  log: [],
  messages: new Map(),
  pins: new Map(),
  clients: [
    { name: "alice-phone", user: "alice", conn: undefined, joined: false, seen: 0, view: [] },
    { name: "alice-laptop", user: "alice", conn: undefined, joined: false, seen: 0, view: [] },
    { name: "bob", user: "bob", conn: undefined, joined: false, seen: 0, view: [] },
    { name: "carol", user: "carol", conn: undefined, joined: false, seen: 0, view: [] }
  ],
  typing: 0,
  presence: []
})

export const headOf = (model: RoomModel): number => model.log.length

/** The n-th message ever sent (modulo how many there are), deleted or not; undefined before the first. */
export const pickMessage = (model: RoomModel, index: number): string | undefined => {
  const ids = [...model.messages.keys()]
  return ids.length === 0 ? undefined : ids[index % ids.length]
}

export type Outcome = "ok" | "forbidden" | "not_found"

const live = (model: RoomModel, id: string | undefined): boolean => id !== undefined && model.messages.get(id)?.deleted === false

export const expectSend = (model: RoomModel, replyTo: string | undefined): Outcome => (replyTo === undefined || live(model, replyTo) ? "ok" : "not_found")

export const expectEdit = (model: RoomModel, user: string, id: string): Outcome =>
  !live(model, id) ? "not_found" : model.messages.get(id)?.author === user ? "ok" : "forbidden"

export const expectDelete = (model: RoomModel, user: string, id: string, moderator: boolean): Outcome =>
  !live(model, id) ? "not_found" : model.messages.get(id)?.author === user || moderator ? "ok" : "forbidden"

export const expectPin = (model: RoomModel, id: string): Outcome => (live(model, id) ? "ok" : "not_found")

/** Stores an accepted event: the log, the message index and pins, and the live view of every connected client. */
export const store = (model: RoomModel, from: string, event: StoredEvent): LogEntry => {
  const entry: LogEntry = { offset: model.log.length + 1, from, event }
  model.log.push(entry)
  switch (event.kind) {
    case "message":
      model.messages.set(event.id, { author: from, deleted: false })
      break
    case "delete":
      model.messages.get(event.id)!.deleted = true
      model.pins.delete(event.id)
      break
    case "pin":
      model.pins.set(event.id, event.by)
      break
    case "unpin":
      model.pins.delete(event.id)
      break
    case "edit":
    case "settings":
      break
  }
  for (const client of model.clients) {
    if (client.conn === undefined) continue
    client.view.push(entry)
    client.seen = entry.offset
  }
  return entry
}

/** The users present and their connection counts, as the room's Presence answers. */
export const presenceOf = (model: RoomModel): Array<{ readonly user: string; readonly devices: number }> => {
  const counts = new Map<string, number>()
  for (const client of model.clients) if (client.conn !== undefined) counts.set(client.user, (counts.get(client.user) ?? 0) + 1)
  return [...counts].map(([user, devices]) => ({ user, devices })).sort((a, b) => a.user.localeCompare(b.user))
}

export const connectedOf = (model: RoomModel, user: string): number =>
  model.clients.filter((client) => client.user === user && client.conn !== undefined).length

/** What a client shows: each message's current body, or deleted; and the pins. Built from its view alone. */
export const screenOf = (view: ReadonlyArray<LogEntry>) => {
  const bodies = new Map<string, { body: unknown; deleted: boolean }>()
  const pins = new Map<string, string>()
  for (const { event } of view) {
    if (event.kind === "message") bodies.set(event.id, { body: event.body, deleted: false })
    else if (event.kind === "edit") bodies.get(event.id)!.body = event.body
    else if (event.kind === "delete") {
      bodies.get(event.id)!.deleted = true
      pins.delete(event.id)
    } else if (event.kind === "pin") pins.set(event.id, event.by)
    else if (event.kind === "unpin") pins.delete(event.id)
  }
  return { bodies: [...bodies], pins: [...pins].sort() }
}
