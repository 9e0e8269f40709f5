/**
 * A rolling restart under load: each node of three in turn gets SIGTERM (it drains: readiness
 * 503, every client told to reconnect elsewhere, its entities handed off), exits 0 and starts
 * again, while SDK clients chat. No publish fails, no client sees an error event, no
 * acknowledged message is lost or doubled, and each drained node's clients spread across both
 * survivors (each client's URL list is in its own random order, as a client-side list or a load
 * balancer would spread them).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { waitUntil } from "../support/wait.ts"
import { waitReadyStatus } from "./support/chaosCluster.ts"
import { describeMember } from "./support/chatLoad.ts"
import { allDelivered, deliveryProblems, historyProblems } from "./support/checks.ts"
import { scenarioConnections } from "./support/scale.ts"
import { chaosScenario } from "./support/scenario.ts"

const connections = scenarioConnections()
const rooms = 10

/** Client `i` starts on node `i % 3` and then tries the other two in an order of its own. */
const urlOrder = (i: number): ReadonlyArray<number> => {
  const first = i % 3
  const others = [(first + 1) % 3, (first + 2) % 3]
  return Math.floor(i / 3) % 2 === 0 ? [first, ...others] : [first, others[1]!, others[0]!]
}

const scenario = chaosScenario({
  label: "rolling",
  count: 3,
  load: (cluster) => ({
    connections,
    rooms,
    publishersPerRoom: 1,
    publishIntervalMs: 300,
    urlsFor: (i) => urlOrder(i).map((k) => cluster.nodes[k]!.wsUrl)
  })
})

beforeAll(scenario.start, 180_000)
afterAll(scenario.dispose, 60_000)

describe("rolling restart under load", () => {
  it("SIGTERM each node in turn: no publish fails, no client error, nothing lost, clients spread over the survivors", async () => {
    const chat = scenario.load()
    const cluster = scenario.cluster()
    const nodes = cluster.nodes
    chat.startPublishing()
    for (const node of nodes) {
      const before = chat.ackedCount()
      await waitUntil(`publishes are acknowledged before ${node.id} restarts`, async () => chat.ackedCount() >= before + 20, 60_000)
      const moving = chat.members.filter((m) => m.connections.at(-1)?.node === node.id)
      const stoppedAt = Date.now()
      node.kill("SIGTERM")
      expect(await node.current().exited).toEqual({ code: 0, signal: null })
      // What went wrong while it stopped, if anything, for the report of a failure further on.
      const warnings = node.current().logs.filter((line) =>
        (line.logLevel === "WARN" || line.logLevel === "ERROR") && !String(line.message).startsWith("no service credentials"))
      if (warnings.length > 0) console.log(`${node.id} logged while stopping:\n${warnings.slice(-8).map((line) => JSON.stringify(line).slice(0, 400)).join("\n")}`)
      await waitUntil(`${node.id}'s clients moved`, async () =>
        moving.every((m) => m.connections.some((c) => c.at >= stoppedAt)), 30_000).catch((error: unknown) => {
        const stuck = moving.filter((m) => !m.connections.some((c) => c.at >= stoppedAt))
        throw new Error(`${String(error)}: ${stuck.length} not moved, e.g. ${stuck.slice(0, 2).map(describeMember).join("\n")}`)
      })
      // Spread: each survivor took a fair share (at least a fifth) of the drained node's clients.
      const landed = new Map<string, number>()
      for (const m of moving) {
        const to = m.connections.find((c) => c.at >= stoppedAt)!.node
        landed.set(to, (landed.get(to) ?? 0) + 1)
      }
      expect(landed.has(node.id)).toBe(false)
      expect([...landed.values()].length).toBe(2)
      for (const count of landed.values()) expect(count).toBeGreaterThanOrEqual(Math.floor(moving.length / 5))
      await node.restart()
      await waitReadyStatus(node, 200, 60_000)
      await cluster.settled(nodes)
    }
    const after = chat.ackedCount()
    await waitUntil("publishes are acknowledged after the last restart", async () => chat.ackedCount() >= after + 20, 60_000)
    await chat.stopPublishing()

    await waitUntil("every member has every acknowledged message", async () => allDelivered(chat), 60_000).catch(() => undefined)
    expect(deliveryProblems(chat)).toEqual([])
    expect(await historyProblems(chat, chat.members[0]!)).toEqual([])
    expect(chat.publishers.flatMap((p) => p.failed)).toEqual([])
    const errors = chat.members.flatMap((m) => m.recorded.errors.map((error) => `${m.user}: ${error.name} ${error.message}`))
    expect(errors.slice(0, 10)).toEqual([])
    // Every connection that ended was ended by a drain (1001, after a goodbye), never dropped. (A
    // reconnect attempt may still fail, on a node not back yet: the client tries the next one.)
    const dropped = chat.members.filter((m) => m.ended.some((code) => code !== 1001))
    expect(dropped.map((m) => `${m.user}: ${m.ended.join(",")} ${describeMember(m)}`).slice(0, 5)).toEqual([])
    console.log(`rolling: ${chat.ackedCount()} acknowledged, ${connections} clients, ${chat.members.reduce((n, m) => n + m.connections.length - 1, 0)} moves`)
  }, 360_000)
})
