/**
 * The per-connection limits, on real nodes with small values: the rate limit (token bucket,
 * then 1008 for sustained abuse), the heartbeat (4001 for a silent client) and the slow
 * consumer (4002 under `disconnect`, dropped frames under `drop`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { isServing, startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import type { Claims } from "../support/jwt.ts"
import { waitUntil } from "../support/wait.ts"
import { type Client, closeAll, connectAs, type FrameOf, tcpSocket } from "../support/wsClient.ts"

let limited: RunningNode
let slowDisconnect: RunningNode
let slowDrop: RunningNode
const clients: Array<Client> = []

const slowFlags = ["--max-frame-bytes", "1100000", "--slow-consumer-bytes", "65536"]

beforeAll(async () => {
  ;[limited, slowDisconnect, slowDrop] = await Promise.all([
    startGatewayNode(["--node-id", "gw-limited", "--rate-per-second", "5", "--rate-burst", "5", "--heartbeat-ms", "1000"]),
    startGatewayNode(["--node-id", "gw-slow-disconnect", ...slowFlags, "--slow-consumer-policy", "disconnect"]),
    startGatewayNode(["--node-id", "gw-slow-drop", ...slowFlags, "--slow-consumer-policy", "drop"])
  ])
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([limited, slowDisconnect, slowDrop])
})

const open = async (node: RunningNode, claims: Claims): Promise<{ readonly client: Client; readonly welcome: FrameOf<"welcome"> }> => {
  const opened = await connectAs(node.url(), claims)
  clients.push(opened.client)
  return opened
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const isRateLimited = (frame: { readonly type: string; readonly code?: number }) => frame.type === "error" && frame.code === 3000

describe("rate limit (--rate-per-second 5 --rate-burst 5)", () => {
  it("a burst of 20 requests: some are served, the rest refused with rate_limited and their ids, each answered once", async () => {
    const { client, welcome } = await open(limited, { sub: "bursty" })
    expect(welcome.limits.ratePerSecond).toBe(5)
    const ids = Array.from({ length: 20 }, (_, i) => i + 1)
    for (const id of ids) client.send({ type: "rpc", id, method: "conn.info" })
    const answers = await Promise.all(ids.map((id) => client.answer(id)))
    const refused = answers.filter(isRateLimited)
    const served = answers.filter((answer) => answer.type === "reply")
    expect(refused.length).toBeGreaterThan(0)
    expect(served.length).toBeGreaterThan(0)
    expect(refused.length + served.length).toBe(20)
    for (const answer of refused) expect(answer).toMatchObject({ type: "error", code: 3000, name: "rate_limited", id: expect.any(Number) })
    // The bucket refills: after a second the connection is served again, and nothing else arrived.
    await sleep(1200)
    await client.ping(100)
    expect(client.frames).toEqual([])
  })

  it("a rate-limited ping with an id gets rate_limited with that id", async () => {
    const { client } = await open(limited, { sub: "pinger" })
    const ids = Array.from({ length: 12 }, (_, i) => i + 1)
    for (const id of ids) client.send({ type: "ping", id })
    await sleep(1200)
    // Answers come in order: once this pong is here, every earlier ping has had its answer.
    await client.ping(99)
    const answers = client.frames.splice(0)
    const pongs = answers.filter((frame) => frame.type === "pong")
    const refused = answers.filter(isRateLimited)
    expect(pongs.length + refused.length).toBe(12)
    expect(refused.length).toBeGreaterThan(0)
    for (const error of refused) expect(error).toMatchObject({ code: 3000, name: "rate_limited", id: expect.any(Number) })
  })

  it("unreadable frames count against the rate limit too", async () => {
    const { client } = await open(limited, { sub: "garbler" })
    for (let i = 0; i < 20; i++) client.sendRaw(new Uint8Array([0xc1]))
    const answers = await Promise.all(Array.from({ length: 20 }, () => client.nextOf("error")))
    expect(answers.filter(isRateLimited).length).toBeGreaterThan(0)
    await sleep(1200)
    await client.ping(1)
  })

  it("a sustained flood (more than 50 refusals within 10 s) closes the connection with 1008", async () => {
    const { client } = await open(limited, { sub: "flooder" })
    const { client: bystander } = await open(limited, { sub: "bystander" })
    for (let id = 1; id <= 80; id++) client.send({ type: "rpc", id, method: "conn.info" })
    const closed = await Promise.race([client.closed, sleep(10_000).then(() => undefined)])
    expect(closed?.code).toBe(1008)
    expect(client.frames.filter(isRateLimited).length).toBeGreaterThanOrEqual(50)
    // Another connection of the node is still served.
    await bystander.ping(1)
    expect(await isServing(limited)).toBe(true)
  })
})

describe("heartbeat (--heartbeat-ms 1000)", () => {
  it("closes a silent client with 4001 and keeps one that pings every 300 ms", async () => {
    const { client: silent, welcome } = await open(limited, { sub: "silent" })
    const { client: chatty } = await open(limited, { sub: "chatty" })
    expect(welcome.heartbeat).toBe(1000)
    const openedAt = Date.now()
    let silentClosedAt: number | undefined
    void silent.closed.then(() => (silentClosedAt = Date.now()))

    let pings = 0
    while (Date.now() - openedAt < 3500) {
      await chatty.ping(++pings, 2000)
      await sleep(300)
    }
    expect(chatty.socket.readyState).toBe(chatty.socket.OPEN)

    const closed = await Promise.race([silent.closed, sleep(10_000).then(() => undefined)])
    expect(closed?.code).toBe(4001)
    // Not before two heartbeats of silence (a wide margin for the time the welcome took to arrive).
    expect((silentClosedAt ?? 0) - openedAt).toBeGreaterThanOrEqual(1500)

    // Once the chatty client falls silent, it is closed too.
    const chattyClosed = await Promise.race([chatty.closed, sleep(10_000).then(() => undefined)])
    expect(chattyClosed?.code).toBe(4001)
  })
})

describe("slow consumer (--slow-consumer-bytes 65536)", () => {
  const messageCount = 100
  const payload = new Uint8Array(512 * 1024)

  /** A subscriber that stops reading its socket while a publisher sends it 50 MiB. */
  const floodPausedReader = async (node: RunningNode) => {
    const { client: slow } = await open(node, { sub: "slow", weft: { subscribe: ["topic:firehose"] } })
    const { client: publisher } = await open(node, { sub: "firehose", weft: { publish: ["topic:firehose"] } })
    slow.send({ type: "subscribe", id: 1, channel: "topic:firehose" })
    expect(await slow.answer(1)).toEqual({ type: "ack", id: 1 })
    const tcp = tcpSocket(slow.socket)
    tcp.pause()
    for (let i = 0; i < messageCount; i++) {
      publisher.send({ type: "publish", id: i, channel: "topic:firehose", data: { i, payload } })
      expect(await publisher.answer(i)).toEqual({ type: "ack", id: i })
    }
    // Long enough for the node's sweeper (every second) to look at the stalled socket.
    await sleep(1500)
    expect(await isServing(node)).toBe(true)
    tcp.resume()
    return { slow, publisher }
  }

  const receivedIndexes = (client: Client): Array<number> =>
    client.frames.flatMap((frame) => {
      if (frame.type !== "message" || typeof frame.data !== "object" || frame.data === null || !("i" in frame.data)) return []
      return typeof frame.data.i === "number" ? [frame.data.i] : []
    })

  it("policy disconnect: a client that stops reading is closed with 4002, and what it is sent is not queued", async () => {
    const { slow, publisher } = await floodPausedReader(slowDisconnect)
    const closed = await Promise.race([slow.closed, sleep(10_000).then(() => undefined)])
    expect(closed?.code).toBe(4002)
    // Only what fit in the buffers reached it: the node did not hold 50 MiB for it.
    const received = receivedIndexes(slow)
    expect(received.length).toBeLessThan(messageCount / 4)
    expect(received).toEqual([...received].sort((a, b) => a - b))
    await publisher.ping(1)
    expect(await isServing(slowDisconnect)).toBe(true)
  })

  it("policy drop: the slow client loses frames but stays open and is served again once it reads", async () => {
    const { slow, publisher } = await floodPausedReader(slowDrop)
    // Under `drop` any frame can be lost while the backlog drains, a pong too: ping until one
    // comes back. Frames arrive in order, so by then the backlog has been read.
    let pingId = 0
    await waitUntil("the slow client gets a pong", async () => {
      await slow.ping(++pingId, 1000)
      return true
    }, 10_000)
    const received = receivedIndexes(slow)
    expect(received.length).toBeLessThan(messageCount / 4)
    publisher.send({ type: "publish", id: 1000, channel: "topic:firehose", data: { i: -1 } })
    expect(await publisher.answer(1000)).toEqual({ type: "ack", id: 1000 })
    expect(await slow.nextOf("message", (frame) => typeof frame.data === "object" && frame.data !== null && "i" in frame.data && frame.data.i === -1))
      .toMatchObject({ channel: "topic:firehose" })
    expect(slow.socket.readyState).toBe(slow.socket.OPEN)
    expect(await isServing(slowDrop)).toBe(true)
  })
})
