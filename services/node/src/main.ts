/**
 * The Bun entry point: `bun services/node/src/main.ts [--port 8080] ...`.
 * SIGINT/SIGTERM interrupt the node, which drains and exits with code 0
 * (code 1 if the shutdown overruns drain delay + shutdown deadline + 5 s).
 */
import { BunRuntime } from "@effect/platform-bun"
import { Effect, Either, Layer } from "effect"
import { hostname } from "node:os"
import * as Node from "./Node.ts"
import * as NodeConfig from "./NodeConfig.ts"

const loaded = NodeConfig.load(process.argv.slice(2), process.env, `${hostname()}-${process.pid}`)

if (Either.isLeft(loaded)) {
  const problem = loaded.left
  if (problem._tag === "HelpRequested") {
    console.log(problem.text)
    process.exit(0)
  }
  console.error(problem.message)
  process.exit(2)
}

const config = loaded.right

const main = Effect.gen(function*() {
  yield* Effect.logInfo("starting").pipe(Effect.annotateLogs({ node: config.nodeId }))
  return yield* Layer.launch(Node.layer(config))
}).pipe(
  Effect.ensuring(Effect.logInfo("stopped")),
  Effect.annotateLogs({ node: config.nodeId }),
  Effect.provide(Node.logging(config))
)

// The drain and the actors' shutdown have their own deadlines; this is the backstop for what has
// none (a stuck finalizer): past it the process leaves anyway, with code 1.
const exitDeadlineMs = config.drainDelayMs + config.shutdownDeadlineMs + 5_000
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    setTimeout(() => {
      console.error(JSON.stringify({ message: "shutdown overran its deadline; exiting", level: "ERROR", exitDeadlineMs }))
      process.exit(1)
    }, exitDeadlineMs).unref()
  })
}

BunRuntime.runMain(main, { disablePrettyLogger: true })
