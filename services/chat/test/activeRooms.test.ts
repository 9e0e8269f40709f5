import { Effect, Exit, Scope } from "effect"
import { expect, it } from "vitest"
import * as ActiveRooms from "../src/ActiveRooms.ts"

it("counts the active rooms and lists the largest, live, until each activation's scope closes", async () => {
  const rooms = ActiveRooms.make()
  const members = new Map<string, number>([["a", 1], ["b", 5], ["c", 3], ["d", 5]])
  const scopes = new Map<string, Scope.CloseableScope>()
  for (const room of members.keys()) {
    const scope = await Effect.runPromise(Scope.make())
    scopes.set(room, scope)
    await Effect.runPromise(rooms.track(room, () => ({ members: members.get(room)!, users: 1 })).pipe(Scope.extend(scope)))
  }
  const top = (limit: number) => Effect.runPromise(rooms.top(limit))
  expect(await top(2)).toEqual({ active: 4, top: [{ room: "b", members: 5, users: 1 }, { room: "d", members: 5, users: 1 }] })
  expect((await top(10)).top.map((room) => room.room)).toEqual(["b", "d", "c", "a"])
  expect(await top(0)).toEqual({ active: 4, top: [] })

  // Counts are read when asked.
  members.set("a", 9)
  expect((await top(1)).top).toEqual([{ room: "a", members: 9, users: 1 }])

  await Effect.runPromise(Scope.close(scopes.get("a")!, Exit.void))
  expect(await top(10)).toMatchObject({ active: 3 })
  expect((await top(10)).top.map((room) => room.room)).toEqual(["b", "d", "c"])
})

it("keeps a newer activation of a room when an older one's scope closes late", async () => {
  const rooms = ActiveRooms.make()
  const old = await Effect.runPromise(Scope.make())
  const fresh = await Effect.runPromise(Scope.make())
  await Effect.runPromise(rooms.track("r", () => ({ members: 1, users: 1 })).pipe(Scope.extend(old)))
  await Effect.runPromise(rooms.track("r", () => ({ members: 2, users: 2 })).pipe(Scope.extend(fresh)))
  await Effect.runPromise(Scope.close(old, Exit.void))
  expect(await Effect.runPromise(rooms.top(5))).toEqual({ active: 1, top: [{ room: "r", members: 2, users: 2 }] })
})
