/**
 * The service API end to end in one process: the real `Server.routes` and
 * WebSocket endpoint with stub handlers on a 127.0.0.1 listener, called with
 * `makeWeftClient` over both transports. What only a Bun node shows (the
 * node's endpoint registry on Bun.serve) is in `bunServer.test.ts`.
 */
import { FetchHttpClient, Headers, HttpClient, HttpClientRequest, Socket } from "@effect/platform"
import { RpcClient, RpcClientError, RpcMiddleware, RpcSerialization } from "@effect/rpc"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import type { Scope } from "effect"
import { pack } from "msgpackr"
import { WebSocket } from "ws"
import { ApiError, ServiceAuth, WeftApi } from "../src/Api.ts"
import { layerWeftClient, makeWeftClient, type WeftApiClient, WeftClient } from "../src/Client.ts"
import { billingKey, credentials, ordersKey } from "./fixtures.ts"
import { type InProcessServer, serve } from "./inProcessServer.ts"

const transports = ["http", "websocket"] as const

const notification = { kind: "order.completed", data: { orderId: 7, lines: [{ sku: "a", qty: 2 }] } }

const server: Effect.Effect<InProcessServer, never, Scope.Scope> = Effect.orDie(serve(credentials))

const within = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.timeoutFail(effect, { duration: "10 seconds", onTimeout: () => new Error("timed out") })

/**
 * A client below `makeWeftClient`, to send what it never sends: a credential
 * only on the HTTP request or the upgrade (`transportKey`, as the header
 * named), and a different one in each call (`callKey`).
 */
const rawClient = (options: {
  readonly url: string
  readonly transport: "http" | "websocket"
  readonly transportHeader?: { readonly name: string; readonly value: string }
  readonly callKey?: string
}): Effect.Effect<WeftApiClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { callKey, transportHeader } = options
    const transportHeaders: Record<string, string> = transportHeader === undefined ? {} : { [transportHeader.name]: transportHeader.value }
    const protocol = options.transport === "http"
      ? RpcClient.layerProtocolHttp({
        url: `${options.url}/rpc`,
        transformClient: HttpClient.mapRequest(HttpClientRequest.setHeaders(transportHeaders))
      }).pipe(Layer.provide(FetchHttpClient.layer))
      : Layer.scoped(RpcClient.Protocol, RpcClient.makeProtocolSocket()).pipe(
        Layer.provide(Layer.scoped(Socket.Socket, Socket.makeWebSocket(`${options.url.replace("http:", "ws:")}/rpc`))),
        Layer.provide(
          Layer.succeed(
            Socket.WebSocketConstructor,
            // The same bridge as the client's: `ws` implements the WHATWG interface under its own types.
            (url, protocols) => new WebSocket(url, protocols, { headers: transportHeaders }) as unknown as globalThis.WebSocket
          )
        )
      )
    const middleware = RpcMiddleware.layerClient(ServiceAuth, ({ request }) =>
      Effect.succeed(callKey === undefined ? request : { ...request, headers: Headers.set(request.headers, "x-weft-key", callKey) }))
    const context = yield* Layer.build(Layer.merge(protocol, middleware).pipe(Layer.provide(RpcSerialization.layerMsgPack)))
    return yield* Effect.provide(RpcClient.make(WeftApi), context)
  })

/** Opens a raw WebSocket to `/rpc`: the socket, or the HTTP status that refused the upgrade. */
const connectRaw = (url: string, headers: Record<string, string>): Promise<WebSocket | number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http:", "ws:")}/rpc`, { headers })
    ws.once("open", () => resolve(ws))
    ws.once("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0))
    ws.once("error", reject)
  })

/** The `message`s along an error's chain of `cause`s. */
const messagesOf = (value: unknown, depth = 0): Array<string> => {
  if (depth > 5 || typeof value !== "object" || value === null) return []
  const own = "message" in value && typeof value.message === "string" ? [value.message] : []
  return [...own, ...("cause" in value ? messagesOf(value.cause, depth + 1) : [])]
}

const closeOf = (ws: WebSocket): Promise<{ readonly code: number; readonly reason: string }> =>
  new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })))

describe.each(transports)("over %s", (transport) => {
  it.scopedLive("answers a call with the handler's value, typed, the caller named by its key", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const weft = yield* Effect.orDie(makeWeftClient({ url, credential: Redacted.make(ordersKey), transport }))
      const delivery = yield* within(weft.notify.toUser({ userId: "42", notification }))
      expect(delivery).toEqual({ status: "delivered", notificationId: "orders:42", devices: 2, duplicate: false })
      // Another service's key is another caller.
      const billing = yield* Effect.orDie(makeWeftClient({ url, credential: billingKey, transport }))
      const stats = yield* within(billing.cluster.stats())
      expect(stats.nodes.map((node) => node.node)).toEqual(["billing"])
    }))

  it.scopedLive("serves every call of the group", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const weft = yield* Effect.orDie(makeWeftClient({ url, credential: ordersKey, transport }))
      const answers = yield* within(Effect.all({
        toUsers: weft.notify.toUsers({ userIds: ["a", "b"], notification, idempotencyKey: "k1" }),
        toRoom: weft.notify.toRoom({ room: "general", notification }),
        broadcast: weft.notify.broadcast({ notification }),
        room: weft.presence.room({ room: "general" }),
        user: weft.presence.user({ userId: "alice" }),
        history: weft.rooms.history({ room: "general", limit: 10 }),
        send: weft.rooms.send({ room: "general", as: "bot", body: { text: "hi" } }),
        edit: weft.rooms.edit({ room: "general", as: "bot", id: "e1-1", body: { text: "hi!" } }),
        remove: weft.rooms.delete({ room: "general", as: "bot", id: "e1-1" }),
        pin: weft.rooms.pin({ room: "general", as: "bot", id: "e1-1", pinned: true }),
        pins: weft.rooms.pins({ room: "general" }),
        typing: weft.rooms.typing({ room: "general", as: "bot" }),
        settings: weft.users.settings({ userId: "alice", timeZone: "Europe/Paris" }),
        disconnect: weft.users.disconnect({ userId: "alice", device: "phone", reason: "lost phone" }),
        ban: weft.users.disconnect({ userId: "alice", banForSeconds: 60, reason: "spam" }),
        unban: weft.users.unban({ userId: "alice" }),
        stats: weft.cluster.stats()
      }, { concurrency: "unbounded" }))
      expect(answers.toUsers).toMatchObject({ queued: 2, refused: 0 })
      expect(answers.toRoom).toEqual({ delivered: true })
      expect(answers.broadcast).toEqual({ delivered: true })
      expect(answers.room).toEqual([{ user: "alice", devices: 2 }])
      expect(answers.user.online).toBe(true)
      expect(answers.history.epoch).toBe("e1")
      expect(answers.send.id).toBe("7-1")
      expect(answers.edit.position.offset).toBe(2)
      expect(answers.remove.position.offset).toBe(3)
      expect(answers.pin.position.offset).toBe(4)
      expect(answers.pins.map((pin) => pin.id)).toEqual(["e1-1"])
      expect(answers.typing).toBeUndefined()
      expect(answers.settings).toEqual({ timeZone: "Europe/Paris", quietHours: null })
      expect(answers.disconnect).toEqual({ disconnected: 1 })
      expect(answers.ban).toEqual({ disconnected: 3, bannedUntil: 60_000 })
      expect(answers.unban).toEqual({ unbanned: true })
      expect(answers.stats.nodes[0]?.node).toBe("orders")
    }))

  it.scopedLive("delivers the handler's ApiError as a typed failure", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const weft = yield* Effect.orDie(makeWeftClient({ url, credential: ordersKey, transport }))
      const error = yield* within(Effect.flip(weft.notify.toUser({ userId: "missing", notification })))
      expect(error).toBeInstanceOf(ApiError)
      expect(error._tag === "ApiError" ? error.reason : error._tag).toBe("not_found")
      const caught = yield* within(
        weft.notify.toRoom({ room: "missing", notification }).pipe(
          Effect.catchTag("ApiError", (failure) => Effect.succeed(`${failure.reason}: ${failure.message}`))
        )
      )
      expect(caught).toBe("not_found: no room missing")
    }))

  it.scopedLive("checks each call's own credential, whatever the connection carried", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      // The HTTP request or the upgrade carries a good key; the call itself a wrong one.
      const weft = yield* rawClient({
        url,
        transport,
        transportHeader: { name: "x-weft-key", value: ordersKey },
        callKey: "not-a-key-of-anyone-0123456789abcdef"
      })
      const error = yield* within(Effect.flip(weft.presence.user({ userId: "alice" })))
      expect(error).toEqual(new ApiError({ reason: "unauthorized", message: "unknown service credential" }))
    }))

  it.scopedLive("takes the credential as Authorization: Bearer on the request or upgrade", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const weft = yield* rawClient({ url, transport, transportHeader: { name: "authorization", value: `Bearer ${billingKey}` } })
      const stats = yield* within(weft.cluster.stats())
      expect(stats.nodes[0]?.node).toBe("billing")
    }))
})

describe("over http, a refused credential", () => {
  it.scopedLive("is a typed ApiError (unauthorized) saying what to send", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const anonymous = yield* Effect.orDie(makeWeftClient({ url, credential: undefined }))
      const missing = yield* within(Effect.flip(anonymous.notify.toUser({ userId: "42", notification })))
      expect(missing).toBeInstanceOf(ApiError)
      expect(missing).toMatchObject({ _tag: "ApiError", reason: "unauthorized" })
      expect(missing.message).toContain("X-Weft-Key")

      const wrong = yield* Effect.orDie(makeWeftClient({ url, credential: "wrong-key-wrong-key-wrong-key-wrong-key" }))
      expect(yield* within(Effect.flip(wrong.cluster.stats()))).toEqual(
        new ApiError({ reason: "unauthorized", message: "unknown service credential" })
      )
    }))
})

describe("over websocket", () => {
  it.scopedLive("refuses an upgrade without a valid credential with 401, before any socket exists", () =>
    Effect.gen(function*() {
      const { openSockets, url } = yield* server
      expect(yield* Effect.promise(() => connectRaw(url, {}))).toBe(401)
      expect(yield* Effect.promise(() => connectRaw(url, { "x-weft-key": "wrong-key-wrong-key-wrong-key-wrong-key" }))).toBe(401)
      expect(yield* Effect.promise(() => connectRaw(url, { authorization: `Bearer ${ordersKey}x` }))).toBe(401)
      expect(openSockets()).toBe(0)
    }))

  it.scopedLive("makes a client without a valid credential fail its calls with an RpcClientError", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const anonymous = yield* Effect.orDie(makeWeftClient({ url, credential: undefined, transport: "websocket" }))
      const error = yield* within(Effect.flip(anonymous.cluster.stats()))
      expect(error).toBeInstanceOf(RpcClientError.RpcClientError)
      // The refusal's status is in the socket error's cause (`ws`: "Unexpected server response: 401").
      expect(messagesOf(error).join(" / ")).toContain("401")
    }))

  it.scopedLive("closes a socket that sends something other than RPC messages (1008)", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const ws = yield* Effect.promise(() => connectRaw(url, { "x-weft-key": ordersKey }))
      if (typeof ws === "number") return expect.fail(`upgrade refused with ${ws}`)
      const closed = closeOf(ws)
      ws.send(pack({ hello: "world" }))
      expect(yield* Effect.promise(() => closed)).toEqual({ code: 1008, reason: "not an RPC message" })
    }))

  it.scopedLive("drains: says goodbye to every socket (1001), then refuses upgrades with 503", () =>
    Effect.gen(function*() {
      const { endpoint, url } = yield* server
      const ws = yield* Effect.promise(() => connectRaw(url, { "x-weft-key": ordersKey }))
      if (typeof ws === "number") return expect.fail(`upgrade refused with ${ws}`)
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 50)))
      expect(endpoint.connections()).toBe(1)
      const closed = closeOf(ws)
      yield* endpoint.drain
      expect((yield* Effect.promise(() => closed)).code).toBe(1001)
      expect(yield* Effect.promise(() => connectRaw(url, { "x-weft-key": ordersKey }))).toBe(503)
      expect(endpoint.connections()).toBe(0)
    }))
})

describe("makeWeftClient", () => {
  it.scopedLive("runs the README's example", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const env: Record<string, string | undefined> = { WEFT_KEY: ordersKey }
      // As in README.md, but for the URL:
      const weft = yield* makeWeftClient({ url, credential: env["WEFT_KEY"] })
      const delivery = yield* weft.notify.toUser({ userId: "42", notification: { kind: "order.completed", data: { orderId: 7 } } })
      expect(delivery.status).toBe("delivered")
    }).pipe(Effect.orDie))

  it.scopedLive("comes as a layer too (WeftClient)", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const stats = yield* Effect.flatMap(WeftClient, (weft) => weft.cluster.stats()).pipe(
        Effect.provide(layerWeftClient({ url, credential: billingKey, transport: "websocket" }))
      )
      expect(stats.nodes[0]?.node).toBe("billing")
    }).pipe(Effect.orDie))


  it.scopedLive("refuses a URL that is not http(s) or ws(s)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(makeWeftClient({ url: "ftp://example.com", credential: ordersKey }))
      expect(error._tag).toBe("IllegalArgumentException")
    }))

  it.scopedLive("accepts a URL that already ends with /rpc, and ws(s) URLs for either transport", () =>
    Effect.gen(function*() {
      const { url } = yield* server
      const withPath = yield* Effect.orDie(makeWeftClient({ url: `${url}/rpc`, credential: ordersKey }))
      expect((yield* within(withPath.presence.user({ userId: "bob" }))).online).toBe(false)
      const wsUrl = url.replace("http:", "ws:")
      const overWs = yield* Effect.orDie(makeWeftClient({ url: wsUrl, credential: ordersKey, transport: "websocket" }))
      expect((yield* within(overWs.presence.user({ userId: "alice" }))).online).toBe(true)
      const httpFromWs = yield* Effect.orDie(makeWeftClient({ url: wsUrl, credential: ordersKey, transport: "http" }))
      expect((yield* within(httpFromWs.presence.user({ userId: "alice" }))).online).toBe(true)
    }))
})
