/**
 * `npm run bench:cluster`: entity calls across nodes against the same calls to
 * an entity on the caller's own node, in one run.
 *
 * This process is one cluster node; a second Bun node process (the real
 * `services/node` entry) is the other. Both are runners over the local Redis
 * (a cluster name of their own), talking @effect/rpc with msgpack over
 * loopback TCP. Rooms are picked by where their shard lives.
 *
 * - round trip: sequential `Info` asks, p50/p99;
 * - one-way throughput: `Presence` sent with `discard: true`, 64 in flight,
 *   spread over 16 rooms on the target node.
 */
import { EntityId, Sharding } from "@effect/cluster"
import { ActorSystem } from "@weft/actor"
import { layer as RoomLayer, Members, Room, shardGroup } from "@weft/chat"
import { ClusterNode, MemoryHistory, RedisRunnerStorage } from "@weft/cluster"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { Effect, Layer, Logger, LogLevel } from "effect"
import IORedis from "ioredis"
import { histogram, median, type Row, type ScenarioResult } from "./report.ts"
import { freePort, redisUrl } from "../../test/support/ports.ts"

export interface Options {
  readonly roundTrips: number
  readonly messages: number
  readonly inFlight: number
  readonly rooms: number
  readonly rounds: number
}

export const defaults: Options = { roundTrips: 5000, messages: 50_000, inFlight: 64, rooms: 16, rounds: 3 }
export const quick: Options = { roundTrips: 500, messages: 5000, inFlight: 64, rooms: 16, rounds: 1 }

const root = join(import.meta.dirname, "..", "..")

const startPeer = (cluster: string, runnerPort: number, httpPort: number): ChildProcess =>
  spawn(process.execPath, [
    join(root, "services", "node", "src", "main.ts"),
    "--node-id", "bench-peer",
    "--host", "127.0.0.1",
    "--port", String(httpPort),
    "--redis-url", redisUrl,
    "--cluster", cluster,
    "--runner-host", "127.0.0.1",
    "--runner-port", String(runnerPort),
    "--log-level", "error"
  ], { stdio: "ignore" })


const roundTrip = (room: string, n: number) =>
  Effect.gen(function*() {
    const rooms = yield* Room.client
    const h = histogram()
    for (let i = 0; i < n; i++) {
      const start = performance.now()
      yield* rooms(room).Info()
      h.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)))
    }
    return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99) }
  })

const oneWay = (targets: ReadonlyArray<string>, n: number, inFlight: number) =>
  Effect.gen(function*() {
    const rooms = yield* Room.client
    const start = performance.now()
    yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) => rooms(targets[i % targets.length]!).Presence(undefined, { discard: true }),
      { concurrency: inFlight, discard: true }
    )
    return n / ((performance.now() - start) / 1000)
  })

/** Room ids whose shard this node holds (`local`) or does not (`remote`). */
const pickRooms = (count: number) =>
  Effect.gen(function*() {
    const sharding = yield* Sharding.Sharding
    const local: Array<string> = []
    const remote: Array<string> = []
    for (let i = 0; local.length < count || remote.length < count; i++) {
      const id = `bench-${i}`
      const mine = sharding.hasShardId(sharding.getShardId(EntityId.make(id), shardGroup))
      if (mine && local.length < count) local.push(id)
      if (!mine && remote.length < count) remote.push(id)
    }
    return { local, remote }
  })

const waitSettled = Effect.gen(function*() {
  const status = yield* ClusterNode.ClusterStatus
  let stable = 0
  let previous = -1
  for (let i = 0; i < 300 && stable < 5; i++) {
    const readiness = yield* status.readiness
    // Settled: ready, not holding every room shard (the peer holds some), and no longer moving.
    stable = readiness.ready && readiness.shardsHeld === previous && readiness.shardsHeld < 300 ? stable + 1 : 0
    previous = readiness.shardsHeld
    yield* Effect.sleep("200 millis")
  }
  if (stable < 5) return yield* Effect.dieMessage("the two-node cluster did not settle within 60 s")
})

export const run = async (options: Options): Promise<ScenarioResult> => {
  const cluster = `bench-${process.pid}-${Date.now().toString(36)}`
  const [runnerPort, peerRunnerPort, peerHttpPort] = [await freePort(), await freePort(), await freePort()]
  const peer = startPeer(cluster, peerRunnerPort, peerHttpPort)
  const node = RoomLayer().pipe(
    Layer.provide(MemoryHistory.layer({ maxLength: 1000, maxAgeMs: 3_600_000 })),
    Layer.provide(Members.layerMemory),
    Layer.provideMerge(ClusterNode.layer({
      nodeId: "bench-local",
      cluster,
      redis: { url: redisUrl },
      runnerHost: "127.0.0.1",
      runnerPort,
      // The same groups as a node with every role, hosting rooms like its peer.
      shardGroups: { available: ["chat", "notification"], assigned: ["chat"] }
    })),
    Layer.provide(ActorSystem.layer()),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
  )
  const program = Effect.gen(function*() {
    yield* waitSettled
    const { local, remote } = yield* pickRooms(options.rooms)
    // Warm up both paths (connections, JIT, activations).
    yield* roundTrip(local[0]!, 200)
    yield* roundTrip(remote[0]!, 200)
    const localRtt: Array<{ p50: number; p99: number }> = []
    const remoteRtt: Array<{ p50: number; p99: number }> = []
    const localRate: Array<number> = []
    const remoteRate: Array<number> = []
    for (let round = 0; round < options.rounds; round++) {
      localRtt.push(yield* roundTrip(local[0]!, options.roundTrips))
      remoteRtt.push(yield* roundTrip(remote[0]!, options.roundTrips))
      localRate.push(yield* oneWay(local, options.messages, options.inFlight))
      remoteRate.push(yield* oneWay(remote, options.messages, options.inFlight))
    }
    const rows: Array<Row> = [
      {
        metric: "entity round trip p50",
        weft: median(remoteRtt.map((r) => r.p50)),
        baseline: { name: "same call, local entity", value: median(localRtt.map((r) => r.p50)) },
        unit: "us",
        better: "lower",
        aim: "cross-node p50 <= 500 us"
      },
      {
        metric: "entity round trip p99",
        weft: median(remoteRtt.map((r) => r.p99)),
        baseline: { name: "same call, local entity", value: median(localRtt.map((r) => r.p99)) },
        unit: "us",
        better: "lower"
      },
      {
        metric: `one-way throughput (${options.inFlight} in flight)`,
        weft: median(remoteRate),
        baseline: { name: "same sends, local entities", value: median(localRate) },
        unit: "msg/s",
        better: "higher",
        aim: ">= 0.25x local"
      }
    ]
    return {
      scenario: "cluster",
      parameters: { ...options, transport: "socket runner, msgpack, loopback TCP", nodes: "this process + one Bun node process" },
      rows,
      raw: { localRtt, remoteRtt, localRate, remoteRate, rooms: { local, remote } }
    } satisfies ScenarioResult
  })
  try {
    return await Effect.runPromise(Effect.scoped(Effect.flatMap(Layer.build(node), (context) => Effect.provide(program, context))))
  } finally {
    peer.kill("SIGKILL")
    const redis = new IORedis(redisUrl)
    const keys = await redis.keys(RedisRunnerStorage.keys(cluster).pattern)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  }
}
