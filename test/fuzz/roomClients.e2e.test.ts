/**
 * The room model of roomModel.ts again, this time through real WebSocket clients of one real
 * node: four clients (alice on two devices, bob, and carol who moderates) run a random sequence of
 * room.send (with and without replyTo), room.edit, room.delete, room.pin, room.unpin and
 * room.typing, and now and then drop their connection and come back with a new ticket,
 * subscribing from the last position they saw. Each answer is the model's; at the end every
 * client's own view (the history it read when it first subscribed, then every positioned
 * message frame it received, recovered ones included) is exactly the model's view for it, and
 * the live clients show the room as it is. Typing frames never carry a position.
 */
import { type ServerFrame } from "@weft/protocol"
import { Either, FastCheck as fc, Schema } from "effect"
import { RoomEvent } from "@weft/chat"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { type Client, closeAll, connectAs, request, rpc } from "../support/wsClient.ts"
import { clientSequences, timeoutFor } from "./budget.ts"
import {
  expectDelete,
  expectEdit,
  expectPin,
  expectSend,
  headOf,
  type LogEntry,
  makeModel,
  pickMessage,
  presenceOf,
  type RoomModel,
  screenOf,
  store
} from "./roomModel.ts"

let node: RunningNode
const open: Array<Client> = []

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "fuzz-rooms", "--rate-per-second", "100000", "--rate-burst", "100000"])
})

afterAll(async () => {
  await closeAll(open)
  await stopNodes([node])
})

const decodeEvent = Schema.decodeUnknownEither(RoomEvent.StoredRoomEvent)

/** A real client: its connection (when connected) and every room event it has, in order. */
interface Device {
  client: Client | undefined
  readonly view: Array<LogEntry>
  /** Typing frames it got: they must never have a position. */
  typing: number
}

type Op =
  | { readonly kind: "send"; readonly actor: number; readonly body: string; readonly reply: number | undefined }
  | { readonly kind: "edit"; readonly actor: number; readonly index: number; readonly body: string }
  | { readonly kind: "delete" | "pin" | "unpin"; readonly actor: number; readonly index: number }
  | { readonly kind: "typing" | "drop"; readonly actor: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("send" as const), actor: fc.nat({ max: 3 }), body: fc.string({ maxLength: 5 }), reply: fc.option(fc.nat({ max: 30 }), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("edit" as const), actor: fc.nat({ max: 3 }), index: fc.nat({ max: 30 }), body: fc.string({ maxLength: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("delete" as const, "pin" as const, "unpin" as const), actor: fc.nat({ max: 3 }), index: fc.nat({ max: 30 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("typing" as const, "drop" as const), actor: fc.nat({ max: 3 }) }) }
)

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

/** Moves the room's message frames from the client's inbox into the device's view. */
const collect = (device: Device, channel: string): void => {
  const client = device.client
  if (client === undefined) return
  for (const frame of client.frames.filter((f) => f.type === "message" && f.channel === channel)) {
    client.frames.splice(client.frames.indexOf(frame), 1)
    if (frame.type !== "message") continue
    if (isRecord(frame.data) && frame.data["kind"] === "typing") {
      expect(frame.position, "a typing frame has no position").toBeUndefined()
      device.typing++
      continue
    }
    const event = decodeEvent(frame.data)
    if (Either.isLeft(event) || frame.position === undefined || frame.from === undefined) throw new Error(`not a stored room event: ${JSON.stringify(frame)}`)
    device.view.push({ offset: frame.position.offset, from: frame.from, event: event.right })
  }
}

const resultOf = (frame: ServerFrame): Record<string, unknown> => {
  if (frame.type !== "reply" || !isRecord(frame.result)) throw new Error(`expected a reply, got ${JSON.stringify(frame)}`)
  return frame.result
}

const outcome = (frame: ServerFrame): string => (frame.type === "reply" ? "ok" : frame.type === "error" ? frame.name : frame.type)

const runSequence = async (ops: ReadonlyArray<Op>, round: number): Promise<void> => {
  const room = `clients-${process.pid}-${round}`
  const channel = `room:${room}`
  const model: RoomModel = makeModel()
  const devices: Array<Device> = model.clients.map(() => ({ client: undefined, view: [], typing: 0 }))
  let epoch = ""

  const join = async (at: number): Promise<void> => {
    const who = model.clients[at]!
    const device = devices[at]!
    const { client, welcome } = await connectAs(node.url(), {
      sub: who.user,
      weft: { device: who.name, subscribe: ["room:*"], publish: ["room:*"], ...(who.user === "carol" ? { moderate: ["room:*"] } : {}) }
    })
    open.push(client)
    device.client = client
    const since = who.joined ? { since: { epoch, offset: who.seen } } : {}
    const ack = await request(client, (id) => ({ type: "subscribe", id, channel, ...since }))
    if (ack.type !== "ack" || ack.position === undefined) throw new Error(`subscribe: ${JSON.stringify(ack)}`)
    if (who.joined) {
      expect(ack.recovery, `${who.name} resumes from ${who.seen}`).toBe("ok")
      who.view.push(...model.log.slice(who.seen))
    } else {
      epoch = ack.position.epoch
      const history = resultOf(await rpc(client, "room.history", { room, limit: 500 }))
      const messages = Array.isArray(history["messages"]) ? history["messages"] : []
      for (const message of messages) {
        const event = decodeEvent(isRecord(message) ? message["data"] : undefined)
        const position = isRecord(message) && isRecord(message["position"]) ? message["position"]["offset"] : undefined
        const from = isRecord(message) ? message["from"] : undefined
        if (Either.isLeft(event) || typeof position !== "number" || typeof from !== "string") throw new Error(`bad history entry ${JSON.stringify(message)}`)
        device.view.push({ offset: position, from, event: event.right })
      }
      who.view.push(...model.log)
      who.joined = true
    }
    expect(ack.position).toEqual({ epoch, offset: headOf(model) })
    who.seen = model.log.at(-1)?.offset ?? 0
    who.conn = welcome.conn
  }

  const drop = async (at: number): Promise<void> => {
    const device = devices[at]!
    const client = device.client!
    // What it received before the drop is its own; then the socket goes.
    await client.ping(1)
    collect(device, channel)
    client.socket.terminate()
    await client.closed
    device.client = undefined
    model.clients[at]!.conn = undefined
  }

  for (const next of ops) {
    const at = next.actor
    const who = model.clients[at]!
    // An actor without a connection comes back instead (a reconnect from its last position).
    if (devices[at]!.client === undefined) {
      await join(at)
      continue
    }
    const client = devices[at]!.client!
    const mod = who.user === "carol"
    switch (next.kind) {
      case "send": {
        const replyTo = next.reply === undefined ? undefined : pickMessage(model, next.reply)
        const answer = await rpc(client, "room.send", { room, body: next.body, ...(replyTo === undefined ? {} : { replyTo }) })
        expect(outcome(answer), JSON.stringify(next)).toBe(expectSend(model, replyTo))
        if (answer.type === "reply") {
          const id = `${epoch}-${headOf(model) + 1}`
          expect(resultOf(answer)["id"]).toBe(id)
          store(model, who.user, { kind: "message", id, body: next.body, device: who.name, ...(replyTo === undefined ? {} : { replyTo }) })
        }
        break
      }
      case "edit":
      case "delete":
      case "pin":
      case "unpin": {
        const id = pickMessage(model, next.index)
        if (id === undefined) break
        const params = next.kind === "edit" ? { room, id, body: next.body } : { room, id }
        const answer = await rpc(client, `room.${next.kind}`, params)
        const expected = next.kind === "edit"
          ? expectEdit(model, who.user, id)
          : next.kind === "delete"
          ? expectDelete(model, who.user, id, mod)
          : expectPin(model, id)
        expect(outcome(answer), JSON.stringify(next)).toBe(expected)
        if (answer.type === "reply") {
          store(model, who.user, next.kind === "edit"
            ? { kind: "edit", id, body: next.body }
            : { kind: next.kind, id, by: who.user })
        }
        break
      }
      case "typing":
        expect(outcome(await rpc(client, "room.typing", { room }))).toBe("ok")
        break
      case "drop":
        await drop(at)
        break
    }
  }

  // Every connected client catches up with the head, then views are compared with the model's.
  for (const [at, device] of devices.entries()) {
    if (device.client === undefined) continue
    await device.client.ping(2)
    for (let i = 0; i < 200 && (device.view.at(-1)?.offset ?? 0) < headOf(model); i++) {
      collect(device, channel)
      if ((device.view.at(-1)?.offset ?? 0) < headOf(model)) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    collect(device, channel)
    const who = model.clients[at]!
    expect(device.view, `${who.name}'s view`).toEqual(who.view)
    expect(screenOf(device.view), `what ${who.name} shows`).toEqual(screenOf(model.log))
  }
  for (const [at, device] of devices.entries()) {
    const who = model.clients[at]!
    if (device.client === undefined) expect(device.view, `${who.name}'s view until it left`).toEqual(who.view)
  }
  // Presence: the users with a connection, each with its number of connections.
  const anyone = devices.find((device) => device.client !== undefined)?.client
  if (anyone !== undefined) {
    const expected = presenceOf(model)
    let present: unknown
    for (let i = 0; i < 100; i++) {
      const answer = await rpc(anyone, "room.presence", { room })
      present = answer.type === "reply" && Array.isArray(answer.result)
        ? [...answer.result].sort((a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
        : answer
      if (JSON.stringify(present) === JSON.stringify(expected)) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(present, "presence").toEqual(expected)
  }
  await closeAll(devices.flatMap((device) => (device.client === undefined ? [] : [device.client])))
}

describe(`rooms through real WebSocket clients, ${clientSequences} random sequences`, () => {
  it("every answer is the model's, and every client's view (history, live, recovered) is exactly the model's", async () => {
    const seed = Number(process.env["FUZZ_SEED"] ?? Date.now() % 1_000_000)
    const sequences = fc.sample(fc.array(op, { minLength: 10, maxLength: 50 }), { numRuns: clientSequences, seed })
    for (const [round, ops] of sequences.entries()) {
      try {
        await runSequence(ops, round)
      } catch (error) {
        throw new Error(`seed ${seed} (FUZZ_SEED), sequence ${round}: ${JSON.stringify(ops)}\n${error instanceof Error ? error.message : String(error)}`)
      }
    }
  }, timeoutFor(clientSequences * 50, 100))
})
