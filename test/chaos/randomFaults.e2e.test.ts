/**
 * A seeded random schedule of faults under chat load: kill -9 (and restart) of a node, SIGSTOP
 * past its lease (and SIGCONT), a Redis crash and restart, latency between the nodes and Redis
 * (a TCP proxy in front of Redis). A fixed number of faults (`CHAOS_FAULTS`, default 5), one
 * after the other, each followed by the cluster recovering (every node ready, shards settled,
 * every room acknowledging publishes). Then nothing acknowledged is lost or doubled, order per
 * room is kept, presence is exact and each room has one activation.
 *
 * The seed is printed and in the test's name; `CHAOS_SEED=<seed> npm run chaos` replays it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { waitUntil } from "../support/wait.ts"
import { waitReadyStatus } from "./support/chaosCluster.ts"
import { allDelivered, deliveryProblems, historyProblems } from "./support/checks.ts"
import { describeFault, faultSchedule } from "./support/faultSchedule.ts"
import { injectFault } from "./support/injectFault.ts"
import { activationProblems, presenceProblems } from "./support/observe.ts"
import { scenarioConnections, scheduleFaults, scheduleSeed } from "./support/scale.ts"
import { chaosScenario } from "./support/scenario.ts"

const seed = scheduleSeed()
const leaseMs = 2000
const faults = faultSchedule(seed, scheduleFaults(), 3, leaseMs)
const connections = scenarioConnections()
const rooms = 10

console.log(`chaos schedule seed ${seed} (replay with CHAOS_SEED=${seed}):\n${faults.map((fault, i) => `  ${i + 1}. ${describeFault(fault)}`).join("\n")}`)

const scenario = chaosScenario({
  label: "random",
  count: 3,
  lockExpirationMs: leaseMs,
  latencyProxy: true,
  load: (cluster) => ({
    connections,
    rooms,
    publishersPerRoom: 1,
    publishIntervalMs: 300,
    // A frozen node sends nothing: its clients notice within 1 + 2 s and move on.
    heartbeat: () => ({ intervalMs: 1000, timeoutMs: 2000 }),
    urlsFor: (i) => cluster.wsUrls(i % 3)
  })
})

beforeAll(scenario.start, 180_000)
afterAll(scenario.dispose, 60_000)

describe("a seeded random schedule of faults", () => {
  it(`seed ${seed}: ${faults.length} faults, then nothing acknowledged lost or doubled, one activation per room, exact presence`, async () => {
    const chat = scenario.load()
    const cluster = scenario.cluster()
    const nodes = cluster.nodes
    chat.startPublishing()
    const roomsAcknowledge = async (what: string) => {
      const before = new Map([...chat.ackedByRoom()].map(([room, acked]) => [room, acked.length]))
      await waitUntil(what, async () => [...chat.ackedByRoom()].every(([room, acked]) => acked.length >= before.get(room)! + 2), 60_000)
    }
    await roomsAcknowledge("every room acknowledges publishes before the faults")
    for (const [i, fault] of faults.entries()) {
      const started = Date.now()
      await injectFault(fault, { cluster, redis: scenario.redis(), proxy: scenario.proxy() })
      const step = `after fault ${i + 1} (${describeFault(fault)}; seed ${seed})`
      await Promise.all(nodes.map((node) => waitReadyStatus(node, 200, 60_000))).catch((error: unknown) => {
        throw new Error(`${step}: a node is not ready again: ${String(error)}`)
      })
      await cluster.settled(nodes).catch((error: unknown) => {
        throw new Error(`${step}: the shards do not settle: ${String(error)}`)
      })
      await roomsAcknowledge(`${step}: every room acknowledges publishes`)
      console.log(`fault ${i + 1}/${faults.length} (${describeFault(fault)}): recovered in ${Date.now() - started} ms`)
    }
    await chat.stopPublishing()

    await waitUntil("every member has every acknowledged message", async () => allDelivered(chat), 60_000).catch(() => undefined)
    expect(deliveryProblems(chat), `seed ${seed}`).toEqual([])
    expect(await historyProblems(chat, chat.members[0]!), `seed ${seed}`).toEqual([])
    await waitUntil("presence is exact", async () => (await presenceProblems(chat)).length === 0, 30_000).catch(() => undefined)
    expect(await presenceProblems(chat), `seed ${seed}`).toEqual([])
    expect(await activationProblems(chat, nodes), `seed ${seed}`).toEqual([])
    const failed = chat.publishers.flatMap((p) => p.failed)
    console.log(`random (seed ${seed}): ${chat.ackedCount()} acknowledged, ${failed.length} failed during faults`)
  }, 480_000)
})
