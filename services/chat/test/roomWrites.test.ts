/**
 * How a room writes its history, on the embedded node (memory storage):
 * requests that arrive together are stored in batches, in arrival order; a
 * request delivered twice with the same key (the cluster repeats a request
 * whose node died before answering) is stored once and answered as the first
 * was, also by a later activation of the room, which learns the keys from the
 * history it loads.
 */
import { type Sharding } from "@effect/cluster"
import { ActorSystem } from "@weft/actor"
import { ClusterNode, History, MemoryHistory } from "@weft/cluster"
import { Effect, Exit, Layer, Schema, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { layer as roomLayer, Members, newRequestKey, Room, shardGroup } from "../src/index.ts"

/** Memory history that counts its batch writes, each taking a moment as a round trip to Redis would. */
let batchWrites = 0
const countingHistory = Layer.effect(
  History.History,
  Effect.map(MemoryHistory.make({ maxLength: 1000, maxAgeMs: 3_600_000 }), (history) => ({
    ...history,
    appendAll: (room: string, epoch: string, entries: ReadonlyArray<History.NewEvent>) => {
      batchWrites++
      return Effect.zipRight(Effect.sleep("1 millis"), history.appendAll(room, epoch, entries))
    }
  }))
)

const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const context = Effect.runPromise(
  Layer.buildWithScope(
    roomLayer({ maxIdleTime: "300 millis" }).pipe(
      Layer.provideMerge(countingHistory),
      Layer.provideMerge(Members.layerMemory),
      Layer.provideMerge(
        ClusterNode.embedded({
          nodeId: "room-keys",
          cluster: "room-keys",
          redis: undefined,
          runnerHost: "127.0.0.1",
          runnerPort: 0,
          shardGroups: { available: [shardGroup], assigned: [shardGroup] }
        })
      ),
      Layer.provideMerge(ActorSystem.layer({ name: "room-keys" }))
    ),
    scope
  )
)

const run = async <A, E>(effect: Effect.Effect<A, E, Sharding.Sharding | History.History>) =>
  Effect.runPromise(effect.pipe(Effect.provide(await context)))

const send = (room: string, body: unknown, key?: string) =>
  Effect.flatMap(Room.client, (rooms) =>
    rooms(room).Send({ from: "alice", body, moderator: false, ...(key === undefined ? {} : { key }) }))

const stored = (room: string) => Effect.flatMap(History.History, (history) => history.readAfter(room, 0, 100))

describe("room writes", () => {
  it("sends that arrive together are stored in batches, at dense offsets in arrival order", async () => {
    const before = batchWrites
    const accepted = await run(Effect.all(Array.from({ length: 200 }, (_, i) => send("batches", i)), { concurrency: "unbounded" }))
    expect(accepted.map((a) => a.position.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    const stored = await run(Effect.flatMap(History.History, (history) => history.readAfter("batches", 0, 500)))
    const bodyOf = Schema.decodeUnknownSync(Schema.Struct({ event: Schema.Struct({ body: Schema.Number }) }))
    expect(stored.map((entry) => bodyOf(entry.event).event.body)).toEqual(Array.from({ length: 200 }, (_, i) => i))
    expect(batchWrites - before).toBeGreaterThan(0)
    expect(batchWrites - before).toBeLessThan(200)
  })

  it("a repeated Send is stored once and answered as the first", async () => {
    const key = newRequestKey()
    const first = await run(send("keys-a", "one", key))
    const again = await run(send("keys-a", "one", key))
    expect(again).toEqual(first)
    const other = await run(send("keys-a", "two", newRequestKey()))
    expect(other.position.offset).toBe(first.position.offset + 1)
    // Without a key nothing is deduplicated: two sends, two events.
    await run(send("keys-a", "three"))
    await run(send("keys-a", "three"))
    expect((await run(stored("keys-a"))).length).toBe(4)
  })

  it("a batch that conflicts (another writer moved the history) is numbered again from the new head and stored", async () => {
    const first = await run(send("conflicts", "mine"))
    // What a stale activation elsewhere would do: write the next offset behind this room's back.
    await run(Effect.flatMap(History.History, (history) =>
      history.append("conflicts", first.position.epoch, first.position.offset + 1, Date.now(), { from: "ghost", event: { kind: "message", id: `${first.position.epoch}-2`, body: "x" } })))
    const accepted = await run(Effect.all(Array.from({ length: 5 }, (_, i) => send("conflicts", i)), { concurrency: "unbounded" }))
    expect(accepted.map((a) => a.position.offset)).toEqual([3, 4, 5, 6, 7])
    expect((await run(stored("conflicts"))).map((entry) => entry.offset)).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

  it("a later activation answers a key its predecessor stored", async () => {
    const key = newRequestKey()
    const first = await run(send("keys-b", "one", key))
    const info = () => run(Effect.flatMap(Room.client, (rooms) => rooms("keys-b").Info()))
    const before = await info()
    // Passivated after its idle time (the cluster's reaper looks now and then): the next call
    // builds a new activation from the history.
    // Each look is a call that keeps it active, so look rarely: it is idle most of the time.
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      if ((await info()).activation !== before.activation) break
    }
    const again = await run(send("keys-b", "one", key))
    expect((await info()).activation).not.toBe(before.activation)
    expect(again).toEqual(first)
    expect((await run(stored("keys-b"))).length).toBe(1)
  })

  it("a repeated Delete answers as the first instead of not_found", async () => {
    const sent = await run(send("keys-c", "one"))
    const key = newRequestKey()
    const remove = Effect.flatMap(Room.client, (rooms) => rooms("keys-c").Delete({ from: "alice", id: sent.id!, moderator: false, key }))
    const first = await run(remove)
    expect(await run(remove)).toEqual(first)
    expect((await run(stored("keys-c"))).length).toBe(2)
  })
})
