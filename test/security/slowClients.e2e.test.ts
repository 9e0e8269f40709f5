/**
 * Clients that hold resources by being slow, against real nodes, each with the node's memory
 * measured against a stated bound and a witness pair served throughout:
 *
 * - slowloris: hundreds of upgrade requests whose headers never finish (a byte now and then);
 *   the node serves others meanwhile and closes every one of them by itself;
 * - a subscriber that never reads while 2 x 96 MiB is published to its channel, under the `drop`
 *   policy (the connection stays open, so nothing else bounds what is kept for it): memory stays
 *   bounded, another subscriber gets every message in order, and the slow one is served again
 *   once it reads. (The `disconnect` policy's close with 4002 is in test/gateway/limits.test.ts.)
 */
import { encode } from "@msgpack/msgpack"
import { connect as tcpConnect, type Socket } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { waitUntil } from "../support/wait.ts"
import { type Client, clientFrameBytes, closeAll, connectAs, tcpSocket } from "../support/wsClient.ts"
import { startWitness, type Witness, withinMemory } from "./witness.ts"

let slowloris: RunningNode
let dropping: RunningNode
const witnesses: Array<Witness> = []
const clients: Array<Client> = []

beforeAll(async () => {
  ;[slowloris, dropping] = await Promise.all([
    startGatewayNode(["--node-id", "sec-slowloris"]),
    startGatewayNode([
      "--node-id", "sec-slow-drop",
      "--slow-consumer-policy", "drop",
      "--slow-consumer-bytes", "262144",
      "--rate-per-second", "1000000",
      "--rate-burst", "1000000",
      // The readers send nothing during the flood: no heartbeat close to confuse the picture.
      "--heartbeat-ms", "120000"
    ])
  ])
})

afterAll(async () => {
  await closeAll([...clients, ...witnesses.flatMap((witness) => witness.clients)])
  await stopNodes([slowloris, dropping])
})

const witnessOf = async (node: RunningNode, label: string): Promise<Witness> => {
  const witness = await startWitness(node, label)
  witnesses.push(witness)
  return witness
}

/** An upgrade request that never finishes its headers: one more header line every `everyMs`, at most `lines`. */
const dribble = (node: RunningNode, everyMs: number, lines: number): { readonly socket: Socket; readonly closed: Promise<void> } => {
  const { hostname, port } = new URL(node.url())
  const socket = tcpConnect(Number(port), hostname)
  let sent = 0
  const timer = setInterval(() => {
    if (socket.destroyed || sent++ >= lines) return clearInterval(timer)
    socket.write(`X-Slow-${sent}: a\r\n`)
  }, everyMs)
  socket.on("connect", () => socket.write("GET /v1/ws?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"))
  socket.on("error", () => undefined)
  const closed = new Promise<void>((resolve) => socket.once("close", () => {
    clearInterval(timer)
    resolve()
  }))
  return { socket, closed }
}

describe("slowloris", () => {
  it("300 upgrades whose headers never end: others are served meanwhile, memory bounded, and the node closes every one itself", async () => {
    const witness = await witnessOf(slowloris, "slowloris")
    await withinMemory(slowloris, witness, 48, async () => {
      // A header line every 500 ms for up to 2 minutes: without a header deadline they would stay.
      const held = Array.from({ length: 300 }, () => dribble(slowloris, 500, 240))
      await new Promise((resolve) => setTimeout(resolve, 1500))
      // While they hang on, a new user gets in and the witness is served.
      const { client } = await connectAs(slowloris.url(), { sub: "patient" })
      clients.push(client)
      await client.ping(1)
      await witness.stillServed()
      // The node ends them (Bun's header timeout); the wait is bounded well beyond it.
      const allClosed = Promise.all(held.map((slow) => slow.closed)).then(() => true)
      const verdict = await Promise.race([allClosed, new Promise<false>((resolve) => setTimeout(() => resolve(false), 60_000))])
      for (const slow of held) slow.socket.destroy()
      expect(verdict, "every slow upgrade was closed by the node").toBe(true)
    })
  }, 120_000)
})

describe("a subscriber that never reads (--slow-consumer-policy drop, 256 KiB)", () => {
  it("while 2 x 96 MiB is published to its channel: memory bounded, the other subscriber gets everything in order, the slow one is served again once it reads", async () => {
    const witness = await witnessOf(dropping, "slow-drop")
    const channel = "flood:slow"
    const claims = (sub: string) => ({ sub, weft: { subscribe: [channel], publish: [channel] } })
    const { client: publisher } = await connectAs(dropping.url(), claims("slow-publisher"))
    const { client: reader } = await connectAs(dropping.url(), claims("slow-reader"))
    const { client: sleeper } = await connectAs(dropping.url(), claims("slow-sleeper"))
    clients.push(publisher, reader, sleeper)
    for (const client of [reader, sleeper]) {
      client.send({ type: "subscribe", id: 1, channel })
      expect(await client.answer(1)).toEqual({ type: "ack", id: 1 })
    }
    // The sleeper stops reading its socket: the node's send buffer for it fills and stays full.
    tcpSocket(sleeper.socket).pause()

    const perFlood = 24_000
    const body = "y".repeat(4000)
    let sent = 0
    let received = 0
    let inOrder = true
    // Count the reader's messages as they come instead of keeping 192 MiB of frames in the test.
    const counting = setInterval(() => {
      for (const frame of reader.frames.splice(0)) {
        if (frame.type !== "message") continue
        const data = frame.data
        const seq = typeof data === "object" && data !== null && "seq" in data ? data.seq : undefined
        if (seq !== received) inOrder = false
        received++
      }
    }, 20)
    /** Publishes `count` messages of ~4 KB, 200 per TCP write, each batch acknowledged before the next. */
    const flood = async (count: number): Promise<void> => {
      for (let done = 0; done < count; done += 200) {
        const seqs = Array.from({ length: Math.min(200, count - done) }, () => sent++)
        tcpSocket(publisher.socket).write(Buffer.concat(seqs.map((seq) =>
          clientFrameBytes(encode({ type: "publish", id: seq + 10, channel, data: { seq, body } })))))
        await Promise.all(seqs.map((seq) => publisher.answer(seq + 10, 30_000)))
        publisher.frames.splice(0)
      }
      for (let i = 0; i < 600 && received < sent; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    try {
      // The first flood brings the node to its working size (and fills the sleeper's buffer); the
      // second must not make it grow further: what the sleeper does not read is not kept.
      await withinMemory(dropping, witness, 48, () => flood(perFlood), () => flood(perFlood))
    } finally {
      clearInterval(counting)
    }
    const messages = 2 * perFlood
    expect(received, "the reading subscriber got every message").toBe(messages)
    expect(inOrder, "in the publisher's order").toBe(true)
    // The sleeper lost what did not fit but was never cut off: once it reads, it is served again.
    expect(sleeper.socket.readyState).toBe(sleeper.socket.OPEN)
    tcpSocket(sleeper.socket).resume()
    // Under `drop` a pong can be lost too while the backlog drains: ping until one comes back.
    let pingId = 1_000_000
    await waitUntil("the sleeper gets a pong", async () => {
      sleeper.frames.splice(0)
      await sleeper.ping(++pingId, 1000)
      return true
    }, 30_000)
  }, 180_000)
})
