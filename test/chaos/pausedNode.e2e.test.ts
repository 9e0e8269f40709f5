/**
 * A paused node: SIGSTOP for three times its lease (2 s), then SIGCONT, under chat load. While
 * it is frozen the clients that ping often notice (heartbeat) and move, and its rooms are
 * activated on the survivors. Once it runs again it must stop the activations it had (they
 * answer nothing any more: every node names one and the same activation of each room, never one
 * from before the pause), and whatever it still writes cannot fork a room's history (appends are
 * conditional on the epoch and the next offset): one epoch, dense offsets, every acknowledged
 * message stored once at the position its acknowledgement named, no two acknowledgements at one
 * position. The clients that stayed connected to it
 * through the pause (they ping rarely) were dropped from their rooms while it looked dead: it
 * sends them away to reconnect and register again, so presence ends up exact.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { waitUntil } from "../support/wait.ts"
import { roomActivation, type RoomActivation, waitReadyStatus } from "./support/chaosCluster.ts"
import { describeMember } from "./support/chatLoad.ts"
import { allDelivered, deliveryProblems, historyProblems } from "./support/checks.ts"
import { activationProblems, presenceProblems } from "./support/observe.ts"
import { scenarioConnections } from "./support/scale.ts"
import { chaosScenario } from "./support/scenario.ts"

const connections = scenarioConnections()
const rooms = 12
const lockExpirationMs = 2000

const scenario = chaosScenario({
  label: "paused",
  count: 3,
  lockExpirationMs,
  load: (cluster) => ({
    connections,
    rooms,
    publishersPerRoom: 1,
    publishIntervalMs: 300,
    // A frozen node sends nothing: half the clients notice within 1 + 2 s and move on; the others
    // ping rarely and are still there when it wakes up.
    heartbeat: (i) => (i % 2 === 0 ? { intervalMs: 1000, timeoutMs: 2000 } : { intervalMs: 60_000, timeoutMs: 30_000 }),
    urlsFor: (i) => cluster.wsUrls(i % 3)
  })
})

beforeAll(scenario.start, 180_000)
afterAll(scenario.dispose, 60_000)

describe("a node paused past its lease", () => {
  it("SIGSTOP then SIGCONT: it stops its activations, the history never forks, and its clients register again", async () => {
    const chat = scenario.load()
    const cluster = scenario.cluster()
    const [frozen, ...others] = cluster.nodes
    chat.startPublishing()
    await waitUntil("every room has acknowledged messages", async () =>
      [...chat.ackedByRoom().values()].every((acked) => acked.length >= 3), 60_000)
    const before = new Map<string, RoomActivation>()
    for (const room of chat.rooms) before.set(room, await roomActivation(others[0]!, room))
    const hosted = chat.rooms.filter((room) => before.get(room)!.runner === frozen!.runner)
    expect(hosted.length).toBeGreaterThan(0)
    const onFrozen = chat.members.filter((m) => m.index % 2 === 0 && m.connections.at(-1)?.node === frozen!.id)
    const staying = chat.members.filter((m) => m.index % 2 === 1 && m.connections.at(-1)?.node === frozen!.id)
    expect(staying.length).toBeGreaterThan(0)

    frozen!.pause()
    const pausedAt = Date.now()
    // The clients that ping often notice the silence (no frame within 2 s of a ping) and move.
    await waitUntil("the frozen node's clients moved", async () =>
      onFrozen.every((m) => m.connections.some((c) => c.at >= pausedAt)), 30_000).catch((error: unknown) => {
      const stuck = onFrozen.filter((m) => !m.connections.some((c) => c.at >= pausedAt))
      throw new Error(`${String(error)}: ${stuck.length} stuck, e.g. ${stuck.slice(0, 2).map(describeMember).join("\n")}`)
    })
    // Its rooms live on elsewhere: publishes are acknowledged in every room while it is frozen.
    const ackedAtPause = new Map([...chat.ackedByRoom()].map(([room, acked]) => [room, acked.length]))
    await waitUntil("every room acknowledges messages while the node is frozen", async () =>
      [...chat.ackedByRoom()].every(([room, acked]) => acked.length >= ackedAtPause.get(room)! + 2), 60_000)
    // Frozen for three leases at least.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, pausedAt + 3 * lockExpirationMs - Date.now())))
    for (const room of hosted) {
      const now = await roomActivation(others[0]!, room)
      expect(now.activation).not.toBe(before.get(room)!.activation)
      expect(now.runner).not.toBe(frozen!.runner)
    }

    frozen!.resume()
    const resumedAt = Date.now()
    await waitReadyStatus(frozen!, 200, 60_000)
    // Once it noticed it lost its shards (its next lock refresh), every node, the resumed one
    // too, names one activation per room, and none of the frozen node's old ones answers.
    await waitUntil("every node names one activation per room", async () =>
      (await activationProblems(chat, cluster.nodes)).length === 0, 30_000).catch(() => undefined)
    expect(await activationProblems(chat, cluster.nodes)).toEqual([])
    const stale = new Set(hosted.map((room) => before.get(room)!.activation))
    for (const room of hosted) expect(stale.has((await roomActivation(frozen!, room)).activation)).toBe(false)
    console.log(`paused: ${hosted.length} rooms moved; one activation each ${Date.now() - resumedAt} ms after SIGCONT`)

    const ackedAtResume = chat.ackedCount()
    await waitUntil("publishes go on after the resume", async () => chat.ackedCount() >= ackedAtResume + 20, 60_000)
    await chat.stopPublishing()
    await waitUntil("every member has every acknowledged message", async () => allDelivered(chat), 60_000).catch(() => undefined)
    expect(deliveryProblems(chat)).toEqual([])
    // The clients that stayed were dropped from their rooms while the node looked dead; once it
    // woke up and found its lease lapsed it sent them away to register again: presence is exact.
    for (const m of staying) expect(m.ended.length, describeMember(m)).toBeGreaterThan(0)
    await waitUntil("presence is exact", async () => (await presenceProblems(chat)).length === 0, 30_000).catch(() => undefined)
    expect(await presenceProblems(chat)).toEqual([])
    expect(await historyProblems(chat, chat.members[0]!)).toEqual([])
  }, 240_000)
})
