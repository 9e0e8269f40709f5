/**
 * ClusterTopics: one contract, run against the in-memory twin and against real Redis
 * (REDIS_URL, default redis://127.0.0.1:6379), then what only Redis can do to us: foreign
 * frames, dropped connections, a restarted server, no server at all.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, HashMap, Logger, Option } from "effect"
import { randomBytes } from "node:crypto"
import type { ClusterTopicsService, TopicError } from "../src/ClusterTopics.ts"
import * as RedisModule from "../src/Redis.ts"
import {
  bytesEqual,
  channelOf,
  eventually,
  freePort,
  type Harness,
  hasRedisServer,
  killConnection,
  makeRedisNode,
  makeRecorder,
  makeRedisServer,
  memoryHarness,
  numsub,
  randomClusterName,
  readSequenced,
  record,
  recordClosable,
  type Recorder,
  redisHarness,
  redisUrl,
  type RedisServer,
  sequenced,
  settle,
  untilDelivered
} from "./clusterTopicsHarness.ts"

const publishAll = (node: ClusterTopicsService, topic: string, payloads: ReadonlyArray<Uint8Array>) =>
  Effect.forEach(payloads, (payload) => node.publish(topic, payload), { discard: true })

const idsOf = (recorder: Recorder): Array<string> =>
  recorder.payloads().map((payload) => {
    const { publisher, seq } = readSequenced(payload)
    return `${publisher}:${seq}`
  })

/** Each publisher's sequence numbers, in arrival order. */
const seqsByPublisher = (recorder: Recorder): Map<number, Array<number>> => {
  const seqs = new Map<number, Array<number>>()
  for (const payload of recorder.payloads()) {
    const { publisher, seq } = readSequenced(payload)
    seqs.set(publisher, [...(seqs.get(publisher) ?? []), seq])
  }
  return seqs
}

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

interface LogLine {
  readonly level: string
  readonly message: string
  readonly topic: string | undefined
}

const capturingLogger = (lines: Array<LogLine>) =>
  Logger.add(
    Logger.make(({ annotations, logLevel, message }) => {
      const topic = Option.getOrUndefined(HashMap.get(annotations, "topic"))
      lines.push({
        level: logLevel.label,
        message: Array.isArray(message) ? message.join(" ") : String(message),
        topic: typeof topic === "string" ? topic : undefined
      })
    })
  )

const contract = (harness: Harness) =>
  describe(`ClusterTopics contract (${harness.name})`, () => {
    it.scopedLive("delivers every publish exactly once to every subscriber on every node, the publisher's own included", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const [n1, n2, n3, quiet] = yield* Effect.all([cluster.node, cluster.node, cluster.node, cluster.node])
        const topic = "room:fanout"
        const recorders = [
          yield* record(n1, topic),
          yield* record(n1, topic),
          yield* record(n2, topic),
          yield* record(n3, topic)
        ]
        const otherTopic = yield* record(n3, "room:other")

        yield* Effect.all([
          publishAll(n1, topic, range(50).map((i) => sequenced(1, i))),
          publishAll(n2, topic, range(50).map((i) => sequenced(2, i)))
        ], { concurrency: 2 })
        yield* settle(quiet, topic, recorders)

        const expected = [...range(50).map((i) => `1:${i}`), ...range(50).map((i) => `2:${i}`)].sort()
        for (const recorder of recorders) {
          expect(idsOf(recorder).sort()).toEqual(expected)
          expect(recorder.all).toHaveLength(101) // 100 messages and the barrier, nothing twice
        }
        expect(otherTopic.all).toEqual([])
      }))

    it.scopedLive("payloads arrive byte-exact; local subscribers get the publisher's own Uint8Array", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const [n1, n2, quiet] = yield* Effect.all([cluster.node, cluster.node, cluster.node])
        const topic = "bytes"
        const local = yield* record(n1, topic)
        const remote = yield* record(n2, topic)
        // Sizes around the Redis protocol's edges: empty, tiny, and bigger than one socket read.
        const payloads = [0, 1, 2, 3, 17, 255, 4096, 65_537, 300_000].map((size) => {
          const bytes = new Uint8Array(randomBytes(size))
          // Zeros and CRLF, which a text or line-based path would mangle.
          bytes.set([0, 13, 10, 0].slice(0, size))
          if (size > 8) bytes.fill(0, size - 4)
          return bytes
        })
        // A view into a larger buffer: only its own bytes may travel.
        const backing = new Uint8Array(randomBytes(64))
        payloads.push(backing.subarray(10, 30))

        yield* publishAll(n1, topic, payloads)
        yield* settle(quiet, topic, [local, remote])

        expect(local.payloads()).toHaveLength(payloads.length)
        expect(remote.payloads()).toHaveLength(payloads.length)
        payloads.forEach((payload, i) => {
          expect(local.payloads()[i]).toBe(payload)
          const got = remote.payloads()[i]
          expect(got).toBeInstanceOf(Uint8Array)
          expect(got?.byteLength).toBe(payload.byteLength)
          expect(got !== undefined && bytesEqual(got, payload)).toBe(true)
        })
      }))

    it.scopedLive("each subscriber sees each publisher's messages in publish order (1000 each, two publishers at once)", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const [n1, n2, n3] = yield* Effect.all([cluster.node, cluster.node, cluster.node])
        const topic = "room:fifo"
        // n1 and n2 publish and subscribe: their subscribers mix the local path (own publishes)
        // with the remote one (the other node's).
        const recorders = [yield* record(n1, topic), yield* record(n2, topic), yield* record(n3, topic)]

        yield* Effect.all([
          publishAll(n1, topic, range(1000).map((i) => sequenced(1, i))),
          publishAll(n2, topic, range(1000).map((i) => sequenced(2, i)))
        ], { concurrency: 2 })
        yield* eventually("2000 messages at every subscriber", () => recorders.every((r) => r.all.length >= 2000))

        for (const recorder of recorders) {
          const seqs = seqsByPublisher(recorder)
          expect(seqs.get(1)).toEqual(range(1000))
          expect(seqs.get(2)).toEqual(range(1000))
        }
      }), 20_000)

    it.scopedLive("publishAll keeps the batch's order and its place among the node's single publishes", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const [n1, n2, quiet] = yield* Effect.all([cluster.node, cluster.node, cluster.node])
        const topic = "room:batches"
        const recorders = [yield* record(n1, topic), yield* record(n2, topic)]
        // Batches of 1 to 50 between single publishes, none awaited before the next is written.
        const batches = range(20).map((b) => range(b * 5 + 1).map(() => 0))
        let seq = 0
        const writes = batches.flatMap((batch) => [
          n1.publish(topic, sequenced(1, seq++)),
          n1.publishAll(batch.map(() => ({ topic, payload: sequenced(1, seq++) })))
        ])
        yield* Effect.all(writes, { concurrency: "unbounded" })
        yield* n1.publishAll([])
        yield* settle(quiet, topic, recorders)
        for (const recorder of recorders) expect(seqsByPublisher(recorder).get(1)).toEqual(range(seq))
      }), 20_000)

    it.scopedLive("a node holds one subscription per topic however many local subscribers it has; the last one out unsubscribes", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const [n1, n2, quiet] = yield* Effect.all([cluster.node, cluster.node, cluster.node])
        const topic = "room:refcount"

        // Concurrently, so two of them wait on the first one's SUBSCRIBE.
        const [a, b, c] = yield* Effect.all([
          recordClosable(n1, topic),
          recordClosable(n1, topic),
          recordClosable(n1, topic)
        ], { concurrency: "unbounded" })
        expect(yield* cluster.subscribedNodes(topic)).toBe(1)
        expect(yield* n1.stats).toEqual({ topics: 1, subscribers: 3 })

        const d = yield* recordClosable(n2, topic)
        expect(yield* cluster.subscribedNodes(topic)).toBe(2)

        yield* a.close
        yield* b.close
        expect(yield* cluster.subscribedNodes(topic)).toBe(2)
        expect(yield* n1.stats).toEqual({ topics: 1, subscribers: 1 })
        yield* n2.publish(topic, sequenced(2, 0))
        yield* settle(quiet, topic, [c.recorder, d.recorder])
        expect(idsOf(c.recorder)).toEqual(["2:0"])
        expect(a.recorder.all).toEqual([])
        expect(b.recorder.all).toEqual([])

        yield* c.close
        expect(yield* cluster.subscribedNodes(topic)).toBe(1)
        expect(yield* n1.stats).toEqual({ topics: 0, subscribers: 0 })
        yield* d.close
        expect(yield* cluster.subscribedNodes(topic)).toBe(0)

        // And back again.
        const e = yield* record(n1, topic)
        expect(yield* cluster.subscribedNodes(topic)).toBe(1)
        yield* n2.publish(topic, sequenced(2, 1))
        yield* settle(quiet, topic, [e])
        expect(idsOf(e)).toEqual(["2:1"])
      }))

    it.scopedLive("the same function subscribed twice is two subscribers", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const [n1, quiet] = yield* Effect.all([cluster.node, cluster.node])
        const recorder = makeRecorder()
        yield* n1.subscribe("twice", recorder.handler)
        yield* n1.subscribe("twice", recorder.handler)
        expect(yield* n1.stats).toEqual({ topics: 1, subscribers: 2 })
        yield* quiet.publish("twice", sequenced(9, 0))
        yield* settle(quiet, "twice", [recorder])
        expect(idsOf(recorder)).toEqual(["9:0", "9:0"])
      }))

    it.scopedLive("clusters with different names never hear each other", () =>
      Effect.gen(function*() {
        const [clusterA, clusterB] = yield* Effect.all([harness.cluster, harness.cluster])
        const [a1, aPublisher] = yield* Effect.all([clusterA.node, clusterA.node])
        const [b1, bQuiet] = yield* Effect.all([clusterB.node, clusterB.node])
        const inA = yield* record(a1, "shared-name")
        const inB = yield* record(b1, "shared-name")

        yield* aPublisher.publish("shared-name", sequenced(1, 0))
        yield* eventually("delivery inside cluster A", () => inA.all.length === 1)
        // Published in B after A's publish was confirmed: had A's message leaked into B, it would be here first.
        yield* settle(bQuiet, "shared-name", [inB])
        expect(inB.payloads()).toEqual([])
        expect(yield* clusterB.subscribedNodes("shared-name")).toBe(1)
      }))

    it.scopedLive("closing a subscription's scope stops its delivery, locally and remotely, and no one else's", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const [n1, n2, quiet] = yield* Effect.all([cluster.node, cluster.node, cluster.node])
        const topic = "room:leave"
        const a = yield* recordClosable(n1, topic)
        const b = yield* record(n1, topic)
        const c = yield* recordClosable(n2, topic)
        const d = yield* record(n2, topic)

        yield* n1.publish(topic, sequenced(1, 0))
        yield* settle(quiet, topic, [a.recorder, b, c.recorder, d])
        yield* a.close
        yield* c.close
        yield* n1.publish(topic, sequenced(1, 1))
        yield* n2.publish(topic, sequenced(2, 0))
        yield* settle(quiet, topic, [b, d])

        expect(idsOf(a.recorder)).toEqual(["1:0"])
        expect(idsOf(c.recorder)).toEqual(["1:0"])
        expect(a.recorder.all).toHaveLength(2) // and the first barrier only
        // Sorted: n2's own publish reaches d without the round trip, so it may overtake n1's.
        expect(idsOf(b).sort()).toEqual(["1:0", "1:1", "2:0"])
        expect(idsOf(d).sort()).toEqual(["1:0", "1:1", "2:0"])
      }))

    it.scopedLive("a throwing handler is logged and does not keep the message from the other subscribers", () =>
      Effect.gen(function*() {
        const cluster = yield* harness.cluster
        const lines: Array<LogLine> = []
        const [n1, n2] = yield* Effect.all([cluster.node, cluster.node]).pipe(Effect.provide(capturingLogger(lines)))
        const quiet = yield* cluster.node
        const topic = "room:throws"
        let calls = 0
        const broken = () => {
          calls++
          throw new Error("subscriber bug")
        }
        // Subscribed first, so each node calls it before the healthy subscriber.
        yield* n1.subscribe(topic, broken)
        const healthy1 = yield* record(n1, topic)
        yield* n2.subscribe(topic, broken)
        const healthy2 = yield* record(n2, topic)

        yield* publishAll(n1, topic, range(10).map((i) => sequenced(1, i)))
        yield* publishAll(n2, topic, range(10).map((i) => sequenced(2, i)))
        yield* settle(quiet, topic, [healthy1, healthy2])

        expect(healthy1.payloads()).toHaveLength(20)
        expect(healthy2.payloads()).toHaveLength(20)
        expect(calls).toBe(42) // 20 messages and a barrier, on each of two nodes
        const reported = lines.filter((line) => line.level === "ERROR" && line.topic === topic)
        expect(reported).toHaveLength(42)
      }))
  })

contract(memoryHarness)
contract(redisHarness())

describe("ClusterTopics over Redis", () => {
  it.scopedLive("uses the channel weft:{<cluster>}:topic:<topic> and drops frames it did not write", () =>
    Effect.gen(function*() {
      const cluster = randomClusterName()
      const admin = yield* RedisModule.make({ url: redisUrl })
      const lines: Array<LogLine> = []
      const subscriber = yield* makeRedisNode(cluster).pipe(Effect.provide(capturingLogger(lines)))
      const publisher = yield* makeRedisNode(cluster)
      const topic = "orders/7 new"
      const channel = channelOf(cluster, topic)
      expect(channel).toBe(`weft:{${cluster}}:topic:orders/7 new`)
      const recorder = yield* record(subscriber.topics, topic)
      expect(yield* numsub(admin, channel)).toBe(1)

      // Someone else's bytes on our channel, and our bytes on a channel without the namespace.
      yield* admin.use((client) => client.publish(channel, Buffer.from("not a frame")))
      yield* admin.use((client) => client.publish(topic, Buffer.from("bare")))
      yield* publisher.topics.publish(topic, sequenced(1, 0))
      yield* settle(publisher.topics, topic, [recorder])

      expect(idsOf(recorder)).toEqual(["1:0"])
      expect(lines.some((line) => line.level === "WARN" && line.topic === topic)).toBe(true)
    }))

  it.scopedLive("after a node's connections are killed, its subscriptions come back by themselves, once each", () =>
    Effect.gen(function*() {
      const cluster = randomClusterName()
      const admin = yield* RedisModule.make({ url: redisUrl })
      const [n1, n2, quiet] = yield* Effect.all([makeRedisNode(cluster), makeRedisNode(cluster), makeRedisNode(cluster)])
      const r1 = yield* record(n1.topics, "t1")
      const r1b = yield* record(n1.topics, "t1")
      const r2 = yield* record(n1.topics, "t2")
      const r3 = yield* record(n2.topics, "t1")
      const connection = n1.subscribers[0]
      if (connection === undefined) return yield* Effect.dieMessage("the node opened no subscriber connection")
      let closes = 0
      connection.on("close", () => closes++)

      yield* killConnection(admin, connection)
      yield* killConnection(admin, n1.redis.client)
      yield* eventually("the subscriber connection to drop", () => closes > 0)

      // No action from anyone: publishing until it gets through is all we do.
      yield* untilDelivered(n2.topics, "t1", [r1, r1b, r3])
      yield* untilDelivered(n2.topics, "t2", [r2])
      yield* untilDelivered(n1.topics, "t1", [r3])
      expect(yield* numsub(admin, channelOf(cluster, "t1"))).toBe(2)
      expect(yield* numsub(admin, channelOf(cluster, "t2"))).toBe(1)

      yield* publishAll(n1.topics, "t1", range(20).map((i) => sequenced(1, i)))
      yield* publishAll(n2.topics, "t1", range(20).map((i) => sequenced(2, i)))
      yield* settle(quiet.topics, "t1", [r1, r1b, r3])
      for (const recorder of [r1, r1b, r3]) {
        const seqs = seqsByPublisher(recorder)
        expect(seqs.get(1)).toEqual(range(20))
        expect(seqs.get(2)).toEqual(range(20))
      }
      expect(r2.payloads()).toEqual([])
    }))

  it.scopedLive("with no Redis to reach, publish and subscribe fail fast with TopicError and leave nothing behind", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const node = yield* makeRedisNode(randomClusterName(), `redis://127.0.0.1:${port}`)

      const published: TopicError = yield* node.topics.publish("t", sequenced(1, 0)).pipe(Effect.flip, Effect.timeout("5 seconds"))
      expect(published._tag).toBe("TopicError")
      expect(published.topic).toBe("t")
      const subscribed: TopicError = yield* node.topics.subscribe("t", () => {}).pipe(Effect.flip, Effect.timeout("5 seconds"))
      expect(subscribed._tag).toBe("TopicError")
      expect(yield* node.topics.stats).toEqual({ topics: 0, subscribers: 0 })
    }))
})

describe.runIf(hasRedisServer)("ClusterTopics when Redis itself goes away and comes back", () => {
  let server: RedisServer | undefined
  beforeAll(async () => {
    server = await makeRedisServer()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it.scopedLive("publish fails fast and delivers nothing while Redis is down; afterwards everything works again unaided", () =>
    Effect.gen(function*() {
      if (server === undefined) return yield* Effect.dieMessage("redis-server did not start")
      const { url } = server
      const cluster = randomClusterName()
      const admin = yield* RedisModule.make({ url })
      const [n1, n2, quiet] = yield* Effect.all([makeRedisNode(cluster, url), makeRedisNode(cluster, url), makeRedisNode(cluster, url)])
      const r1 = yield* record(n1.topics, "t")
      const r2 = yield* record(n2.topics, "t")
      yield* n2.topics.publish("t", sequenced(2, 0))
      yield* settle(quiet.topics, "t", [r1, r2])

      yield* Effect.promise(() => server?.stop() ?? Promise.resolve())
      yield* eventually("the nodes to see Redis go", () => !n1.redis.isReady() && !n2.redis.isReady())
      const seenBefore = r2.all.length
      const failed = yield* n2.topics.publish("t", sequenced(2, 1)).pipe(Effect.flip, Effect.timeout("5 seconds"))
      expect(failed._tag).toBe("TopicError")
      expect(r2.all).toHaveLength(seenBefore) // not even the local subscriber
      const refused = yield* n1.topics.subscribe("new-topic", () => {}).pipe(Effect.flip, Effect.timeout("5 seconds"))
      expect(refused._tag).toBe("TopicError")

      yield* Effect.promise(() => server?.start() ?? Promise.resolve())
      yield* untilDelivered(n2.topics, "t", [r1])
      yield* untilDelivered(n1.topics, "t", [r2])
      yield* eventually("every connection back", () => admin.isReady() && quiet.redis.isReady())
      expect(yield* numsub(admin, channelOf(cluster, "t"))).toBe(2)
      expect(yield* numsub(admin, channelOf(cluster, "new-topic"))).toBe(0)

      yield* publishAll(n1.topics, "t", range(20).map((i) => sequenced(1, i)))
      yield* publishAll(n2.topics, "t", range(20).map((i) => 2 + i).map((i) => sequenced(2, i)))
      yield* settle(quiet.topics, "t", [r1, r2])
      for (const recorder of [r1, r2]) {
        const seqs = seqsByPublisher(recorder)
        expect(seqs.get(1)).toEqual(range(20))
        // 2:1 was refused while Redis was down and must not turn up later.
        expect(seqs.get(2)).toEqual([0, ...range(20).map((i) => 2 + i)])
      }
    }), 20_000)
})
