/**
 * A stand-in for another company service (the Order Service), in its own Bun
 * process, calling Weft through the exported client of `@weft/api`:
 * `bun orderService.ts <url> <credential|-> <http|websocket>`.
 *
 * It reads one call per line on stdin, `{"id": 1, "call": "notify.toUser", "payload": {...}}`,
 * and answers each on stdout, `{"id": 1, "ok": <reply>}` or
 * `{"id": 1, "error": {"tag": "ApiError", "reason": "...", "message": "..."}}`.
 */
import { makeWeftClient, type WeftApiClient } from "@weft/api"
import { Effect, Either, Exit, Schema, Scope } from "effect"
import { createInterface } from "node:readline"

const [url = "", credentialArg = "-", transportArg = "http"] = process.argv.slice(2)
const transport = transportArg === "websocket" ? "websocket" : "http"
const credential = credentialArg === "-" ? undefined : credentialArg

const Request = Schema.parseJson(Schema.Struct({ id: Schema.Number, call: Schema.String, payload: Schema.Unknown }))
const decodeRequest = Schema.decodeUnknownEither(Request)

/** Calls `group.name` on the client with an untyped payload: the test process sends JSON, the client's schemas check it. */
const invoke = (weft: WeftApiClient, call: string, payload: unknown): Effect.Effect<unknown, unknown> => {
  const [group, name] = call.split(".")
  const methods: unknown = group === undefined ? undefined : (weft as unknown as Record<string, unknown>)[group]
  const method: unknown = typeof methods === "object" && methods !== null && name !== undefined
    ? (methods as Record<string, unknown>)[name]
    : undefined
  if (typeof method !== "function") return Effect.fail({ _tag: "UnknownCall", message: call })
  return Effect.suspend(() => {
    const result: unknown = method(payload)
    // The client's methods return effects with no requirements.
    return Effect.isEffect(result) ? (result as Effect.Effect<unknown, unknown>) : Effect.fail({ _tag: "NotAnEffect", message: call })
  })
}

const describe = (error: unknown) => {
  if (typeof error === "object" && error !== null) {
    const record = error as Record<string, unknown>
    const cause = record["cause"] === undefined ? "" : ` (cause: ${String(record["cause"])})`
    return { tag: String(record["_tag"]), reason: record["reason"], message: `${String(record["message"] ?? "")}${cause}` }
  }
  return { tag: "Unknown", message: String(error) }
}

const scope = Effect.runSync(Scope.make())
const weft = await Effect.runPromise(Scope.extend(makeWeftClient({ url, credential, transport }), scope))

for await (const line of createInterface({ input: process.stdin })) {
  const request = decodeRequest(line)
  if (Either.isLeft(request)) {
    console.log(JSON.stringify({ id: -1, error: { tag: "BadRequest", message: String(request.left) } }))
    continue
  }
  const { call, id, payload } = request.right
  void Effect.runPromise(
    invoke(weft, call, payload).pipe(
      Effect.timeout("20 seconds"),
      // A payload the client's schema refuses is a defect (a ParseError), not a failure: answer it too.
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.either,
      Effect.map((result) => console.log(JSON.stringify(Either.isRight(result) ? { id, ok: result.right } : { id, error: describe(result.left) })))
    )
  )
}
await Effect.runPromise(Scope.close(scope, Exit.void))
