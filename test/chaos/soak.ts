/**
 * The long soak (not in CI): `npm run soak -- --minutes 30`. Steady chat load with SDK clients
 * on a 3-node cluster (its own Redis, behind the latency proxy), a fault from the seeded
 * schedule every `--fault-every-s` seconds, and a sample every `--sample-every-s` seconds of
 * each node process's RSS and open handles, the actors and entities alive, and the Redis keys.
 * At the end: the chaos checks (nothing acknowledged lost or doubled, order, presence, one
 * activation per room), and every series judged for growth without bound (`growth.ts`).
 * Exits 1 on any problem.
 *
 * Flags: --minutes (30), --connections (300), --rooms (20), --seed (random, printed),
 * --fault-every-s (120), --sample-every-s (30). Run with Bun: `bun test/chaos/soak.ts`.
 */
import { readdirSync, readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { waitUntil } from "../support/wait.ts"
import { type ChaosCluster, scrape, waitReadyStatus } from "./support/chaosCluster.ts"
import type { ChatLoad } from "./support/chatLoad.ts"
import { allDelivered, deliveryProblems, historyProblems } from "./support/checks.ts"
import { describeFault, faultSchedule } from "./support/faultSchedule.ts"
import { judgeGrowth } from "./support/growth.ts"
import { injectFault } from "./support/injectFault.ts"
import { activationProblems, presenceProblems } from "./support/observe.ts"
import { within } from "./support/reaper.ts"
import type { RedisProcess } from "./support/redisProcess.ts"
import { chaosScenario } from "./support/scenario.ts"

const { values: flags } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    connections: { type: "string", default: "300" },
    rooms: { type: "string", default: "20" },
    seed: { type: "string" },
    "fault-every-s": { type: "string", default: "120" },
    "sample-every-s": { type: "string", default: "30" }
  }
})

const positive = (name: string, text: string | undefined): number => {
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(text)}`)
  return value
}

const minutes = positive("minutes", flags.minutes)
const connections = Math.round(positive("connections", flags.connections))
const rooms = Math.round(positive("rooms", flags.rooms))
const faultEveryMs = positive("fault-every-s", flags["fault-every-s"]) * 1000
const sampleEveryMs = positive("sample-every-s", flags["sample-every-s"]) * 1000
const seed = flags.seed === undefined ? 1 + Math.floor(Math.random() * 2_147_483_646) : Math.round(positive("seed", flags.seed))
const leaseMs = 2000
const faultCount = Math.max(0, Math.floor((minutes * 60_000) / faultEveryMs) - 1)
const faults = faultSchedule(seed, faultCount, 3, leaseMs)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(0)}M`

/** Series by name (`rss node-0 pid 123`, `redis keys`...), one value per sample. */
const series = new Map<string, Array<number>>()
const slackOf = new Map<string, number>()
const record = (name: string, value: number, slack: number) => {
  series.set(name, [...(series.get(name) ?? []), value])
  slackOf.set(name, slack)
}

const procStatus = (pid: number): { readonly rss: number; readonly fds: number } | undefined => {
  try {
    const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) * 1024
    return { rss, fds: readdirSync(`/proc/${pid}/fd`).length }
  } catch {
    return undefined
  }
}

const sample = async (cluster: ChaosCluster, redis: RedisProcess, load: ChatLoad, startedAt: number): Promise<void> => {
  const parts: Array<string> = [`t=${Math.round((Date.now() - startedAt) / 1000)}s`]
  let actors = 0
  let roomEntities = 0
  let userEntities = 0
  for (const node of cluster.nodes) {
    const pid = node.current().process.pid
    const status = pid === undefined || !node.up() ? undefined : procStatus(pid)
    if (pid === undefined || status === undefined) {
      parts.push(`${node.id}=down`)
      continue
    }
    // Per process: a restarted node starts its series again.
    // Bun's RSS swings by tens of MB between collections: a leak must climb past that.
    record(`rss ${node.id} pid ${pid}`, status.rss, 32 * 1_048_576)
    record(`handles ${node.id} pid ${pid}`, status.fds, 50)
    const metrics = await within(5000, scrape(node).catch(() => undefined))
    if (metrics !== undefined) {
      actors += metrics.total("weft_actors_alive")
      roomEntities += metrics.total("effect_cluster_entities", { type: "room" })
      userEntities += metrics.total("effect_cluster_entities", { type: "user" })
    }
    parts.push(`${node.id}: rss ${mb(status.rss)} fds ${status.fds}`)
  }
  record("actors (cluster)", actors, 50)
  record("room entities (cluster)", roomEntities, 5)
  record("user entities (cluster)", userEntities, 20)
  const keys = await redisKeys(redis)
  if (keys !== undefined) record("redis keys", keys, 50)
  parts.push(`actors ${actors}`, `rooms ${roomEntities}`, `users ${userEntities}`, `redis keys ${keys ?? "?"}`)
  parts.push(`acked ${load.ackedCount()}`, `failed ${load.publishers.reduce((n, p) => n + p.failed.length, 0)}`)
  console.log(parts.join("  "))
}

/** DBSIZE of the soak's own Redis (every key there is the cluster's). */
const redisKeys = async (redis: RedisProcess): Promise<number | undefined> => {
  const { default: IORedis } = await import("ioredis")
  const client = new IORedis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 })
  try {
    await client.connect()
    return await client.dbsize()
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

const main = async (): Promise<number> => {
  console.log(`soak: ${minutes} min, ${connections} connections in ${rooms} rooms, a fault every ${faultEveryMs / 1000} s, seed ${seed} (replay with --seed ${seed})`)
  for (const [i, fault] of faults.entries()) console.log(`  fault ${i + 1}: ${describeFault(fault)}`)
  const scenario = chaosScenario({
    label: "soak",
    count: 3,
    lockExpirationMs: leaseMs,
    // A short history, so that rooms reach their bound early and a level Redis is expected.
    extraArgs: ["--history-max-length", "200"],
    latencyProxy: true,
    load: (cluster) => ({
      connections,
      rooms,
      publishersPerRoom: 1,
      publishIntervalMs: 500,
      urlsFor: (i) => cluster.wsUrls(i % 3),
      connectBatch: 100
    })
  })
  try {
    await scenario.start()
    const redis = scenario.redis()
    const proxy = scenario.proxy()
    const live = scenario.cluster()
    const load = scenario.load()
    load.startPublishing()
    const startedAt = Date.now()
    const deadline = startedAt + minutes * 60_000
    let nextFault = startedAt + faultEveryMs
    let faultIndex = 0
    const problems: Array<string> = []
    // Bounded by the deadline; each pass waits at least a sample interval.
    while (Date.now() < deadline) {
      await sample(live, redis, load, startedAt)
      if (Date.now() >= nextFault && faultIndex < faults.length) {
        const fault = faults[faultIndex++]!
        console.log(`fault ${faultIndex}/${faults.length}: ${describeFault(fault)}`)
        await injectFault(fault, { cluster: live, redis, proxy })
        const recovered = await Promise.all(live.nodes.map((node) => waitReadyStatus(node, 200, 60_000))).then(() => true, () => false)
        if (!recovered) problems.push(`fault ${faultIndex} (${describeFault(fault)}): a node was not ready again within 60 s`)
        nextFault += faultEveryMs
      }
      await sleep(Math.min(sampleEveryMs, Math.max(0, deadline - Date.now())))
    }
    await load.stopPublishing()
    const chat = load
    await waitUntil("every member has every acknowledged message", async () => allDelivered(chat), 120_000).catch(() => undefined)
    problems.push(...deliveryProblems(chat), ...await historyProblems(chat, chat.members[0]!))
    problems.push(...await presenceProblems(chat), ...await activationProblems(chat, live.nodes))
    for (const [name, values] of series) {
      const verdict = judgeGrowth(values, slackOf.get(name) ?? 0)
      if (verdict.grows) problems.push(`${name} grows without bound: from at most ${verdict.firstMax} to at least ${verdict.lastMin}`)
    }
    console.log(`soak: ${chat.ackedCount()} acknowledged, ${chat.publishers.reduce((n, p) => n + p.failed.length, 0)} failed during faults, ${faultIndex} faults`)
    if (problems.length > 0) {
      console.error(`soak FAILED (seed ${seed}):\n${problems.map((problem) => `  - ${problem}`).join("\n")}`)
      return 1
    }
    console.log(`soak passed (seed ${seed})`)
    return 0
  } finally {
    await scenario.dispose()
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`soak failed (seed ${seed}):`, error)
    process.exit(1)
  }
)
