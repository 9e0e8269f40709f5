/**
 * Fixtures for the ClusterTopics suite: an adapter-neutral picture of "a cluster of nodes"
 * (so one suite runs against the memory twin and against real Redis), recorders, bounded
 * waits, and a barrier that proves nothing more is on its way.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import { connect, createServer } from "node:net"
import { Effect, Exit, Scope } from "effect"
import type IORedis from "ioredis"
import { type ClusterTopicsService, makeMemory, makeMemoryBus, makeRedis } from "../src/ClusterTopics.ts"
import * as RedisModule from "../src/Redis.ts"

export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** Random, so tests and concurrent runs sharing one Redis never hear each other. */
export const randomClusterName = (): string => `test-topics-${randomUUID()}`

export const channelOf = (cluster: string, topic: string): string => `${RedisModule.keyPrefix(cluster)}topic:${topic}`

export interface TestCluster {
  readonly name: string
  /** A new node of this cluster (its own connections under Redis), closed with the scope. */
  readonly node: Effect.Effect<ClusterTopicsService, never, Scope.Scope>
  /** How many nodes hold a subscription to `topic`: Redis `PUBSUB NUMSUB`, counting connections. */
  readonly subscribedNodes: (topic: string) => Effect.Effect<number>
}

export interface Harness {
  readonly name: string
  readonly cluster: Effect.Effect<TestCluster, never, Scope.Scope>
}

export const memoryHarness: Harness = {
  name: "memory",
  cluster: Effect.sync(() => {
    const bus = makeMemoryBus()
    return {
      name: randomClusterName(),
      node: makeMemory(bus),
      subscribedNodes: (topic) => Effect.sync(() => bus.subscribedNodes(topic))
    }
  })
}

/** A node's `Redis` service, with its connections exposed so tests can break them. */
export interface RedisNode {
  readonly topics: ClusterTopicsService
  readonly redis: RedisModule.RedisService
  /** The subscriber connections the node opened (one). */
  readonly subscribers: ReadonlyArray<IORedis>
}

export const makeRedisNode = (cluster: string, url: string = redisUrl): Effect.Effect<RedisNode, never, Scope.Scope> =>
  Effect.gen(function*() {
    const base = yield* RedisModule.make({ url })
    const subscribers: Array<IORedis> = []
    const redis: RedisModule.RedisService = {
      ...base,
      subscriber: Effect.tap(base.subscriber, (connection) => subscribers.push(connection))
    }
    const topics = yield* makeRedis({ cluster }).pipe(Effect.provideService(RedisModule.Redis, redis))
    return { topics, redis, subscribers }
  })

export const numsub = (admin: RedisModule.RedisService, channel: string): Effect.Effect<number> =>
  admin.use((client) => client.pubsub("NUMSUB", channel)).pipe(
    Effect.flatMap((reply) => {
      const count = reply[1]
      return typeof count === "number" ? Effect.succeed(count) : Effect.dieMessage(`unexpected NUMSUB reply ${String(reply)}`)
    }),
    Effect.orDie
  )

export const redisHarness = (url: string = redisUrl): Harness => ({
  name: "redis",
  cluster: Effect.gen(function*() {
    const name = randomClusterName()
    const admin = yield* RedisModule.make({ url })
    return {
      name,
      node: Effect.map(makeRedisNode(name, url), (node) => node.topics),
      subscribedNodes: (topic) => numsub(admin, channelOf(name, topic))
    }
  })
})

// ---------------------------------------------------------------------------
// Waiting, recording, barriers
// ---------------------------------------------------------------------------

/** Polls `done` on the real clock; whether it held within `timeoutMs`. */
const waitFor = (done: () => boolean, timeoutMs: number): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    while (!done()) yield* Effect.sleep("5 millis")
  }).pipe(Effect.timeoutTo({ duration: timeoutMs, onSuccess: () => true, onTimeout: () => false }))

/** Waits until `done` holds; fails the test after `timeoutMs`. */
export const eventually = (what: string, done: () => boolean, timeoutMs = 10_000): Effect.Effect<void> =>
  Effect.flatMap(waitFor(done, timeoutMs), (held) =>
    held ? Effect.void : Effect.dieMessage(`timed out after ${timeoutMs} ms waiting for ${what}`))

const barrierTokens: Array<Uint8Array> = []

export const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean =>
  a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)

const isBarrier = (payload: Uint8Array): boolean => barrierTokens.some((token) => bytesEqual(token, payload))

export interface Recorder {
  /** Everything received, barriers included. */
  readonly all: Array<Uint8Array>
  /** Received payloads other than barriers, in arrival order. */
  readonly payloads: () => Array<Uint8Array>
}

export const makeRecorder = (): Recorder & { readonly handler: (payload: Uint8Array) => void } => {
  const all: Array<Uint8Array> = []
  return { all, payloads: () => all.filter((p) => !isBarrier(p)), handler: (payload) => all.push(payload) }
}

/** Subscribes a recorder in the caller's scope. */
export const record = (node: ClusterTopicsService, topic: string) =>
  Effect.gen(function*() {
    const recorder = makeRecorder()
    yield* node.subscribe(topic, recorder.handler)
    return recorder
  })

/** Subscribes a recorder in a scope of its own, to unsubscribe it mid-test with `close`. */
export const recordClosable = (node: ClusterTopicsService, topic: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const recorder = yield* record(node, topic).pipe(Scope.extend(scope))
    return { recorder, close: Scope.close(scope, Exit.void) }
  })

/**
 * Returns once every recorder has received a fresh barrier published by `quiet`, a node with
 * no subscribers of its own. Every node gets a publisher's messages in order and Redis runs
 * PUBLISHes in order, so anything published (and confirmed) before the barrier, including a
 * duplicate that should not exist, has already arrived.
 */
export const settle = (quiet: ClusterTopicsService, topic: string, recorders: ReadonlyArray<Recorder>) =>
  Effect.gen(function*() {
    const token = new Uint8Array(randomBytes(24))
    barrierTokens.push(token)
    yield* quiet.publish(topic, token)
    yield* eventually("the barrier", () => recorders.every((r) => r.all.some((p) => bytesEqual(p, token))))
  })

/** `[publisher, seq (u32 big-endian)]`, for order checks. */
export const sequenced = (publisher: number, seq: number): Uint8Array => {
  const bytes = new Uint8Array(5)
  bytes[0] = publisher
  new DataView(bytes.buffer).setUint32(1, seq)
  return bytes
}

export const readSequenced = (payload: Uint8Array): { readonly publisher: number; readonly seq: number } => ({
  publisher: payload[0],
  seq: new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(1)
})

/**
 * Publishes fresh barriers from `publisher` until every recorder has one: for after a
 * reconnect, when publishes may fail and subscriptions come back at an unknown moment.
 */
export const untilDelivered = (publisher: ClusterTopicsService, topic: string, recorders: ReadonlyArray<Recorder>) =>
  Effect.gen(function*() {
    for (;;) {
      const token = new Uint8Array(randomBytes(24))
      barrierTokens.push(token)
      const published = yield* Effect.isSuccess(publisher.publish(topic, token))
      const arrived = () => recorders.every((r) => r.all.some((p) => bytesEqual(p, token)))
      if (published) {
        if (yield* waitFor(arrived, 200)) return
      } else {
        yield* Effect.sleep("20 millis")
      }
    }
  }).pipe(
    Effect.timeoutFail({ duration: 10_000, onTimeout: () => new Error(`no delivery on ${topic} within 10 s`) }),
    Effect.orDie
  )

// ---------------------------------------------------------------------------
// A redis-server of our own, to stop and restart (only where the binary exists)
// ---------------------------------------------------------------------------

export const hasRedisServer: boolean = (() => {
  const result = spawnSync("redis-server", ["--version"], { stdio: "ignore" })
  return result.error === undefined && result.status === 0
})()

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port"))))
    })
  })

const pingOnce = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
  })

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly start: () => Promise<void>
  readonly stop: () => Promise<void>
}

/** Bound to 127.0.0.1 on a free port, no persistence; `start` again after `stop` reuses the port. */
export const makeRedisServer = async (): Promise<RedisServer> => {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
      { stdio: "ignore" }
    )
    const deadline = Date.now() + 5_000
    while (!(await pingOnce(port))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 5 s`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const stop = async () => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()))
    running.kill("SIGTERM")
    const timer = setTimeout(() => running.kill("SIGKILL"), 5_000)
    await exited
    clearTimeout(timer)
  }
  await start()
  return { port, url: `redis://127.0.0.1:${port}`, start, stop }
}

// ---------------------------------------------------------------------------
// Breaking a connection from the server side
// ---------------------------------------------------------------------------

/** `CLIENT KILL` the server's end of `connection`, found in `CLIENT LIST` by its local port. */
export const killConnection = (admin: RedisModule.RedisService, connection: IORedis) =>
  Effect.gen(function*() {
    const port = connection.stream.localPort
    const list = yield* admin.use((client) => client.call("CLIENT", "LIST"))
    const line = typeof list === "string" && port !== undefined
      ? list.split("\n").find((l) => new RegExp(` addr=\\S+:${port} `).test(l))
      : undefined
    const id = line === undefined ? undefined : /^id=(\d+) /.exec(line)?.[1]
    if (id === undefined) return yield* Effect.dieMessage(`connection on local port ${String(port)} not in CLIENT LIST`)
    yield* admin.use((client) => client.call("CLIENT", "KILL", "ID", id))
  }).pipe(Effect.orDie)
