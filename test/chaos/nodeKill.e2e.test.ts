/**
 * kill -9 of one node of three under steady chat load from 1,000 SDK connections (CI size;
 * `npm run chaos -- --connections 5000` for the full size). Its clients are back on the
 * survivors within 5 s; every acknowledged message is in the history once at the position its
 * acknowledgement named, and reached every member of its room once and in the room's order;
 * the dead node's presence is gone; its rooms and users are active again elsewhere, one
 * activation each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { waitUntil } from "../support/wait.ts"
import { roomActivation } from "./support/chaosCluster.ts"
import { describeMember } from "./support/chatLoad.ts"
import { allDelivered, deliveryProblems, historyProblems } from "./support/checks.ts"
import { activationProblems, entityCount, presenceProblems } from "./support/observe.ts"
import { reconnectBoundMs } from "./support/scale.ts"
import { killConnections } from "./support/scale.ts"
import { chaosScenario } from "./support/scenario.ts"

const connections = killConnections()
// 20 members per room at CI size: fan-out on every node, and 50 rooms spread over every node's shards.
const rooms = Math.max(10, Math.round(connections / 20))
// Connecting, and the per-room and per-user checks, take longer at the full size.
const sizeMs = connections * 100

const scenario = chaosScenario({
  label: "kill",
  count: 3,
  load: (cluster) => ({
    connections,
    rooms,
    publishersPerRoom: 1,
    // One message per room every second: a steady ~50 messages/s and ~1,000 deliveries/s at CI size.
    publishIntervalMs: 1000,
    urlsFor: (i) => cluster.wsUrls(i % 3),
    connectBatch: 100
  })
})

beforeAll(scenario.start, 60_000 + sizeMs)
afterAll(scenario.dispose, 60_000)

describe("kill -9 of a node under load", () => {
  it(`${connections} connections on 3 nodes: clients back within 5 s, nothing acknowledged lost or doubled, one activation each`, async () => {
    const [victim, ...survivors] = scenario.cluster().nodes
    const chat = scenario.load()
    chat.startPublishing()
    await waitUntil("every room has acknowledged messages", async () =>
      [...chat.ackedByRoom().values()].every((acked) => acked.length >= 3), 60_000)

    const onVictim = chat.members.filter((m) => m.connections.at(-1)?.node === victim!.id)
    expect(onVictim.length).toBeGreaterThanOrEqual(Math.floor(connections / 3) - 1)
    // A room the victim hosts: how long the cluster takes to answer for it from a survivor.
    const hostedRoom = (await Promise.all(chat.rooms.map(async (room) => ({ room, at: await roomActivation(survivors[0]!, room) }))))
      .find((entry) => entry.at.runner === victim!.runner)?.room
    victim!.kill("SIGKILL")
    const killedAt = Date.now()
    const failover = hostedRoom === undefined ? Promise.resolve(-1) : roomActivation(survivors[0]!, hostedRoom).then(() => Date.now() - killedAt, () => -1)
    await victim!.current().exited

    // Everyone on the dead node reconnects to a survivor.
    await waitUntil("the dead node's clients are back", async () =>
      onVictim.every((m) => m.connections.some((c) => c.at >= killedAt)), 30_000).catch((error: unknown) => {
      const stuck = onVictim.filter((m) => !m.connections.some((c) => c.at >= killedAt))
      throw new Error(`${String(error)}: ${stuck.length} not back, e.g. ${stuck.slice(0, 2).map(describeMember).join("\n")}`)
    })
    const reconnectMs = onVictim.map((m) => m.connections.find((c) => c.at >= killedAt)!.at - killedAt)
    const slowest = Math.max(...reconnectMs)
    const sorted = [...reconnectMs].sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
    console.log(`kill: ${onVictim.length} clients reconnected: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms, slowest ${slowest} ms; a room of the dead node answered again after ${await failover} ms`)
    // The promise: back within 5 s. The parts: the close is seen at once (the OS resets
    // the sockets of a killed process), a retry after at most 200 ms, and admission waits for the
    // user's entity, which moves once the dead node's shard locks expire (2 s here) and a
    // survivor takes them (refreshed every second): ~3.5 s at worst, ~1.5 s of margin for load.
    // That margin is for this scenario alone on the machine (`npm run chaos`); inside `npm test`
    // another file shares the two cores, and the bound is what CPU starvation can stretch it to.
    expect(slowest, `the slowest client: ${describeMember(onVictim[reconnectMs.indexOf(slowest)]!)}`).toBeLessThan(reconnectBoundMs())
    for (const m of onVictim) expect(survivors.map((node) => node.id)).toContain(m.connections.at(-1)!.node)

    // The load goes on: every room acknowledges new messages after the kill.
    const before = new Map([...chat.ackedByRoom()].map(([room, acked]) => [room, acked.length]))
    await waitUntil("every room acknowledges messages after the kill", async () =>
      [...chat.ackedByRoom()].every(([room, acked]) => acked.length >= before.get(room)! + 3), 60_000)
    await chat.stopPublishing()

    await waitUntil("every member has every acknowledged message of its room", async () => allDelivered(chat), 60_000)
      .catch(() => undefined)
    expect(deliveryProblems(chat)).toEqual([])
    expect(await historyProblems(chat, chat.members.find((m) => m.connections.at(-1)?.node !== victim!.id)!)).toEqual([])

    // Presence: exactly the members, one device each (the dead node's connections are gone).
    await waitUntil("presence is clean", async () => (await presenceProblems(chat)).length === 0, 30_000).catch(() => undefined)
    expect(await presenceProblems(chat)).toEqual([])

    // One activation per room, asked through both survivors, none on the dead runner.
    expect(await activationProblems(chat, survivors, [victim!.runner])).toEqual([])
    // A user entity moves on its next message (the design's lazy re-activation): the dead node's
    // users whose connections were elsewhere are not active until something asks. Every member
    // reads its inbox (a call to its own user entity); then the survivors' entity gauges must
    // count each room and each user exactly once: a second activation anywhere would add one.
    for (let start = 0; start < chat.members.length; start += 100) {
      await Promise.all(chat.members.slice(start, start + 100).map((m) => m.recorded.client.notifications.list({ limit: 1 })))
    }
    await waitUntil("the entity gauges settle", async () =>
      (await entityCount(survivors, "room")) === rooms && (await entityCount(survivors, "user")) === connections, 20_000)
      .catch(() => undefined)
    expect(await entityCount(survivors, "room")).toBe(rooms)
    expect(await entityCount(survivors, "user")).toBe(connections)

    const failed = chat.publishers.flatMap((publisher) => publisher.failed)
    console.log(`kill: ${chat.ackedCount()} acknowledged, ${failed.length} failed publishes (allowed during the failover)`)
  }, 120_000 + sizeMs)
})
