/**
 * Floods against one real node, each measured: the node's resident memory grows less than a
 * stated bound over the flood, other clients (a witness pair) are served before, during and after,
 * and the node stays up. Small limits make the floods cheap: 3 connections per user, 20 frames
 * per second (burst 20), frames of at most 4 KiB.
 *
 * The single-connection cases are in test/gateway: limits.test.ts (rate limit, 1008) and
 * badInput.test.ts (one oversized frame, 1009); tickets.test.ts (429 past the per-user limit).
 * These are the same limits under many connections at once.
 *
 * Not a guarantee: the node has no per-address connection limit. A flood of upgrades from one
 * address is refused one by one (401 without a ticket, before any socket exists); limiting
 * addresses is the load balancer's job (docs/reliability.md).
 */
import { encode } from "@msgpack/msgpack"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { makeJwt } from "../support/jwt.ts"
import {
  type Client,
  clientFrameBytes,
  closeAll,
  connectAs,
  connectWithTicket,
  isRefusal,
  requestTicket,
  tcpSocket,
  ticketFor,
  tryConnect,
  wsUrl
} from "../support/wsClient.ts"
import { startWitness, type Witness, withinMemory } from "./witness.ts"

let node: RunningNode
let witness: Witness
const clients: Array<Client> = []

beforeAll(async () => {
  node = await startGatewayNode([
    "--node-id", "sec-floods",
    "--max-connections-per-user", "3",
    "--rate-per-second", "20",
    "--rate-burst", "20",
    "--max-frame-bytes", "4096"
  ])
  witness = await startWitness(node, "floods")
})

afterAll(async () => {
  await closeAll([...clients, ...(witness?.clients ?? [])])
  await stopNodes([node])
})

/** Runs `count` tasks, `width` at a time. */
const inBatches = async <A>(count: number, width: number, task: (i: number) => Promise<A>): Promise<Array<A>> => {
  const results: Array<A> = []
  for (let start = 0; start < count; start += width) {
    results.push(...await Promise.all(Array.from({ length: Math.min(width, count - start) }, (_, i) => task(start + i))))
  }
  return results
}

const upgradeStatus = async (ticket: string | undefined): Promise<number> => {
  const opened = await tryConnect(wsUrl(node.url(), ticket), { protocols: ["weft.v1.msgpack"] })
  if (!isRefusal(opened)) {
    opened.terminate()
    return 101
  }
  return opened.status
}

const open = async (sub: string): Promise<Client> => {
  const { client } = await connectAs(node.url(), { sub, weft: { publish: ["flood:*"], subscribe: ["flood:*"] } })
  clients.push(client)
  return client
}

describe("floods", () => {
  it("from one address: 1,500 upgrades without a valid ticket and 500 ticket requests with a forged JWT are all refused (401)", async () => {
    const forged = await makeJwt({ sub: "mallory" }, "a-forger-secret-that-is-long-enough-too!")
    const flood = async (upgrades: number, ticketRequests: number) => {
      const statuses = await inBatches(upgrades, 50, (i) => upgradeStatus(i % 3 === 0 ? undefined : `${"A".repeat(42)}${i % 10}`))
      expect(new Set(statuses)).toEqual(new Set([401]))
      await witness.stillServed()
      const tickets = await inBatches(ticketRequests, 50, async () => (await requestTicket(node.url(), forged)).status)
      expect(new Set(tickets)).toEqual(new Set([401]))
    }
    await withinMemory(node, witness, 64, () => flood(1500, 500), () => flood(300, 100))
  })

  it("from one user: 200 connections past the per-user limit are refused (429); the user's own 3 and other users are served", async () => {
    await withinMemory(node, witness, 64, async () => {
      const own = await Promise.all([open("greedy"), open("greedy"), open("greedy")])
      const tickets = await inBatches(200, 50, () => ticketFor(node.url(), { sub: "greedy" }))
      const statuses = await inBatches(tickets.length, 50, (i) => upgradeStatus(tickets[i]))
      expect(new Set(statuses)).toEqual(new Set([429]))
      for (const [i, client] of own.entries()) await client.ping(i + 1)
      const other = await open("modest")
      await other.ping(1)
      // Once one of the three closes, the user may connect again.
      own[0]!.close()
      await own[0]!.closed
      const again = await (async () => {
        for (let attempt = 0; attempt < 50; attempt++) {
          const opened = await tryConnect(wsUrl(node.url(), await ticketFor(node.url(), { sub: "greedy" })), { protocols: ["weft.v1.msgpack"] })
          if (!isRefusal(opened)) return opened
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        return undefined
      })()
      expect(again).toBeDefined()
      again?.terminate()
    })
  })

  it("of messages: 20 connections each writing 500 publishes at once are cut off (rate_limited, then 1008); nothing reaches subscribers past the limit", async () => {
    const listener = await open("flood-listener")
    listener.send({ type: "subscribe", id: 1, channel: "flood:msgs" })
    expect(await listener.answer(1)).toEqual({ type: "ack", id: 1 })
    await withinMemory(node, witness, 64, async () => {
      const flooders = await Promise.all(Array.from({ length: 20 }, (_, i) => open(`flooder-${i}`)))
      const payload = "x".repeat(1000)
      for (const flooder of flooders) {
        const frames = Array.from({ length: 500 }, (_, id) => clientFrameBytes(encode({ type: "publish", id, channel: "flood:msgs", data: payload })))
        tcpSocket(flooder.socket).write(Buffer.concat(frames))
      }
      const closes = await Promise.all(flooders.map((flooder) => flooder.closed))
      expect(new Set(closes.map((close) => close.code))).toEqual(new Set([1008]))
      // Each flooder got at most its burst through: the listener heard no more than 20 each.
      await listener.ping(2)
      const heard = listener.frames.filter((frame) => frame.type === "message").length
      expect(heard).toBeGreaterThan(0)
      expect(heard).toBeLessThanOrEqual(20 * 20 + 20)
    })
  })

  it("of oversized frames: 20 connections sending 1 MiB frames, and one declaring a 2^40-byte frame, are closed with 1009", async () => {
    await withinMemory(node, witness, 64, async () => {
      const senders = await Promise.all(Array.from({ length: 20 }, (_, i) => open(`big-${i}`)))
      const big = new Uint8Array(1024 * 1024).fill(0x61)
      for (const sender of senders) sender.sendRaw(big)
      const liar = await open("liar")
      // A binary frame header announcing 2^40 bytes (masked), then a few bytes and silence.
      const header = Buffer.alloc(14)
      header[0] = 0x82
      header[1] = 0x80 | 127
      header.writeBigUInt64BE(2n ** 40n, 2)
      tcpSocket(liar.socket).write(Buffer.concat([header, Buffer.from("abcd")]))
      const closes = await Promise.all([...senders, liar].map((client) => client.closed))
      expect(new Set(closes.map((close) => close.code))).toEqual(new Set([1009]))
    })
  })

  it("after all of it, a new user connects and is served", async () => {
    const { client } = await connectWithTicket(node.url(), await ticketFor(node.url(), { sub: "after-floods" }))
    clients.push(client)
    await client.ping(1)
    await witness.stillServed()
  })
})
