/**
 * A gap in a room's offsets (live messages lost on the way, e.g. while a node lost Redis) is
 * filled from the room's history before anything later is handed out: the app sees every
 * message once and in order. Found by the chaos suite (test/chaos/redisRestart.e2e.test.ts).
 */
import { describe, expect, it } from "vitest"
import type { Position } from "../src/index.ts"
import { flush, sentOfType } from "./support/fakes.ts"
import { harness } from "./support/harness.ts"

const at = (epoch: string, offset: number): Position => ({ epoch, offset })

describe("a gap in a room's offsets", () => {
  it("reads the missing messages from history, then hands out what came meanwhile", async () => {
    const h = harness()
    await h.connectNow()
    const got: Array<unknown> = []
    const sub = h.client.subscribe("room:a", (message) => got.push(message.data))
    const socket = h.ws.last()
    const [subscribe] = sentOfType(socket, "subscribe")
    socket.receive({ type: "ack", id: subscribe!.id, position: at("e", 0) })
    await sub.ready
    const frame = (offset: number) => ({ type: "message" as const, channel: "room:a", data: `m${offset}`, from: "bob", position: at("e", offset), at: 1000 + offset })
    socket.receive(frame(1))
    // 2 and 3 were lost: 4 reveals the gap; 5 comes while the client reads history.
    socket.receive(frame(4))
    socket.receive(frame(5))
    expect(got).toEqual(["m1"])
    const [history] = sentOfType(socket, "rpc")
    expect(history).toMatchObject({ method: "room.history", params: { room: "a", after: 1, limit: 2 } })
    socket.receive({ type: "reply", id: history!.id, result: { epoch: "e", first: 1, last: 5, messages: [frame(2), frame(3)] } })
    await flush()
    expect(got).toEqual(["m1", "m2", "m3", "m4", "m5"])
    expect(sub.position).toEqual(at("e", 5))
  })

  it("leaves other channels alone: a jump there is handed out as it comes", async () => {
    const h = harness()
    await h.connectNow()
    const got: Array<unknown> = []
    const sub = h.client.subscribe("feed:a", (message) => got.push(message.data))
    const socket = h.ws.last()
    const [subscribe] = sentOfType(socket, "subscribe")
    socket.receive({ type: "ack", id: subscribe!.id })
    await sub.ready
    socket.receive({ type: "message", channel: "feed:a", data: "x1", position: at("e", 1), at: 1 })
    socket.receive({ type: "message", channel: "feed:a", data: "x4", position: at("e", 4), at: 4 })
    expect(got).toEqual(["x1", "x4"])
    expect(sentOfType(socket, "rpc")).toEqual([])
  })
})
