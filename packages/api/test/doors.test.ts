/**
 * The three doors of the service API over the same stub handlers, in this process: the typed
 * client (`/rpc`), HTTP JSON (`POST /v1/api/<call>`) and gRPC. Every call of the group is served
 * by each with equal replies, and the same bad request gets the same refusal (code, reason,
 * message) from each, with the door's status from the catalogue. docs/api.md is checked against
 * the catalogue and the group.
 */
import { HttpRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { it } from "@effect/vitest"
import { Either, Effect, Exit, Layer, Redacted, Schema, Scope } from "effect"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect } from "vitest"
import { callSchemas, maxContentBytes } from "../src/Api.ts"
import { makeWeftClient } from "../src/Client.ts"
import { ErrorBody, errorKinds, type ErrorReason, type Refusal } from "../src/Errors.ts"
import * as Grpc from "../src/server/Grpc.ts"
import * as HttpJson from "../src/server/HttpJson.ts"
import * as Invoker from "../src/server/Invoker.ts"
import * as ProtoMapping from "../src/server/ProtoMapping.ts"
import * as Server from "../src/Server.ts"
import * as ServiceAuth from "../src/ServiceAuth.ts"
import { credentials, ordersKey, StubHandlers } from "./fixtures.ts"
import { type GrpcCaller, makeGrpcCaller } from "./grpcCaller.ts"

class TestRoutes extends HttpRouter.Tag("@weft/api/test/DoorRoutes")<TestRoutes>() {}

interface Doors {
  readonly url: string
  readonly grpcAddress: string
}

/** `/rpc`, `/v1/api/<call>` and the gRPC door over the stub handlers, on 127.0.0.1, for the scope. */
const serveDoors = Effect.gen(function*() {
  const services = Layer.merge(StubHandlers, ServiceAuth.layer(credentials))
  // Built once, in this scope: the HTTP JSON and gRPC doors share it, as on a node.
  const invoker = yield* Layer.build(Layer.provideMerge(Invoker.layer, services))
  const routes = yield* Layer.build(
    Layer.merge(TestRoutes.use(Server.routes), TestRoutes.use(HttpJson.routes)).pipe(
      Layer.provideMerge(TestRoutes.Live),
      Layer.provide(Layer.succeedContext(invoker))
    )
  )
  const router = yield* Effect.provide(TestRoutes.router, routes)
  const app = yield* HttpRouter.toHttpApp(router)
  const handler = yield* NodeHttpServer.makeHandler(app).pipe(Effect.provide(NodeHttpServer.layerContext))
  const server = createServer(handler)
  yield* Effect.acquireRelease(
    Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
    () => Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  )
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  const grpc = yield* Grpc.make({ host: "127.0.0.1", port: 0, closeGrace: "1 second" }).pipe(Effect.provide(invoker))
  return { url: `http://127.0.0.1:${port}`, grpcAddress: `127.0.0.1:${grpc.port}` } satisfies Doors
})

// One set of doors for the file, closed after it.
let doors: Doors
let grpcCaller: GrpcCaller
let close: () => Promise<void>
beforeAll(async () => {
  const scope = Effect.runSync(Scope.make())
  doors = await Effect.runPromise(Effect.orDie(serveDoors).pipe(Scope.extend(scope)))
  grpcCaller = await makeGrpcCaller(doors.grpcAddress)
  close = () => Effect.runPromise(Scope.close(scope, Exit.void))
}, 30_000)
afterAll(async () => {
  grpcCaller.close()
  await close()
})

const key = { authorization: `Bearer ${ordersKey}` }

/** A call over HTTP JSON: its status and JSON body. */
const http = async (tag: string, body: unknown, headers: Record<string, string> = key) => {
  const response = await fetch(`${doors.url}/v1/api/${tag}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000)
  })
  return { status: response.status, body: (await response.json()) as unknown, authenticate: response.headers.get("www-authenticate") }
}

const refusalOfBody = (body: unknown): Refusal => Schema.decodeUnknownSync(ErrorBody)(body).error

/** A call through the typed client, its reply encoded to JSON form (as the other doors send it), or its `ApiError`. */
const typed = (tag: string, payload: unknown, credential: string = ordersKey) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const weft = yield* Effect.orDie(makeWeftClient({ url: doors.url, credential: Redacted.make(credential) }))
    const dot = tag.indexOf(".")
    const method: unknown = Reflect.get(Reflect.get(weft, tag.slice(0, dot)) ?? {}, tag.slice(dot + 1))
    if (typeof method !== "function") return yield* Effect.dieMessage(`no method ${tag}`)
    const result: unknown = method(payload)
    if (!Effect.isEffect(result)) return yield* Effect.dieMessage(`${tag} is not a call`)
    // The client's calls need nothing from the context (`makeWeftClient` provided it all).
    const outcome = yield* Effect.either(result as Effect.Effect<unknown, unknown>)
    if (Either.isLeft(outcome)) return { ok: false as const, error: outcome.left }
    return { ok: true as const, reply: Schema.encodeUnknownSync(callSchemas.get(tag)!.successSchema)(outcome.right) }
  })))

const notification = { kind: "order.completed", data: { orderId: 7, lines: [1, 2.5, "x", null, true] } }

/** A valid payload for every call (a call added to the group without one here fails the first test). */
const samples: Record<string, unknown> = {
  "notify.toUser": { userId: "42", notification, deliverAt: { _tag: "Local", at: "2026-12-24T09:00" }, idempotencyKey: "k-1" },
  "notify.toUsers": { userIds: ["a", "b", "a"], notification },
  "notify.toRoom": { room: "general", notification },
  "notify.broadcast": { notification: { ...notification, respectQuietHours: true } },
  "presence.room": { room: "general" },
  "presence.user": { userId: "alice" },
  "rooms.history": { room: "general", limit: 10, after: 0 },
  "rooms.send": { room: "general", as: "bot", body: { text: "hi" }, replyTo: "e1-1" },
  "rooms.edit": { room: "general", as: "bot", id: "e1-1", body: "hi!" },
  "rooms.delete": { room: "general", as: "bot", id: "e1-1" },
  "rooms.pin": { room: "general", as: "bot", id: "e1-1", pinned: false },
  "rooms.pins": { room: "general" },
  "rooms.typing": { room: "general", as: "bot" },
  "users.settings": { userId: "alice", timeZone: "Europe/Paris", quietHours: null },
  "users.disconnect": { userId: "alice", banForSeconds: 60, reason: "spam" },
  "users.unban": { userId: "alice" },
  "cluster.stats": undefined
}

describe("every call through every door", () => {
  it("the three doors serve every call of the group with equal replies", async () => {
    expect(Object.keys(samples).sort()).toEqual(Array.from(callSchemas.keys()).sort())
    for (const [tag, payload] of Object.entries(samples)) {
      const viaTyped = await typed(tag, payload)
      const viaHttp = await http(tag, payload ?? {})
      const viaGrpc = await grpcCaller.call(tag, payload ?? {}, key)
      expect(viaTyped.ok, tag).toBe(true)
      expect(viaHttp.status, tag).toBe(200)
      // A call without a reply is `{}` over HTTP and an empty message over gRPC.
      const expected = viaTyped.ok ? viaTyped.reply ?? {} : undefined
      expect(viaHttp.body, tag).toEqual(expected)
      expect(viaGrpc, tag).toEqual({ ok: true, reply: viaTyped.ok && viaTyped.reply === undefined ? undefined : expected })
    }
  }, 60_000)
})

describe("the same refusal from every door", () => {
  const expectRefusal = async (
    tag: string,
    payload: unknown,
    reason: ErrorReason,
    headers: Record<string, string> = key,
    credential: string = ordersKey
  ): Promise<Refusal> => {
    const viaHttp = await http(tag, payload, headers)
    const refused = refusalOfBody(viaHttp.body)
    expect(refused, tag).toMatchObject({ reason, code: errorKinds[reason].code })
    expect(viaHttp.status).toBe(errorKinds[reason].http)
    const viaGrpc = await grpcCaller.call(tag, payload, headers)
    expect(viaGrpc).toEqual({
      ok: false,
      code: errorKinds[reason].grpc,
      details: refused.message,
      trailers: expect.objectContaining({ "weft-error-code": String(refused.code), "weft-error-reason": reason })
    })
    const viaTyped = await typed(tag, payload, credential)
    expect(viaTyped).toEqual({ ok: false, error: expect.objectContaining({ _tag: "ApiError", reason, message: refused.message }) })
    return refused
  }

  it("a missing credential or a wrong one: unauthorized", async () => {
    const payload = samples["notify.toUser"]
    // An empty credential is none: the typed client sends the call without one.
    const missing = await expectRefusal("notify.toUser", payload, "unauthorized", {}, "")
    expect(missing.message).toMatch(/no service credential/)
    const wrong = await expectRefusal("notify.toUser", payload, "unauthorized", { "x-weft-key": "w".repeat(40) }, "w".repeat(40))
    expect(wrong.message).toBe("unknown service credential")
    expect((await http("notify.toUser", payload, {})).authenticate).toBe("Bearer")
  })

  it("a user id of the wrong shape, or a field of the wrong type: invalid, worded alike", async () => {
    const empty = await expectRefusal("notify.toUser", { userId: "", notification }, "invalid")
    expect(empty.message).toBe("notify.toUser: userId: Expected a string at least 1 character(s) long, actual \"\"")
    await expectRefusal("notify.toUser", { userId: "u".repeat(201), notification }, "invalid")
    await expectRefusal("notify.toUsers", { userIds: [], notification }, "invalid")
    await expectRefusal("rooms.history", { room: "general", limit: 501 }, "invalid")
    await expectRefusal("users.disconnect", { userId: "alice", conn: "not-a-conn" }, "invalid")
  })

  it("a bad idempotency key: invalid", async () => {
    const bad = await expectRefusal("notify.toUser", { userId: "42", notification, idempotencyKey: "" }, "invalid")
    expect(bad.message).toMatch(/^notify\.toUser: idempotencyKey: /)
    await expectRefusal("notify.toUser", { userId: "42", notification, idempotencyKey: "k".repeat(201) }, "invalid")
  })

  it("a refusal from the handler: the same code from each door", async () => {
    const missing = await expectRefusal("notify.toUser", { userId: "missing", notification }, "not_found")
    expect(missing.message).toBe("no user missing")
  })
})

describe("the HTTP JSON door", () => {
  it("takes the idempotency key from the Idempotency-Key header, and gRPC from metadata", async () => {
    const viaHeader = await http("notify.toUser", { userId: "42", notification }, { ...key, "idempotency-key": "from-header" })
    expect(viaHeader.body).toMatchObject({ notificationId: "orders:42:from-header" })
    const viaMetadata = await grpcCaller.call("notify.toUser", { userId: "42", notification }, { ...key, "idempotency-key": "from-metadata" })
    expect(viaMetadata).toMatchObject({ ok: true, reply: { notificationId: "orders:42:from-metadata" } })
    // The same key in both places is fine; two different keys, or a key for a call without one, are not.
    const same = await http("notify.toUser", { userId: "42", notification, idempotencyKey: "k" }, { ...key, "idempotency-key": "k" })
    expect(same.body).toMatchObject({ notificationId: "orders:42:k" })
    const differ = await http("notify.toUser", { userId: "42", notification, idempotencyKey: "a" }, { ...key, "idempotency-key": "b" })
    expect(refusalOfBody(differ.body)).toMatchObject({ reason: "invalid", message: expect.stringMatching(/differ/) })
    const noKey = await http("presence.user", { userId: "42" }, { ...key, "idempotency-key": "k" })
    expect(refusalOfBody(noKey.body)).toMatchObject({ reason: "invalid", message: "presence.user: this call takes no idempotency key" })
    const empty = await http("notify.toUser", { userId: "42", notification }, { ...key, "idempotency-key": "" })
    expect(refusalOfBody(empty.body)).toMatchObject({ reason: "invalid", message: expect.stringMatching(/idempotencyKey/) })
  })

  it("refuses a body that is not JSON, an unknown field, and an unknown call, with the catalogue's codes", async () => {
    const notJson = await http("notify.toUser", "{nope")
    expect(notJson.status).toBe(400)
    expect(refusalOfBody(notJson.body)).toEqual({ code: 5000, reason: "invalid", message: "the body is not JSON" })
    const typo = await http("notify.toUser", { userID: "42", userId: "42", notification })
    expect(refusalOfBody(typo.body)).toMatchObject({ reason: "invalid", message: expect.stringMatching(/userID/) })
    const unknown = await http("notify.toEveryone", {})
    expect(unknown.status).toBe(404)
    expect(refusalOfBody(unknown.body)).toEqual({ code: 5006, reason: "unknown_call", message: "no call named \"notify.toEveryone\"" })
  })
})

describe("docs/api.md", () => {
  const doc = readFileSync(join(import.meta.dirname, "..", "..", "..", "docs", "api.md"), "utf8")

  it("lists the error catalogue as the code has it", () => {
    const table = doc.split("<!-- table: error-codes -->")[1]?.split("\n\n")[0] ?? ""
    const rows = table.split("\n").filter((line) => /^\| \d+ /.test(line)).map((line) => line.split("|").map((cell) => cell.trim()))
    expect(rows.map((cells) => [Number(cells[1]), cells[2], Number(cells[3]), cells[4], cells[5]])).toEqual(
      Object.entries(errorKinds).map(([reason, kind]) => [kind.code, `\`${reason}\``, kind.http, `\`${kind.grpcName}\``, kind.doc])
    )
  })

  it("has every call, each with a curl example at its path and its gRPC method", () => {
    for (const tag of callSchemas.keys()) {
      const section = doc.split(`### \`${tag}\``)[1]?.split("\n### ")[0] ?? ""
      expect(section, tag).toContain(`\`\`\`sh curl ${tag}\ncurl -sS -X POST "$WEFT_URL/v1/api/${tag}"`)
      const { method, service } = ProtoMapping.protoMethodOf(tag)
      expect(section, tag).toContain(`\`${service}/${method}\``)
    }
    expect(doc).toContain(`${maxContentBytes / 1024} KiB`)
  })
})
