/**
 * Model-based test of the room entity (fast-check commands): random sequences of send, reply,
 * edit, delete, pin, unpin, typing, join, leave and reconnect by four clients of three users,
 * against the simple model in roomModel.ts. After every command the room's answer is the
 * model's (accepted at the next offset, or refused as forbidden / not_found), the events heard
 * on the room's cluster topic are exactly the model's stored events in order (plus the typing
 * events, which are never stored), and presence and its join/leave events match. After every
 * sequence the history and pins match, and every client's own view (the history it read at its
 * first join, then live events, then what it recovered on each rejoin from its last position) is
 * a gap-free prefix of the model's log that shows the same messages, bodies, deletions and pins.
 *
 * The room runs in process on the embedded node (memory history and members), as in
 * services/chat/test/roomWrites.test.ts, and is called through `Room.client`.
 */
import type { Sharding } from "@effect/cluster"
import { ActorSystem } from "@weft/actor"
import { Member, Members, Room, RoomEvent, layer as roomLayer, shardGroup } from "@weft/chat"
import { ActorMail, ClusterNode, ClusterTopics, MemoryHistory } from "@weft/cluster"
import { Fanout } from "@weft/gateway"
import { Codec } from "@weft/protocol"
import { Effect, Either, Exit, FastCheck as fc, Layer, Schema, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { modelSequences, timeoutFor } from "./budget.ts"
import {
  type ClientModel,
  connectedOf,
  expectDelete,
  expectEdit,
  expectPin,
  expectSend,
  headOf,
  type LogEntry,
  makeModel,
  type Outcome,
  pickMessage,
  presenceOf,
  type RoomModel,
  screenOf,
  store,
  users
} from "./roomModel.ts"

const nodeId = "room-model"
const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const context = Effect.runPromise(
  Layer.buildWithScope(
    roomLayer({ maxIdleTime: "1 minute" }).pipe(
      Layer.provideMerge(MemoryHistory.layer({ maxLength: 10_000, maxAgeMs: 3_600_000 })),
      Layer.provideMerge(Members.layerMemory),
      Layer.provideMerge(
        ClusterNode.embedded({
          nodeId,
          cluster: nodeId,
          redis: undefined,
          runnerHost: "127.0.0.1",
          runnerPort: 0,
          shardGroups: { available: [shardGroup], assigned: [shardGroup] }
        })
      ),
      Layer.provideMerge(ActorSystem.layer({ name: nodeId }))
    ),
    scope
  )
)

type Needs = Sharding.Sharding | ClusterTopics.ClusterTopics | ActorMail.ActorMail
const run = async <A, E>(effect: Effect.Effect<A, E, Needs>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(await context)))

/** What the test observes of the real room. */
interface Real {
  readonly room: string
  readonly epoch: string
  readonly incarnation: string
  /** Stored events heard on the room's topic, in order. */
  readonly wire: Array<LogEntry>
  typing: number
  readonly presence: Array<{ readonly kind: "join" | "leave"; readonly user: string }>
  readonly topics: Scope.CloseableScope
  connections: number
}

const rooms = (room: string) => Effect.map(Room.client, (client) => client(room))

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const heard = (real: Real) => (payload: Uint8Array): void => {
  const decoded = Codec.decodeServerFrame(payload, "msgpack")
  if (Either.isLeft(decoded) || decoded.right.type !== "message") throw new Error("the room's topic carried something that is not a message frame")
  const { data, from, position } = decoded.right
  if (!isRecord(data)) throw new Error(`a room event that is not a map: ${JSON.stringify(data)}`)
  if (data["kind"] === "typing") real.typing++
  else if (data["kind"] === "join" || data["kind"] === "leave") real.presence.push({ kind: data["kind"], user: String(data["user"]) })
  else if (position === undefined || from === undefined) throw new Error(`a stored event without position or author: ${JSON.stringify(data)}`)
  else {
    const event = decodeEvent(data)
    if (Either.isLeft(event)) throw new Error(`not a stored room event: ${JSON.stringify(data)}`)
    real.wire.push({ offset: position.offset, from, event: event.right })
  }
}

const decodeEvent = Schema.decodeUnknownEither(RoomEvent.StoredRoomEvent)

let roomCount = 0

const openRoom = async (): Promise<{ model: RoomModel; real: Real }> => {
  const room = `model-${process.pid}-${roomCount++}`
  const info = await run(Effect.flatMap(rooms(room), (client) => client.Info()))
  const incarnation = await run(Effect.map(ActorMail.ActorMail, (mail) => mail.incarnation))
  const topics = Effect.runSync(Scope.make())
  const real: Real = { room, epoch: info.position.epoch, incarnation, wire: [], typing: 0, presence: [], topics, connections: 0 }
  await run(Effect.gen(function*() {
    const cluster = yield* ClusterTopics.ClusterTopics
    yield* cluster.subscribe(Fanout.clusterTopic(`room:${room}`), heard(real))
    yield* cluster.subscribe(Fanout.clusterTopic(`presence:room:${room}`), heard(real))
  }).pipe(Scope.extend(topics)))
  return { model: makeModel(), real }
}

/** Waits (bounded) until the topics have delivered what the model expects, then compares exactly. */
const settle = async (model: RoomModel, real: Real): Promise<void> => {
  for (let i = 0; i < 500; i++) {
    if (real.wire.length >= model.log.length && real.typing >= model.typing && real.presence.length >= model.presence.length) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  expect(real.wire, "stored events on the topic").toEqual(model.log)
  expect(real.typing, "typing events on the topic").toBe(model.typing)
  expect(real.presence, "presence events").toEqual(model.presence)
  const presence = await run(Effect.flatMap(rooms(real.room), (client) => client.Presence()))
  expect([...presence].sort((a, b) => a.user.localeCompare(b.user)), "presence").toEqual(presenceOf(model))
}

/** The room's answer as the model's outcome: "ok", a refusal's reason, or (never expected) another failure's tag. */
const outcomeOf = <A, E extends { readonly _tag: string }>(result: Either.Either<A, E>): Outcome | string =>
  Either.isRight(result) ? "ok" : result.left._tag === "RoomRefused" && "reason" in result.left ? String(result.left.reason) : result.left._tag

type Accepted = { readonly id?: string | undefined; readonly position: { readonly epoch: string; readonly offset: number } }

const checkAccepted = (model: RoomModel, real: Real, accepted: Accepted): void => {
  expect(accepted.position).toEqual({ epoch: real.epoch, offset: headOf(model) + 1 })
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

type Command = fc.AsyncCommand<RoomModel, Real>

class Send implements Command {
  constructor(readonly user: string, readonly body: unknown, readonly replyIndex: number | undefined) {}
  check = () => true
  async run(model: RoomModel, real: Real) {
    const replyTo = this.replyIndex === undefined ? undefined : pickMessage(model, this.replyIndex)
    const result = await run(Effect.either(Effect.flatMap(rooms(real.room), (client) =>
      client.Send({ from: this.user, body: this.body, moderator: false, ...(replyTo === undefined ? {} : { replyTo }) }))))
    expect(outcomeOf(result)).toBe(expectSend(model, replyTo))
    if (Either.isRight(result)) {
      checkAccepted(model, real, result.right)
      const id = `${real.epoch}-${headOf(model) + 1}`
      expect(result.right.id).toBe(id)
      store(model, this.user, { kind: "message", id, body: this.body, ...(replyTo === undefined ? {} : { replyTo }) })
    }
    await settle(model, real)
  }
  toString = () => `Send(${this.user}, ${JSON.stringify(this.body)}${this.replyIndex === undefined ? "" : `, reply #${this.replyIndex}`})`
}

class Edit implements Command {
  constructor(readonly user: string, readonly index: number, readonly body: unknown) {}
  check = (model: Readonly<RoomModel>) => model.messages.size > 0
  async run(model: RoomModel, real: Real) {
    const id = pickMessage(model, this.index)!
    const result = await run(Effect.either(Effect.flatMap(rooms(real.room), (client) => client.Edit({ from: this.user, id, body: this.body }))))
    expect(outcomeOf(result)).toBe(expectEdit(model, this.user, id))
    if (Either.isRight(result)) {
      checkAccepted(model, real, result.right)
      store(model, this.user, { kind: "edit", id, body: this.body })
    }
    await settle(model, real)
  }
  toString = () => `Edit(${this.user}, #${this.index}, ${JSON.stringify(this.body)})`
}

class Delete implements Command {
  constructor(readonly user: string, readonly index: number, readonly moderator: boolean) {}
  check = (model: Readonly<RoomModel>) => model.messages.size > 0
  async run(model: RoomModel, real: Real) {
    const id = pickMessage(model, this.index)!
    const result = await run(Effect.either(Effect.flatMap(rooms(real.room), (client) =>
      client.Delete({ from: this.user, id, moderator: this.moderator }))))
    expect(outcomeOf(result)).toBe(expectDelete(model, this.user, id, this.moderator))
    if (Either.isRight(result)) {
      checkAccepted(model, real, result.right)
      store(model, this.user, { kind: "delete", id, by: this.user })
    }
    await settle(model, real)
  }
  toString = () => `Delete(${this.user}, #${this.index}${this.moderator ? ", moderator" : ""})`
}

class Pin implements Command {
  constructor(readonly user: string, readonly index: number, readonly pinned: boolean) {}
  check = (model: Readonly<RoomModel>) => model.messages.size > 0
  async run(model: RoomModel, real: Real) {
    const id = pickMessage(model, this.index)!
    const result = await run(Effect.either(Effect.flatMap(rooms(real.room), (client) => client.Pin({ from: this.user, id, pinned: this.pinned }))))
    expect(outcomeOf(result)).toBe(expectPin(model, id))
    if (Either.isRight(result)) {
      checkAccepted(model, real, result.right)
      store(model, this.user, { kind: this.pinned ? "pin" : "unpin", id, by: this.user })
    }
    await settle(model, real)
  }
  toString = () => `${this.pinned ? "Pin" : "Unpin"}(${this.user}, #${this.index})`
}

class Typing implements Command {
  constructor(readonly user: string) {}
  check = () => true
  async run(model: RoomModel, real: Real) {
    await run(Effect.flatMap(rooms(real.room), (client) => client.Typing({ from: this.user })))
    model.typing++
    await settle(model, real)
  }
  toString = () => `Typing(${this.user})`
}

/** Connects a client: the first time it reads the history; after that it recovers from its last position. */
const connect = async (model: RoomModel, real: Real, client: ClientModel): Promise<void> => {
  const conn = `conn/${nodeId}/${real.incarnation}-${++real.connections}`
  const member = new Member({ conn, user: client.user, node: nodeId })
  const firstDevice = connectedOf(model, client.user) === 0
  const since = client.joined ? { since: { epoch: real.epoch, offset: client.seen } } : {}
  const joined = await run(Effect.flatMap(rooms(real.room), (room) => room.Join({ member, ...since })))
  expect(joined.position).toEqual({ epoch: real.epoch, offset: headOf(model) })
  if (client.joined) {
    // Recovery: exactly the events after its last position, in order.
    expect(joined.recovery).toBe("ok")
    const missed = joined.missed.map((entry) => ({ offset: entry.position.offset, from: entry.from, event: entry.event }))
    expect(missed, `${client.name} recovers from ${client.seen}`).toEqual(model.log.slice(client.seen))
    client.view.push(...missed)
  } else {
    const history = await run(Effect.flatMap(rooms(real.room), (room) => room.History({ after: 0, limit: 500 })))
    client.view.push(...history.entries.map((entry) => ({ offset: entry.position.offset, from: entry.from, event: entry.event })))
    client.joined = true
  }
  client.seen = client.view.at(-1)?.offset ?? 0
  client.conn = conn
  if (firstDevice) model.presence.push({ kind: "join", user: client.user })
}

const disconnect = async (model: RoomModel, real: Real, client: ClientModel): Promise<void> => {
  const conn = client.conn!
  await run(Effect.flatMap(rooms(real.room), (room) => room.Leave({ conn })))
  client.conn = undefined
  if (connectedOf(model, client.user) === 0) model.presence.push({ kind: "leave", user: client.user })
}

class Join implements Command {
  constructor(readonly client: number) {}
  check = (model: Readonly<RoomModel>) => model.clients[this.client]!.conn === undefined
  async run(model: RoomModel, real: Real) {
    await connect(model, real, model.clients[this.client]!)
    await settle(model, real)
  }
  toString = () => `Join(client ${this.client})`
}

class Leave implements Command {
  constructor(readonly client: number) {}
  check = (model: Readonly<RoomModel>) => model.clients[this.client]!.conn !== undefined
  async run(model: RoomModel, real: Real) {
    await disconnect(model, real, model.clients[this.client]!)
    await settle(model, real)
  }
  toString = () => `Leave(client ${this.client})`
}

/**
 * A dropped connection, a message sent by someone while it is away, and a new connection that
 * resumes from the last position it saw: it must recover exactly what it missed.
 */
class Reconnect implements Command {
  constructor(readonly client: number, readonly sender: string, readonly body: unknown) {}
  check = (model: Readonly<RoomModel>) => model.clients[this.client]!.conn !== undefined
  async run(model: RoomModel, real: Real) {
    const client = model.clients[this.client]!
    await disconnect(model, real, client)
    await new Send(this.sender, this.body, undefined).run(model, real)
    await connect(model, real, client)
    await settle(model, real)
  }
  toString = () => `Reconnect(client ${this.client}, missing a Send(${this.sender}, ${JSON.stringify(this.body)}))`
}

const user = fc.constantFrom(...users)
const body = fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: 0, max: 99 }), fc.record({ text: fc.string({ maxLength: 4 }) }))
const index = fc.nat({ max: 50 })
const client = fc.nat({ max: 3 })

const commands = fc.commands(
  [
    fc.tuple(user, body, fc.option(index, { nil: undefined })).map(([u, b, r]) => new Send(u, b, r)),
    fc.tuple(user, index, body).map(([u, i, b]) => new Edit(u, i, b)),
    fc.tuple(user, index, fc.boolean()).map(([u, i, m]) => new Delete(u, i, m)),
    fc.tuple(user, index, fc.boolean()).map(([u, i, p]) => new Pin(u, i, p)),
    user.map((u) => new Typing(u)),
    client.map((c) => new Join(c)),
    client.map((c) => new Leave(c)),
    fc.tuple(client, user, body).map(([c, u, b]) => new Reconnect(c, u, b))
  ],
  { maxCommands: 40, size: "+1" }
)

/** After a sequence: history, pins and every client's view against the model; then everyone leaves. */
const finalCheck = async (model: RoomModel, real: Real): Promise<void> => {
  const history = await run(Effect.flatMap(rooms(real.room), (room) => room.History({ after: 0, limit: 500 })))
  expect(history.entries.map((entry) => ({ offset: entry.position.offset, from: entry.from, event: entry.event })), "history").toEqual(model.log)
  const pins = await run(Effect.flatMap(rooms(real.room), (room) => room.Pins()))
  expect(pins.map((pin) => [pin.id, pin.by]).sort(), "pins").toEqual([...model.pins].sort())
  const truth = screenOf(model.log)
  for (const client of model.clients) {
    expect(client.view, `${client.name}'s view is a gap-free prefix of the log`).toEqual(model.log.slice(0, client.view.length))
    if (client.conn !== undefined) {
      expect(client.view.length, `${client.name} is connected and up to date`).toBe(model.log.length)
      expect(screenOf(client.view), `what ${client.name} shows`).toEqual(truth)
      await disconnect(model, real, client)
    }
  }
  await settle(model, real)
}

describe(`the room entity against a model, ${modelSequences} command sequences`, () => {
  it("answers, topic events, presence, history, pins and every client's view match the model", async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (sequence) => {
        const opened = await openRoom()
        try {
          await fc.asyncModelRun(() => Promise.resolve(opened), sequence)
          await finalCheck(opened.model, opened.real)
        } finally {
          await Effect.runPromise(Scope.close(opened.real.topics, Exit.void))
        }
      }),
      { numRuns: modelSequences }
    )
  }, timeoutFor(modelSequences * 40, 50))
})
