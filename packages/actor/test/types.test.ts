/**
 * Property 1, at the type level: a kind is declared with `Actor.make` from
 * Schema.TaggedRequest classes, and the declared success/failure types flow
 * into the handlers and into `ask`. Compiles small snippets with the
 * repository's own compiler options (the TypeScript compiler API) and checks
 * their diagnostics.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const testDir = Path.dirname(fileURLToPath(import.meta.url))
const repoRoot = Path.resolve(testDir, "../../..")

const compilerOptions = ((): ts.CompilerOptions => {
  const configPath = Path.join(repoRoot, "tsconfig.json")
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
    }
  })
  if (parsed === undefined) throw new Error("cannot read tsconfig.json")
  return { ...parsed.options, noEmit: true, types: [] }
})()

const header = `
import { Effect, Schema } from "effect"
import { Actor, ActorSystem } from "@weft/actor"
import type { ActorDefinition, AskError } from "@weft/actor"
class Increment extends Schema.TaggedRequest<Increment>()("Increment", {
  payload: { by: Schema.Number }, success: Schema.Number, failure: Schema.Never
}) {}
class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", { balance: Schema.Number }) {}
class Withdraw extends Schema.TaggedRequest<Withdraw>()("Withdraw", {
  payload: { amount: Schema.Number }, success: Schema.Number, failure: Overdrawn
}) {}
class Other extends Schema.TaggedRequest<Other>()("Other", { payload: {}, success: Schema.Void, failure: Schema.Never }) {}
export const use = (..._values: ReadonlyArray<unknown>): void => {}
use(Increment, Withdraw, Other, Overdrawn, ActorSystem)
export type Uses = [AskError, ActorDefinition<string, Increment>]
`

/** Type-checks each snippet (prefixed with `header`) in one program; returns the error messages per snippet. */
const typeCheck = (snippets: Record<string, string>): Record<string, Array<string>> => {
  const files = new Map<string, string>()
  for (const [name, body] of Object.entries(snippets)) {
    files.set(Path.join(testDir, `__typecheck_${name}.ts`), header + body)
  }
  const host = ts.createCompilerHost(compilerOptions)
  const readFile = host.readFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const getSourceFile = host.getSourceFile.bind(host)
  host.readFile = (fileName) => files.get(fileName) ?? readFile(fileName)
  host.fileExists = (fileName) => files.has(fileName) || fileExists(fileName)
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const text = files.get(fileName)
    return text === undefined
      ? getSourceFile(fileName, languageVersion, onError, shouldCreate)
      : ts.createSourceFile(fileName, text, languageVersion, true)
  }
  const program = ts.createProgram([...files.keys()], compilerOptions, host)
  const out: Record<string, Array<string>> = {}
  for (const [name] of Object.entries(snippets)) {
    const source = program.getSourceFile(Path.join(testDir, `__typecheck_${name}.ts`))
    if (source === undefined) throw new Error(`snippet ${name} not in program`)
    out[name] = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map((d) =>
      ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n")[0] ?? ""
    )
  }
  return out
}

const snippets = {
  // The example in Actor.make's and toLayer's documentation.
  docExample: `
const Counter = Actor.make("counter", [Increment])
const CounterLive = Actor.toLayer(Counter, () => Effect.sync(() => {
  let count = 0
  return { receive: { Increment: ({ by }) => Effect.sync(() => (count += by)) } }
}), { passivateAfter: "30 seconds" })
use(CounterLive)
`,
  // A kind with several messages; ask's type carries the declared success and failure.
  twoMessages: `
const Account = Actor.make("account", [Increment, Withdraw])
const AccountLive = Actor.toLayer(Account, () => Effect.sync(() => {
  let balance = 0
  return {
    receive: {
      Increment: ({ by }) => Effect.sync(() => (balance += by)),
      Withdraw: ({ amount }) => amount > balance ? Effect.fail(new Overdrawn({ balance })) : Effect.sync(() => (balance -= amount))
    }
  }
}))
const program = Effect.gen(function*() {
  const system = yield* ActorSystem
  const ref = system.ref(Account, "a")
  const asked: Effect.Effect<number, Overdrawn | AskError> = ref.ask(new Withdraw({ amount: 1 }))
  yield* ref.tell(new Increment({ by: 1 }))
  return asked
})
use(AccountLive, program)
`,
  // Handlers and ask against a definition typed by hand (independent of Actor.make's own typing).
  typedByHand: `
declare const Account: ActorDefinition<"account", Increment | Withdraw>
const AccountLive = Actor.toLayer(Account, () => Effect.sync(() => {
  let balance = 0
  return {
    receive: {
      Increment: ({ by }) => Effect.sync(() => (balance += by)),
      Withdraw: ({ amount }) => amount > balance ? Effect.fail(new Overdrawn({ balance })) : Effect.sync(() => (balance -= amount))
    }
  }
}))
const program = Effect.gen(function*() {
  const system = yield* ActorSystem
  const ref = system.ref(Account, "a")
  const asked: Effect.Effect<number, Overdrawn | AskError> = ref.ask(new Withdraw({ amount: 1 }))
  yield* ref.tell(new Increment({ by: 1 }))
  return asked
})
use(AccountLive, program)
`,
  // Negative controls: the hand-typed declaration with type mistakes must be rejected.
  wrongReply: `
declare const Counter: ActorDefinition<"counter", Increment>
const CounterLive = Actor.toLayer(Counter, () => Effect.sync(() => ({
  receive: { Increment: ({ by }) => Effect.succeed(String(by)) }
})))
use(CounterLive)
`,
  foreignMessage: `
declare const Counter: ActorDefinition<"counter", Increment>
const program = Effect.gen(function*() {
  const system = yield* ActorSystem
  yield* system.ref(Counter, "a").tell(new Other())
})
use(program)
`
}

describe("types: kinds declared from Schema.TaggedRequest classes", () => {
  const diagnostics = typeCheck(snippets)

  it("the documented Actor.make / Actor.toLayer example type-checks", () => {
    expect(diagnostics["docExample"]).toEqual([])
  })

  it("a kind with several messages type-checks and ask carries the declared success and failure types", () => {
    expect(diagnostics["twoMessages"]).toEqual([])
  })

  it("handlers and ask carry the message's declared types (definition typed by hand)", () => {
    expect(diagnostics["typedByHand"]).toEqual([])
  })

  it("a handler replying with the wrong type is a type error", () => {
    expect(diagnostics["wrongReply"]?.length ?? 0).toBeGreaterThan(0)
  })

  it("telling a message of another kind is a type error", () => {
    expect(diagnostics["foreignMessage"]?.length ?? 0).toBeGreaterThan(0)
  })
})
