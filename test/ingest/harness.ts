/**
 * The ingest end-to-end suite, the same for every bus: real Bun nodes in a
 * two-node cluster over the real Redis, consuming the real bus; a publisher in
 * a separate plain Node process (`publisher.mjs`, the bus's own client
 * library); devices connected over WebSocket to both nodes. Each bus file
 * (`nats.e2e.test.ts`, ...) gives its `BusFixture` and runs `ingestSuite`.
 */
import type { ServerFrame } from "@weft/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningNode, startNode } from "../support/bunNode.ts"
import { type GatewayCluster, startGatewayCluster, stopNodes } from "../support/gatewayNodes.ts"
import { freePort, redisUrl } from "../support/ports.ts"
import { waitUntil } from "../support/wait.ts"
import { type Client, closeAll, connectAs, request, requestId } from "../support/wsClient.ts"
import WebSocket from "ws"
import { type BusFixture, metric, publish, type Published } from "./bus.ts"

export { answers, type BusFixture, type DeadLetter } from "./bus.ts"

interface Device {
  readonly user: string
  readonly name: string
  readonly client: Client
}

const fieldOf = (value: unknown, field: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[field] : undefined

/** The `seq` of every notification of `run` the device received on its user's channel, with repeats. */
const received = (device: Device, run: string): ReadonlyArray<number> =>
  device.client.frames.flatMap((frame: ServerFrame) => {
    if (frame.type !== "message" || frame.channel !== `user:${device.user}`) return []
    const data = fieldOf(frame.data, "data")
    return fieldOf(frame.data, "kind") === "notification" && fieldOf(data, "run") === run && typeof fieldOf(data, "seq") === "number"
      ? [Number(fieldOf(data, "seq"))]
      : []
  })

const users = 10

/** The events of one run: seq i goes to user `<run>-u<i % 10>`, by the rule on its subject or by the envelope's `to`. */
const events = (fixture: BusFixture, run: string, count: number, from = 0): ReadonlyArray<Published> =>
  Array.from({ length: count }, (_, offset) => {
    const seq = from + offset
    const user = `${run}-u${seq % users}`
    // Every fifth names its target itself; every other one carries its own idempotency key.
    const byEnvelope = seq % 5 === 0
    const envelope = {
      ...(byEnvelope ? { to: { users: [user] } } : {}),
      data: { run, seq },
      ...(seq % 2 === 0 ? { idempotencyKey: `${run}-${seq}` } : {})
    }
    return {
      subject: byEnvelope ? `${fixture.prefix}.order.paid` : `${fixture.prefix}.user.${user}.order.completed`,
      body: JSON.stringify(envelope),
      id: `${run}-${seq}`
    }
  })

/** The node flags of the suite: the fixture's, rules for its prefix, short redelivery. */
const nodeFlags = (fixture: BusFixture): ReadonlyArray<string> => [
  ...fixture.flags,
  "--ingest-rules",
  JSON.stringify([
    { match: `${fixture.prefix}.user.{user}.>`, to: { users: ["{user}"] } },
    { match: `${fixture.prefix}.order.*` }
  ]),
  "--ingest-redelivery-ms",
  "3000",
  "--ingest-max-in-flight",
  "32"
]

/**
 * A node of `cluster` with the ingest role only, started and waited on until it consumes (up to a
 * minute: a loaded machine starts Bun slowly). It hosts no entities and no sockets.
 */
const startConsumer = async (cluster: string, nodeId: string, flags: ReadonlyArray<string>): Promise<RunningNode> => {
  const node = startNode([
    "--host", "127.0.0.1",
    "--port", "0",
    "--node-id", nodeId,
    "--redis-url", redisUrl,
    "--cluster", cluster,
    "--runner-host", "127.0.0.1",
    "--runner-port", String(await freePort()),
    "--lock-expiration-ms", "2000",
    "--roles", "ingest",
    ...flags
  ])
  try {
    await node.waitForLog((line) => line.message === "ingest: consuming", 60_000)
    await node.waitForLog((line) => line.message === "listening", 10_000)
  } catch (error) {
    node.kill()
    throw error
  }
  return node
}

export const ingestSuite = (title: string, makeFixture: () => Promise<BusFixture>): void => {
  describe(title, () => {
    let fixture: BusFixture
    let cluster: GatewayCluster
    let a: RunningNode
    let b: RunningNode
    const extra: Array<RunningNode> = []
    const clients: Array<Client> = []
    let keepalive: ReturnType<typeof setInterval> | undefined

    beforeAll(async () => {
      fixture = await makeFixture()
      cluster = await startGatewayCluster(`ingest-${fixture.bus}`, 2, nodeFlags(fixture))
      ;[a, b] = cluster.nodes as [RunningNode, RunningNode]
      for (const node of cluster.nodes) await node.waitForLog((line) => line.message === "ingest: consuming", 20_000)
      // Devices ping, as real clients do: a socket silent for twice --heartbeat-ms is closed by the server.
      keepalive = setInterval(() => {
        for (const client of clients) if (client.socket.readyState === WebSocket.OPEN) client.send({ type: "ping", id: requestId() })
      }, 10_000)
    })

    afterAll(async () => {
      clearInterval(keepalive)
      if (process.env["INGEST_DEBUG"] !== undefined) {
        for (const node of [...(cluster?.nodes ?? []), ...extra]) {
          const lines = node.logs.filter((line) => line.logLevel === "WARN" || line.logLevel === "ERROR").slice(-15)
          console.log(lines.map((line) => JSON.stringify(line).slice(0, 600)).join("\n"))
        }
      }
      await closeAll(clients)
      await stopNodes(extra)
      await cluster?.stop()
      await fixture?.cleanup()
    })

    /** Each user of `run` with a phone on node a and a laptop on node b, subscribed to its channel. */
    const connectDevices = async (run: string): Promise<ReadonlyArray<Device>> => {
      const devices: Array<Device> = []
      for (let u = 0; u < users; u++) {
        const user = `${run}-u${u}`
        for (const [node, name] of [[a, "phone"], [b, "laptop"]] as const) {
          const { client } = await connectAs(node.url(), { sub: user, weft: { device: name } })
          clients.push(client)
          const answer = await request(client, (id) => ({ type: "subscribe", id, channel: `user:${user}` }))
          if (answer.type !== "ack") throw new Error(`subscribe user:${user}: ${JSON.stringify(answer)}`)
          devices.push({ user, name, client })
        }
      }
      // Until each device hears its user's channel end to end (a subscribe is acknowledged before the
      // node's cluster subscription is confirmed): a warm-up event per user, again until all arrive.
      for (let round = 0; ; round++) {
        await publish(fixture.bus, fixture.publisherConfig, Array.from({ length: users }, (_, u) => ({
          subject: `${fixture.prefix}.user.${run}-u${u}.warmup`,
          body: JSON.stringify({ data: { run: `${run}-warm`, seq: round } }),
          id: `${run}-warm-${round}-${u}`
        })))
        const heard = await waitUntil("every device hears its channel", async () =>
          devices.every((device) => received(device, `${run}-warm`).length > 0), 5000).then(() => true, () => false)
        if (heard) break
        if (round >= 5) throw new Error("the devices' channels did not carry a warm-up event in 6 tries")
      }
      return devices
    }

    /** Waits until every device has each of its events, then until the bus is drained; asserts none came twice. */
    const expectEachOnce = async (devices: ReadonlyArray<Device>, run: string, count: number, timeoutMs = 45_000) => {
      const expected = (device: Device) =>
        Array.from({ length: count }, (_, seq) => seq).filter((seq) => `${run}-u${seq % users}` === device.user)
      await waitUntil(
        `every device has its ${count / users} events`,
        async () => devices.every((device) => new Set(received(device, run)).size === expected(device).length),
        timeoutMs
      ).catch(async (error: unknown) => {
        const missing: Array<string> = []
        for (const device of devices) {
          const got = new Set(received(device, run))
          const lost = expected(device).filter((seq) => !got.has(seq))
          if (lost.length === 0) continue
          // Is it in the user's inbox (stored, not sent live) or nowhere? And is the socket still open?
          const state = device.client.socket.readyState === WebSocket.OPEN ? "open" : `closed ${JSON.stringify(await Promise.race([device.client.closed, Promise.resolve("?")]))}`
          const listed = await request(device.client, (id) => ({ type: "rpc", id, method: "notifications.list", params: { limit: 200 } }), 5000)
            .then((answer) => JSON.stringify(answer), (problem: unknown) => String(problem).slice(0, 100))
          missing.push(`${device.user}/${device.name} (socket ${state}) lacks ${lost.join(",")} (in the inbox: ${
            lost.map((seq) => listed.includes(`"seq":${seq}}`)).join(",")
          })`)
        }
        // What the nodes said went wrong (a fan-out that failed leaves the notification in the inbox only).
        const warnings = [...cluster.nodes, ...extra].flatMap((node) =>
          node.logs.filter((line) => line.logLevel === "WARN" || line.logLevel === "ERROR").map((line) => String(line.message))
        )
        const counted = new Map<string, number>()
        for (const warning of warnings) counted.set(warning.slice(0, 120), (counted.get(warning.slice(0, 120)) ?? 0) + 1)
        throw new Error(`${String(error)}; ${missing.join("; ")}; node warnings: ${JSON.stringify(Array.from(counted))}`)
      })
      await waitUntil("the bus is drained and no node holds an event", async () => {
        if (!(await fixture.drained(cluster.cluster))) return false
        const live = [...cluster.nodes, ...extra].filter((node) => node.process.exitCode === null && node.process.signalCode === null)
        const held = await Promise.all(live.map((node) => metric(node, "weft_ingest_in_flight", { source: fixture.bus })))
        return held.every((events) => events === 0)
      }, 30_000)
      // A last event per user behind the others: once each device has it, any repeat of an earlier one would be in too.
      await publish(fixture.bus, fixture.publisherConfig, Array.from({ length: users }, (_, u) => ({
        subject: `${fixture.prefix}.user.${run}-u${u}.sentinel`,
        body: JSON.stringify({ data: { run: `${run}-end`, seq: u } }),
        id: `${run}-end-${u}`
      })))
      await waitUntil("every device has the last event", async () =>
        devices.every((device) => received(device, `${run}-end`).length > 0), 30_000)
      for (const device of devices) {
        const seqs = received(device, run)
        expect(seqs.length, `${device.user}/${device.name} received ${seqs.length} for ${expected(device).length}`).toBe(expected(device).length)
        expect([...seqs].sort((x, y) => x - y)).toEqual(expected(device))
      }
    }

    it("1,000 events published by another process reach each device, on two nodes, exactly once", async () => {
      const run = "many"
      const devices = await connectDevices(run)
      const published = await publish(fixture.bus, fixture.publisherConfig, events(fixture, run, 1000))
      expect(published).toBe(1000)
      await expectEachOnce(devices, run, 1000)
      const consumed = (await metric(a, "weft_ingest_events_consumed_total", { source: fixture.bus })) +
        (await metric(b, "weft_ingest_events_consumed_total", { source: fixture.bus }))
      const delivered = (await metric(a, "weft_ingest_events_delivered_total", { source: fixture.bus })) +
        (await metric(b, "weft_ingest_events_delivered_total", { source: fixture.bus }))
      // Both nodes took a share, and the counts add up (the sentinel events included).
      expect(await metric(a, "weft_ingest_events_consumed_total", { source: fixture.bus })).toBeGreaterThan(0)
      expect(await metric(b, "weft_ingest_events_consumed_total", { source: fixture.bus })).toBeGreaterThan(0)
      expect(consumed).toBeGreaterThanOrEqual(1010)
      expect(delivered).toBeGreaterThanOrEqual(1010)
    }, 90_000)

    it("a poison event goes to the dead-letter path with its reason, and the events behind it still flow", async () => {
      const run = "poison"
      const devices = await connectDevices(run)
      const deadBefore = await fixture.deadLetters()
      const good = events(fixture, run, 100)
      const poison: ReadonlyArray<Published> = [
        { subject: `${fixture.prefix}.user.${run}-u1.order.completed`, body: "{this is not json", id: `${run}-bad-json` },
        { subject: `${fixture.prefix}.user.${run}-u2.order.completed`, body: JSON.stringify({ data: 1, colour: "red" }), id: `${run}-bad-field` },
        { subject: `${fixture.prefix}.nobody.listens`, body: JSON.stringify({ to: { users: [`${run}-u3`] } }), id: `${run}-no-rule` }
      ]
      // The poison first, then the good events behind it.
      await publish(fixture.bus, fixture.publisherConfig, [...poison, ...good])
      await expectEachOnce(devices, run, 100)
      const dead = (await fixture.deadLetters()).slice(deadBefore.length)
      expect(dead.map((letter) => letter.reason).sort()).toEqual(["envelope", "envelope", "route"])
      expect(dead.find((letter) => letter.body === "{this is not json")?.message).toMatch(/JSON/)
      expect(dead.find((letter) => letter.body.includes("colour"))?.message).toMatch(/colour/)
      expect(dead.find((letter) => letter.reason === "route")?.message).toMatch(/no rule matches/)
      const counted = (await metric(a, "weft_ingest_events_dead_lettered_total", { source: fixture.bus, reason: "envelope" })) +
        (await metric(b, "weft_ingest_events_dead_lettered_total", { source: fixture.bus, reason: "envelope" }))
      expect(counted).toBe(2)
    }, 90_000)

    it("kill -9 of a node consuming while events flow: after takeover and restart, no event is lost and none reaches a device twice", async () => {
      const run = "kill"
      const devices = await connectDevices(run)
      // A third node that only consumes: killing it leaves the devices' sockets and the users' entities up.
      const c = await startConsumer(cluster.cluster, `ingest-${fixture.bus}-c`, nodeFlags(fixture))
      extra.push(c)
      const flowing = publish(fixture.bus, { ...fixture.publisherConfig, ratePerSecond: 250 }, events(fixture, run, 1000))
      // Until c is busy: it has taken events and some are still in its hands.
      await waitUntil("the third node is consuming", async () =>
        (await metric(c, "weft_ingest_events_consumed_total", { source: fixture.bus })) >= 50 &&
        (await metric(c, "weft_ingest_in_flight", { source: fixture.bus })) > 0, 30_000)
      c.kill("SIGKILL")
      await c.exited
      // It comes back under the same name while the others have taken over.
      const restarted = await startConsumer(cluster.cluster, `ingest-${fixture.bus}-c`, nodeFlags(fixture))
      extra.push(restarted)
      expect(await flowing).toBe(1000)
      await expectEachOnce(devices, run, 1000, 60_000)
      const redelivered = await Promise.all([a, b, restarted].map((node) =>
        metric(node, "weft_ingest_events_redelivered_total", { source: fixture.bus })))
      // What the dead node held came again, to a live one.
      expect(redelivered.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0)
    }, 120_000)
  })
}
