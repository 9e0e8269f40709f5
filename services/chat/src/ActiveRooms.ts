/**
 * The rooms active on this node, with their member counts: what the node's
 * stats report (and so the dashboard) shows of the chat role. Each room
 * activation registers itself for its lifetime with a function that counts
 * its members, so reading costs one pass over this node's active rooms and
 * nothing is kept per message. Optional for the room entity: without this
 * service in its context, rooms are simply not counted.
 */
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"

/** A room and its members now: `members` connections, of `users` distinct users. */
export interface RoomCount {
  readonly room: string
  readonly members: number
  readonly users: number
}

export interface ActiveRoomsService {
  /** Registers a room activation until the current scope closes; `count` is read at each `top`. */
  readonly track: (room: string, count: () => { readonly members: number; readonly users: number }) => Effect.Effect<void, never, Scope.Scope>
  /** How many rooms are active here, and the `limit` largest by members (ties by name). */
  readonly top: (limit: number) => Effect.Effect<{ readonly active: number; readonly top: ReadonlyArray<RoomCount> }>
}

export class ActiveRooms extends Context.Tag("@weft/chat/ActiveRooms")<ActiveRooms, ActiveRoomsService>() {}

const larger = (a: RoomCount, b: RoomCount): number => b.members - a.members || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0)

export const make = (): ActiveRoomsService => {
  const rooms = new Map<string, () => { readonly members: number; readonly users: number }>()
  return {
    track: (room, count) =>
      Effect.acquireRelease(
        Effect.sync(() => void rooms.set(room, count)),
        // A newer activation of the same room (after a restart) may have registered meanwhile.
        () => Effect.sync(() => void (rooms.get(room) === count && rooms.delete(room)))
      ),
    top: (limit) =>
      Effect.sync(() => {
        if (limit <= 0) return { active: rooms.size, top: [] }
        // A bounded selection: the kept list never exceeds `limit`, whatever the number of rooms.
        const kept: Array<RoomCount> = []
        for (const [room, count] of rooms) {
          const { members, users } = count()
          const candidate = { room, members, users }
          if (kept.length === limit && larger(candidate, kept[kept.length - 1]!) >= 0) continue
          let at = kept.length
          while (at > 0 && larger(candidate, kept[at - 1]!) < 0) at--
          kept.splice(at, 0, candidate)
          if (kept.length > limit) kept.pop()
        }
        return { active: rooms.size, top: kept }
      })
  }
}

export const layer: Layer.Layer<ActiveRooms> = Layer.sync(ActiveRooms, make)
