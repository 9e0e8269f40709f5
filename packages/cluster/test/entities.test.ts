/**
 * `Entities`: calls bounded by `withTimeout` are timed in
 * `ClusterMetrics.entityCallDuration` by entity type and outcome, and an
 * entity's log lines carry its address (`actor=<type>/<id>`). On the embedded
 * node (memory storage, no Redis).
 */
import { Entity, type Sharding } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { ActorSystem } from "@weft/actor"
import { ClusterMetrics, ClusterNode, Entities } from "@weft/cluster"
import { Effect, Exit, HashMap, Layer, Logger, Metric, Schema, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"

const Echo = Entity.make("metrics-echo", [
  Rpc.make("Say", { payload: { text: Schema.String }, success: Schema.String }),
  Rpc.make("Refuse", { error: Schema.String }),
  Rpc.make("Hang")
])

interface Line {
  readonly message: string
  readonly annotations: Record<string, unknown>
}
const lines: Array<Line> = []
const capture = Logger.make(({ annotations, message }) => {
  lines.push({
    message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
    annotations: Object.fromEntries(HashMap.toEntries(annotations))
  })
})

const EchoLive = Entities.toLayer(
  Echo,
  Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    yield* Effect.logInfo(`built ${address.entityId}`)
    return Echo.of({
      Say: ({ payload }) => Effect.as(Effect.logInfo(`said ${payload.text}`), payload.text),
      Refuse: () => Effect.fail("no"),
      Hang: () => Effect.never
    })
  })
)

const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const context = Effect.runPromise(
  Layer.buildWithScope(
    EchoLive.pipe(
      Layer.provideMerge(
        ClusterNode.embedded({
          nodeId: "entities-test",
          cluster: "entities-test",
          redis: undefined,
          runnerHost: "127.0.0.1",
          runnerPort: 0
        })
      ),
      Layer.provideMerge(ActorSystem.layer({ name: "entities-test" }))
    ),
    scope
  ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
)

/** Runs with the test's logger, as the node runs everything with its own. */
const run = async <A, E>(effect: Effect.Effect<A, E, Sharding.Sharding>) =>
  Effect.runPromiseExit(effect.pipe(Effect.provide(await context), Effect.provide(Logger.replace(Logger.defaultLogger, capture))))

const calls = (outcome: ClusterMetrics.CallOutcome) =>
  Effect.map(
    Metric.value(ClusterMetrics.entityCallDuration.pipe(Metric.tagged("entity", "metrics-echo"), Metric.tagged("outcome", outcome))),
    (state) => state.count
  )

describe("Entities", () => {
  it("withTimeout times each call by entity type and outcome", async () => {
    const before = await Effect.runPromise(Effect.all([calls("ok"), calls("error"), calls("timeout")]))
    const ok = await run(Effect.flatMap(Echo.client, (echo) => echo("a").Say({ text: "hi" }).pipe(Entities.withTimeout("metrics-echo/a", "5 seconds"))))
    expect(ok).toEqual(Exit.succeed("hi"))
    const refused = await run(Effect.flatMap(Echo.client, (echo) => echo("a").Refuse().pipe(Entities.withTimeout("metrics-echo/a", "5 seconds"))))
    expect(Exit.isFailure(refused)).toBe(true)
    const hung = await run(Effect.flatMap(Echo.client, (echo) => echo("b").Hang().pipe(Entities.withTimeout("metrics-echo/b", "100 millis"))))
    expect(Exit.isFailure(hung) && String(hung.cause).includes("EntityTimeout")).toBe(true)
    const after = await Effect.runPromise(Effect.all([calls("ok"), calls("error"), calls("timeout")]))
    expect(after).toEqual([before[0] + 1, before[1] + 1, before[2] + 1])
    const histogram = await Effect.runPromise(
      Metric.value(ClusterMetrics.entityCallDuration.pipe(Metric.tagged("entity", "metrics-echo"), Metric.tagged("outcome", "timeout")))
    )
    // The timed-out call waited its 100 ms deadline.
    expect(histogram.sum).toBeGreaterThanOrEqual(0.09)
  })

  it("an entity's log lines, from its build and its handlers, carry actor=<type>/<id>", async () => {
    await run(Effect.flatMap(Echo.client, (echo) => echo("c").Say({ text: "hello" }).pipe(Entities.withTimeout("metrics-echo/c", "5 seconds"))))
    const actorOf = (message: string) => lines.find((line) => line.message === message)?.annotations["actor"]
    expect(actorOf("built c")).toBe("metrics-echo/c")
    expect(actorOf("said hello")).toBe("metrics-echo/c")
  })
})
