/**
 * Several cluster nodes in one process: real socket runners on loopback,
 * real Redis (a cluster name per test), msgpack between runners.
 */
import { Entity, Sharding, ShardId } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Actor, ActorSystem } from "@weft/actor"
import { ActorMail, ClusterNode, Entities, RedisRunnerStorage } from "@weft/cluster"
import { Context, Duration, Effect, Exit, Layer, Logger, LogLevel, Schema, Scope } from "effect"
import IORedis from "ioredis"
import { afterAll, describe, expect, it } from "vitest"
import { freePort, redisUrl, startRedisServer, uniqueCluster } from "../../../test/support/ports.ts"
import { waitUntil, waitUntilSettled } from "../../../test/support/wait.ts"

const Hit = Schema.Struct({ activation: Schema.String, runner: Schema.String, count: Schema.Number })

/** A probe entity: tells who answered and records who sent what, in arrival order. */
const Probe = Entity.make("probe", [
  Rpc.make("Hit", { payload: { sender: Schema.String, seq: Schema.Number }, success: Hit }),
  Rpc.make("Log", { success: Schema.Array(Schema.Tuple(Schema.String, Schema.Number)) })
])

const ProbeLive = Entities.toLayer(
  Probe,
  Effect.gen(function*() {
    const runner = yield* Entity.CurrentRunnerAddress
    const activation = crypto.randomUUID()
    const log: Array<readonly [string, number]> = []
    return Probe.of({
      Hit: ({ payload }) =>
        Effect.sync(() => {
          log.push([payload.sender, payload.seq])
          return { activation, runner: `${runner.host}:${runner.port}`, count: log.length }
        }),
      Log: () => Effect.sync(() => log.slice())
    })
  })
)

/** A local actor kind reachable from other nodes through ActorMail. */
class Deliver extends Schema.TaggedRequest<Deliver>()("Deliver", {
  payload: { text: Schema.String },
  success: Schema.Void,
  failure: Schema.Never
}) {}
const Inbox = Actor.make("inbox", [Deliver])
class Received extends Context.Tag("test/Received")<Received, Array<string>>() {}
const InboxLive = Actor.toLayer(Inbox, () =>
  Effect.gen(function*() {
    const received = yield* Received
    return { receive: { Deliver: ({ text }) => Effect.sync(() => void received.push(text)) } }
  }), { activation: "explicit" })

interface TestNode {
  readonly id: string
  /** `host:port` of its runner. */
  readonly runner: string
  readonly context: Context.Context<
    Sharding.Sharding | ClusterNode.ClusterStatus | ActorMail.ActorMail | ActorSystem | Received
  >
  readonly scope: Scope.CloseableScope
  readonly run: <A, E>(
    effect: Effect.Effect<A, E, Sharding.Sharding | ClusterNode.ClusterStatus | ActorMail.ActorMail | ActorSystem | Received>
  ) => Promise<A>
  readonly close: () => Promise<void>
}

const startNode = async (cluster: string, id: string, url: string = redisUrl): Promise<TestNode> => {
  const port = await freePort()
  const layer = Layer.mergeAll(ProbeLive, InboxLive).pipe(
    Layer.provideMerge(
      ClusterNode.layer({
        nodeId: id,
        cluster,
        redis: { url, commandTimeoutMs: 1000 },
        runnerHost: "127.0.0.1",
        runnerPort: port,
        lockExpiration: "2 seconds",
        lockRefreshInterval: "500 millis",
        refreshAssignmentsInterval: "500 millis"
      })
    ),
    Layer.provideMerge(ActorSystem.layer({ name: id })),
    Layer.provideMerge(Layer.sync(Received, () => [])),
    // @effect/cluster warns while runners come and go, which these tests do on purpose.
    Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
  )
  const scope = Effect.runSync(Scope.make())
  // Each node is its own build (its own memo map), as it would be its own process.
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return {
    id,
    runner: `127.0.0.1:${port}`,
    context,
    scope,
    run: (effect) => Effect.runPromise(Effect.provide(effect, context)),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const allReady = (nodes: ReadonlyArray<TestNode>) =>
  waitUntilSettled(() => Promise.all(nodes.map((node) => node.run(Effect.flatMap(ClusterNode.ClusterStatus, (s) => s.readiness)))))

const hit = (sender: string, seq: number, entity = "general") =>
  Effect.flatMap(Probe.client, (client) => client(entity).Hit({ sender, seq })).pipe(
    Entities.withTimeout(`probe/${entity}`, "10 seconds")
  )

const shardsHeldBy = (node: TestNode, shardsPerGroup = 300) =>
  node.run(Effect.map(Sharding.Sharding, (sharding) =>
    Array.from({ length: shardsPerGroup }, (_, i) => ShardId.make("default", i + 1)).filter((shard) => sharding.hasShardId(shard))
      .map((shard) => shard.id)))

const opened: Array<TestNode> = []
const open = async (cluster: string, count: number, url?: string) => {
  const nodes = await Promise.all(Array.from({ length: count }, (_, i) => startNode(cluster, `node-${i}`, url)))
  opened.push(...nodes)
  return nodes
}
const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  await Promise.all(opened.map((node) => node.close().catch(() => undefined)))
  for (const cleanup of cleanups) await cleanup()
})

const deleteClusterKeys = async (cluster: string) => {
  const redis = new IORedis(redisUrl)
  const keys = await redis.keys(RedisRunnerStorage.keys(cluster).pattern)
  if (keys.length > 0) await redis.del(...keys)
  await redis.quit()
}

describe("cluster nodes over Redis, in one process", () => {
  it("a message from every node reaches the same single activation", async () => {
    const cluster = uniqueCluster("same")
    cleanups.push(() => deleteClusterKeys(cluster))
    const nodes = await open(cluster, 3)
    await allReady(nodes)
    const answers = []
    for (let round = 0; round < 3; round++) {
      for (const node of nodes) answers.push(await node.run(hit(node.id, round)))
    }
    expect(new Set(answers.map((a) => a.activation)).size).toBe(1)
    expect(new Set(answers.map((a) => a.runner)).size).toBe(1)
    expect(answers.map((a) => a.count)).toEqual(answers.map((_, i) => i + 1))
    // Every shard is held by exactly one node.
    const held = await Promise.all(nodes.map((node) => shardsHeldBy(node)))
    const owners = new Map<number, number>()
    for (const shards of held) for (const shard of shards) owners.set(shard, (owners.get(shard) ?? 0) + 1)
    expect(owners.size).toBe(300)
    expect([...owners.values()].every((count) => count === 1)).toBe(true)
  }, 60_000)

  it("keeps each sender's order across nodes", async () => {
    const cluster = uniqueCluster("order")
    cleanups.push(() => deleteClusterKeys(cluster))
    const nodes = await open(cluster, 3)
    await allReady(nodes)
    const perSender = 60
    await Promise.all(nodes.map(async (node) => {
      for (let seq = 0; seq < perSender; seq++) await node.run(hit(node.id, seq, "ordered"))
    }))
    const log = await nodes[0]!.run(
      Effect.flatMap(Probe.client, (client) => client("ordered").Log()).pipe(Entities.withTimeout("probe/ordered", "10 seconds"))
    )
    for (const node of nodes) {
      const seqs = log.filter(([sender]) => sender === node.id).map(([, seq]) => seq)
      expect(seqs).toEqual(Array.from({ length: perSender }, (_, i) => i))
    }
  }, 60_000)

  it("re-activates an entity on another node when its node leaves", async () => {
    const cluster = uniqueCluster("leave")
    cleanups.push(() => deleteClusterKeys(cluster))
    const nodes = await open(cluster, 3)
    await allReady(nodes)
    const before = await nodes[0]!.run(hit("a", 1, "mover"))
    const host = nodes.find((node) => node.runner === before.runner)!
    expect(host).toBeDefined()
    await host.close()
    const survivor = nodes.find((node) => node !== host)!
    const after = await survivor.run(hit("a", 2, "mover"))
    expect(after.runner).not.toBe(before.runner)
    expect(after.activation).not.toBe(before.activation)
    // State is per activation: the new one starts fresh.
    expect(after.count).toBe(1)
    for (const node of nodes.filter((node) => node !== host)) {
      expect((await node.run(hit("b", 3, "mover"))).activation).toBe(after.activation)
    }
  }, 60_000)

  it("tells a local actor on another node by its address", async () => {
    const cluster = uniqueCluster("mail")
    cleanups.push(() => deleteClusterKeys(cluster))
    const [a, b] = await open(cluster, 2)
    await allReady([a!, b!])
    const key = await b!.run(Effect.gen(function*() {
      const mail = yield* ActorMail.ActorMail
      const system = yield* ActorSystem
      const key = mail.localKey(1)
      yield* system.spawn(Inbox, key)
      yield* Scope.extend(mail.accept(Inbox), b!.scope)
      return key
    }))
    await waitUntil("the message crossed nodes", async () => {
      await a!.run(Effect.flatMap(ActorMail.ActorMail, (mail) => mail.tell(Inbox, key, new Deliver({ text: "hello" }))))
      const received = Context.get(b!.context, Received)
      return received.includes("hello")
    })
    // Sender order is kept for one sender and receiver.
    const received = Context.get(b!.context, Received)
    await a!.run(Effect.flatMap(ActorMail.ActorMail, (mail) =>
      Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => mail.tell(Inbox, key, new Deliver({ text: `m${i}` })))))
    const sequence = () => received.filter((text) => text.startsWith("m"))
    await waitUntil("all 200 arrived", async () => sequence().length >= 200)
    expect(sequence()).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`))
  }, 60_000)

  it("20 runners starting at once hold every shard exactly once", async () => {
    const cluster = uniqueCluster("twenty")
    cleanups.push(() => deleteClusterKeys(cluster))
    const nodes = await open(cluster, 20)
    await waitUntil("the shards settle", async () => {
      const held = await Promise.all(nodes.map((node) => shardsHeldBy(node)))
      return held.reduce((sum, shards) => sum + shards.length, 0) === 300 && held.every((shards) => shards.length > 0)
    }, 40_000)
    const held = await Promise.all(nodes.map((node) => shardsHeldBy(node)))
    const owners = new Map<number, number>()
    for (const shards of held) for (const shard of shards) owners.set(shard, (owners.get(shard) ?? 0) + 1)
    expect(owners.size).toBe(300)
    expect([...owners.values()].every((count) => count === 1)).toBe(true)
    // And the registry agrees: each shard's lock names the node that holds it.
    const redis = new IORedis(redisUrl)
    const keys = RedisRunnerStorage.keys(cluster)
    const lockOwners = await Promise.all(Array.from({ length: 300 }, (_, i) => redis.get(keys.lock(`default:${i + 1}`))))
    await redis.quit()
    held.forEach((shards, index) => {
      for (const shard of shards) expect(lockOwners[shard - 1]).toBe(nodes[index]!.runner)
    })
    await Promise.all(nodes.map((node) => node.close()))
  }, 90_000)

  it("recovers by itself when its Redis restarts, reporting not-ready meanwhile", async () => {
    const redisServer = await startRedisServer()
    cleanups.push(() => redisServer.stop())
    const cluster = uniqueCluster("restart")
    const nodes = await open(cluster, 2, redisServer.url)
    await allReady(nodes)
    const first = await nodes[0]!.run(hit("x", 1, "survivor"))
    expect(first.count).toBe(1)

    await redisServer.stop()
    await waitUntil("both nodes report not ready", async () => {
      const states = await Promise.all(nodes.map((node) => node.run(Effect.flatMap(ClusterNode.ClusterStatus, (s) => s.readiness))))
      return states.every((state) => !state.ready && state.reasons.some((reason) => reason.includes("redis")))
    })
    // Local work goes on without Redis.
    const local = await nodes[1]!.run(Effect.gen(function*() {
      const system = yield* ActorSystem
      const mail = yield* ActorMail.ActorMail
      const key = mail.localKey("offline")
      yield* system.spawn(Inbox, key)
      yield* system.ref(Inbox, key).tell(new Deliver({ text: "still here" }))
      yield* Effect.sleep(Duration.millis(50))
      return Context.get(nodes[1]!.context, Received).includes("still here")
    }))
    expect(local).toBe(true)

    await redisServer.start()
    await allReady(nodes)
    const again = await nodes[1]!.run(hit("x", 2, "survivor"))
    expect(again.runner === nodes[0]!.runner || again.runner === nodes[1]!.runner).toBe(true)
    const answers = await Promise.all(nodes.map((node) => node.run(hit("y", 3, "survivor"))))
    expect(new Set(answers.map((a) => a.activation)).size).toBe(1)
  }, 90_000)
})
