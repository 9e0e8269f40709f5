/**
 * Actor log lines name their actor: everything logged while an actor runs
 * (its handlers and hooks, and the runtime's own lines about it, such as a
 * crash) carries the `actor` annotation with its address.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, HashMap, Layer, Logger, Schema } from "effect"
import { Actor, ActorSystem, Supervision } from "@weft/actor"

class Say extends Schema.TaggedRequest<Say>()("Say", {
  payload: { text: Schema.String },
  success: Schema.Void,
  failure: Schema.Never
}) {}

class Boom extends Schema.TaggedRequest<Boom>()("Boom", {
  payload: {},
  success: Schema.Void,
  failure: Schema.Never
}) {}

const Talker = Actor.make("log-talker", [Say, Boom])

interface Line {
  readonly message: string
  readonly annotations: Record<string, unknown>
}

describe("logging", () => {
  it.scoped("log lines from an actor's handlers, hooks and crashes carry `actor`: its address", () =>
    Effect.gen(function*() {
      const lines: Array<Line> = []
      const capture = Logger.make(({ annotations, message }) => {
        lines.push({
          message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      })
      const kind = Actor.toLayer(Talker, (ctx) =>
        Effect.succeed({
          receive: {
            Say: ({ text }) => Effect.logInfo(`said ${text}`),
            Boom: () => Effect.die("boom")
          },
          started: Effect.logInfo(`started ${ctx.address.key}`)
        }), { supervision: Supervision.stop })
      const context = yield* Layer.build(kind.pipe(Layer.provideMerge(ActorSystem.layer({ name: "log-test" })))).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture))
      )
      const system = Context.get(context, ActorSystem)
      const a = yield* system.spawn(Talker, "a")
      const b = yield* system.spawn(Talker, "b")
      yield* a.ask(new Say({ text: "hello" }))
      yield* b.ask(new Say({ text: "hi" }))
      yield* Effect.exit(b.ask(new Boom()))
      yield* Effect.logInfo("outside any actor").pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))

      const actorOf = (message: string) => lines.find((line) => line.message.includes(message))?.annotations["actor"]
      expect(actorOf("started a")).toBe("log-talker/a")
      expect(actorOf("said hello")).toBe("log-talker/a")
      expect(actorOf("started b")).toBe("log-talker/b")
      expect(actorOf("said hi")).toBe("log-talker/b")
      expect(actorOf("crashed")).toBe("log-talker/b")
      expect(lines.find((line) => line.message === "outside any actor")?.annotations).not.toHaveProperty("actor")
    }))
})
