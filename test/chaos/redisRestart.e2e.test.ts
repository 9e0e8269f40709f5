/**
 * Redis restarted under load: a dedicated redis-server (append-only file, fsync on every write)
 * is killed with -9 and started again while SDK clients chat on a 3-node cluster. While it is
 * down every node says not-ready; once it is back every node is ready again without a restart
 * (same processes); no acknowledged message is lost or doubled, and members keep receiving in
 * order. What the outage may cost is checked too: a publish during it may fail (the publisher
 * gets an error, `unavailable` or `timeout`), and no ticket is issued (new connections wait);
 * connected clients stay connected, and nothing else is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeJwt } from "../support/jwt.ts"
import { waitUntil } from "../support/wait.ts"
import { requestTicket } from "../support/wsClient.ts"
import { readyStatus, waitReadyStatus } from "./support/chaosCluster.ts"
import { allDelivered, deliveryProblems, historyProblems } from "./support/checks.ts"
import { activationProblems, presenceProblems } from "./support/observe.ts"
import { scenarioConnections } from "./support/scale.ts"
import { chaosScenario } from "./support/scenario.ts"

const connections = scenarioConnections()
const rooms = 10

const scenario = chaosScenario({
  label: "redis",
  count: 3,
  load: (cluster) => ({
    connections,
    rooms,
    publishersPerRoom: 1,
    publishIntervalMs: 300,
    urlsFor: (i) => cluster.wsUrls(i % 3)
  })
})

beforeAll(scenario.start, 180_000)
afterAll(scenario.dispose, 60_000)

/** A publish refused while Redis is down: the error names the outage, never anything else. */
const outageError = /unavailable|timeout|timed out|no answer/i

describe("Redis restarted under load", () => {
  it("nodes go not-ready and recover by themselves; nothing acknowledged is lost", async () => {
    const chat = scenario.load()
    const nodes = scenario.cluster().nodes
    const redis = scenario.redis()
    const pids = nodes.map((node) => node.current().process.pid)
    chat.startPublishing()
    await waitUntil("every room has acknowledged messages", async () =>
      [...chat.ackedByRoom().values()].every((acked) => acked.length >= 3), 60_000)

    await redis.stop("SIGKILL")
    const failedBefore = chat.publishers.reduce((sum, p) => sum + p.failed.length, 0)
    // Every node notices within a few seconds (a command fails within 1 s; the heartbeat to the
    // registry is stale after 3 s) and says why.
    await Promise.all(nodes.map((node) => waitReadyStatus(node, 503, 20_000)))
    const body: unknown = await (await fetch(`${nodes[0]!.httpUrl}/readyz`)).json()
    expect(JSON.stringify(body)).toMatch(/redis not connected|stale/)
    // New connections wait for Redis: tickets live there, so none is issued meanwhile (an error
    // status, not a hang). Clients already connected stay connected.
    const late = await requestTicket(nodes[0]!.httpUrl, await makeJwt({ sub: "late", weft: { subscribe: ["room:*"] } }))
    expect(late.status).toBeGreaterThanOrEqual(500)
    // Down for a while longer than a lease (2 s): leases and shard locks expire meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const ackedDuringOutage = chat.ackedCount()
    await redis.start()

    // Back by themselves: the same processes, ready again, taking publishes in every room.
    await Promise.all(nodes.map((node) => waitReadyStatus(node, 200, 60_000)))
    expect(nodes.map((node) => node.current().process.pid)).toEqual(pids)
    expect((await requestTicket(nodes[0]!.httpUrl, await makeJwt({ sub: "late", weft: { subscribe: ["room:*"] } }))).status).toBe(200)
    // No client lost its connection to the outage.
    expect(chat.members.filter((m) => m.ended.length > 0).map((m) => m.user)).toEqual([])
    expect(await Promise.all(nodes.map(readyStatus))).toEqual([200, 200, 200])
    const before = new Map([...chat.ackedByRoom()].map(([room, acked]) => [room, acked.length]))
    await waitUntil("every room acknowledges messages after Redis is back", async () =>
      [...chat.ackedByRoom()].every(([room, acked]) => acked.length >= before.get(room)! + 3), 60_000)
    await chat.stopPublishing()

    await waitUntil("every member has every acknowledged message", async () => allDelivered(chat), 60_000).catch(() => undefined)
    expect(deliveryProblems(chat)).toEqual([])
    expect(await historyProblems(chat, chat.members[0]!)).toEqual([])
    // The outage cost failed publishes only, each with an error that says so.
    const failed = chat.publishers.flatMap((p) => p.failed)
    expect(failed.filter((text) => !outageError.test(text))).toEqual([])
    console.log(`redis: ${chat.ackedCount()} acknowledged (${ackedDuringOutage} by the end of the outage), ${failed.length} failed (${failedBefore} before it)`)
    // Nobody's presence is lost: every member is still listed once, on one device.
    await waitUntil("presence is whole", async () => (await presenceProblems(chat)).length === 0, 20_000).catch(() => undefined)
    expect(await presenceProblems(chat)).toEqual([])
    expect(await activationProblems(chat, nodes)).toEqual([])
  }, 240_000)
})
