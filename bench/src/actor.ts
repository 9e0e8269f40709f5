/**
 * `npm run bench:actor`: the local actor runtime against a raw Effect Queue,
 * measured in the same process, one after the other, several rounds each.
 *
 * - tell throughput: one producer fiber, one consumer; the raw baseline is a
 *   bounded `Queue` offer/take loop with the same capacity. Both send one
 *   pre-built value, so neither pays for message construction.
 * - ask round trip: sequential asks; the baseline is a request `Queue` plus a
 *   `Deferred` per request, the least a typed reply can cost.
 * - spawn rate and heap per idle actor: 100,000 explicit spawns, each started.
 */
import { ActorSystem, Actor, MailboxFull } from "@weft/actor"
import { Deferred, Effect, Queue, Schema } from "effect"
import { heapUsed, histogram, median, type Row, type ScenarioResult } from "./report.ts"

class Add extends Schema.TaggedRequest<Add>()("Add", {
  payload: { n: Schema.Number },
  success: Schema.Void,
  failure: Schema.Never
}) {}
class Echo extends Schema.TaggedRequest<Echo>()("Echo", {
  payload: { n: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

const Sink = Actor.make("bench-sink", [Add, Echo])
const Idle = Actor.make("bench-idle", [Echo])

export interface Options {
  readonly messages: number
  readonly asks: number
  readonly actors: number
  readonly rounds: number
  readonly capacity: number
}

export const defaults: Options = { messages: 1_000_000, asks: 20_000, actors: 100_000, rounds: 3, capacity: 4096 }
export const quick: Options = { messages: 100_000, asks: 2_000, actors: 10_000, rounds: 1, capacity: 4096 }

const seconds = (start: number) => (performance.now() - start) / 1000

/**
 * Raw Effect Queue: a producer offers `n` values, a consumer takes them in
 * batches (`takeBetween`), the fastest way to drain a Queue. (A consumer
 * taking one value at a time is several times slower; `takeOne` reports it.)
 */
const rawQueueThroughput = (n: number, capacity: number, takeOne = false) =>
  Effect.gen(function*() {
    const queue = yield* Queue.bounded<number>(capacity)
    let sum = 0
    const start = performance.now()
    const take = takeOne
      ? Effect.map(Queue.take(queue), (v) => {
        sum += v
      })
      : Effect.map(Queue.takeBetween(queue, 1, capacity), (chunk) => {
        for (const v of chunk) sum += v
      })
    const consumer = yield* Effect.fork(Effect.whileLoop({ while: () => sum < n, body: () => take, step: () => {} }))
    let i = 0
    yield* Effect.whileLoop({ while: () => i < n, body: () => Queue.offer(queue, 1), step: () => i++ })
    yield* consumer.await
    const elapsed = seconds(start)
    if (sum !== n) throw new Error(`raw queue lost values: ${sum}/${n}`)
    return n / elapsed
  })

/** Actor tell: the producer retries after a yield when the mailbox is full. */
const tellThroughput = (n: number) =>
  Effect.gen(function*() {
    const system = yield* ActorSystem
    const sink = system.ref(Sink, `tell-${Math.random()}`)
    const message = new Add({ n: 1 })
    const start = performance.now()
    const send: Effect.Effect<void> = sink.tell(message).pipe(
      Effect.catchIf(
        (error): error is MailboxFull => error._tag === "MailboxFull",
        () => Effect.zipRight(Effect.yieldNow(), send)
      ),
      Effect.orDie
    )
    let i = 0
    yield* Effect.whileLoop({ while: () => i < n, body: () => send, step: () => i++ })
    const total = yield* sink.ask(new Echo({ n: 0 }), { timeout: "60 seconds" })
    const elapsed = seconds(start)
    if (total !== n) throw new Error(`actor lost messages: ${total}/${n}`)
    yield* sink.stop
    return n / elapsed
  })


/** Sequential asks; latencies in microseconds. */
const askLatency = (n: number) =>
  Effect.gen(function*() {
    const system = yield* ActorSystem
    const sink = system.ref(Sink, `ask-${Math.random()}`)
    const h = histogram()
    const message = new Echo({ n: 1 })
    let i = 0
    yield* Effect.whileLoop({
      while: () => i < n,
      body: () =>
        Effect.suspend(() => {
          const start = performance.now()
          return Effect.map(sink.ask(message), () => {
            h.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)))
          })
        }),
      step: () => i++
    })
    yield* sink.stop
    return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99) }
  }).pipe(Effect.orDie)

/** A request queue and a Deferred per request: the floor for a typed reply. */
const rawAskLatency = (n: number) =>
  Effect.gen(function*() {
    const requests = yield* Queue.bounded<Deferred.Deferred<number>>(1024)
    yield* Effect.fork(Effect.forever(Effect.flatMap(Queue.take(requests), (reply) => Deferred.succeed(reply, 1))))
    const h = histogram()
    let i = 0
    yield* Effect.whileLoop({
      while: () => i < n,
      body: () =>
        Effect.gen(function*() {
          const start = performance.now()
          const reply = yield* Deferred.make<number>()
          yield* Queue.offer(requests, reply)
          yield* Deferred.await(reply)
          h.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)))
        }),
      step: () => i++
    })
    return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99) }
  })

/** Spawns `n` idle actors and waits until every one has started; then measures the heap they hold. */
const spawnAndHold = (n: number) =>
  Effect.gen(function*() {
    const system = yield* ActorSystem
    const before = heapUsed()
    const start = performance.now()
    for (let i = 0; i < n; i++) yield* system.spawn(Idle, `idle-${i}`)
    // `started` of the last actor runs after all earlier ones: forks start in order.
    yield* system.ref(Idle, `idle-${n - 1}`).ask(new Echo({ n: 0 }), { timeout: "60 seconds" })
    const elapsed = seconds(start)
    const bytes = (heapUsed() - before) / n
    return { seconds: elapsed, spawnsPerSecond: n / elapsed, bytesPerActor: bytes }
  }).pipe(Effect.orDie)

const SinkLive = (capacity: number) =>
  Actor.toLayer(Sink, () =>
    Effect.sync(() => {
      let total = 0
      return {
        receive: {
          Add: ({ n }) => Effect.sync(() => {
            total += n
          }),
          Echo: ({ n }) => Effect.sync(() => total + n)
        }
      }
    }), { mailbox: { capacity, overflow: "reject" }, activation: "onMessage" })

const IdleLive = Actor.toLayer(Idle, () =>
  Effect.sync(() => ({ receive: { Echo: ({ n }) => Effect.succeed(n) } })), { activation: "explicit" })

export const run = (options: Options): Promise<ScenarioResult> => {
  const program = Effect.gen(function*() {
    const raw: Array<number> = []
    const rawTakeOne: Array<number> = []
    const tells: Array<number> = []
    for (let round = 0; round < options.rounds; round++) {
      raw.push(yield* rawQueueThroughput(options.messages, options.capacity))
      rawTakeOne.push(yield* rawQueueThroughput(options.messages, options.capacity, true))
      tells.push(yield* tellThroughput(options.messages))
    }
    const rawAsk = yield* rawAskLatency(options.asks)
    const ask = yield* askLatency(options.asks)
    const spawn = yield* spawnAndHold(options.actors)
    const rows: Array<Row> = [
      {
        metric: "tell throughput",
        weft: median(tells),
        baseline: { name: "raw Effect Queue, batched take", value: median(raw) },
        unit: "msg/s",
        better: "higher",
        aim: ">= 0.5x raw queue"
      },
      { metric: "ask p50", weft: ask.p50, baseline: { name: "Queue + Deferred", value: rawAsk.p50 }, unit: "us", better: "lower" },
      { metric: "ask p99", weft: ask.p99, baseline: { name: "Queue + Deferred", value: rawAsk.p99 }, unit: "us", better: "lower" },
      { metric: `spawn ${options.actors.toLocaleString("en-US")} actors`, weft: spawn.seconds, unit: "s", better: "lower", aim: "<= 2 s for 100,000" },
      { metric: "spawn rate", weft: spawn.spawnsPerSecond, unit: "actors/s", better: "higher" },
      { metric: "heap per idle actor", weft: spawn.bytesPerActor, unit: "bytes", better: "lower", aim: "<= 4096 bytes" }
    ]
    return {
      scenario: "actor",
      parameters: { ...options },
      rows,
      raw: { rawQueueMsgsPerSecond: raw, rawQueueTakeOneMsgsPerSecond: rawTakeOne, tellMsgsPerSecond: tells, ask, rawAsk, spawn }
    } satisfies ScenarioResult
  })
  return Effect.runPromise(
    program.pipe(
      Effect.provide(SinkLive(options.capacity)),
      Effect.provide(IdleLive),
      Effect.provide(ActorSystem.layer({ shutdownDeadline: "30 seconds" }))
    )
  )
}
