/**
 * A typed client of `WeftApi` for other services (Node, Bun, Deno):
 *
 * ```ts
 * const weft = yield* makeWeftClient({ url: "http://localhost:8080", credential: process.env.WEFT_KEY })
 * const delivery = yield* weft.notify.toUser({ userId: "42", notification: { kind: "order.completed", data: { orderId: 7 } } })
 * ```
 *
 * Calls are grouped by the prefix of their name (`notify.toUser` is
 * `weft.notify.toUser`). Each fails with the call's `ApiError` or with an
 * `RpcClientError` when the transport fails. A payload that does not match the
 * call's schema is not sent: the call fails with `ApiError` `invalid`, worded
 * as the HTTP JSON and gRPC doors word it for the same payload.
 *
 * The credential travels in every call's headers (`X-Weft-Key`), which the
 * `ServiceAuth` client middleware adds; over WebSocket it is also sent on the
 * upgrade request, which the node refuses with 401 without a valid one: then
 * calls fail with an `RpcClientError` (the socket never opens) rather than an
 * `ApiError`, and the client keeps reconnecting with backoff.
 */
import { FetchHttpClient, Headers, Socket } from "@effect/platform"
import { RpcClient, RpcMiddleware, RpcSerialization } from "@effect/rpc"
import type { RpcClientError, RpcGroup } from "@effect/rpc"
import { Cause, Context, Effect, Layer, Redacted, Schema } from "effect"
import type { Scope } from "effect"
import { callSchemas, ServiceAuth, WeftApi } from "./Api.ts"
import { invalidPayload } from "./Errors.ts"

/** The generated client: `client.notify.toUser(payload)`, `client.cluster.stats()`, ... */
export type WeftApiClient = RpcClient.RpcClient<RpcGroup.Rpcs<typeof WeftApi>, RpcClientError.RpcClientError>

export interface WeftClientOptions {
  /** The node's base URL (`http://host:8080`); `/rpc` is added unless the path already ends with it. `ws:`/`wss:` work too. */
  readonly url: string
  /** The calling service's key. Absent or empty: calls go without one and are refused (`unauthorized`). */
  readonly credential: Redacted.Redacted<string> | string | undefined
  /** Default `http`: one POST per call. `websocket`: one connection for every call, reconnecting by itself. */
  readonly transport?: "http" | "websocket" | undefined
}

/** The header the client sends the credential in (the node also accepts `Authorization: Bearer`). */
export const credentialHeader = "x-weft-key"

const keyOf = (credential: WeftClientOptions["credential"]): string | undefined => {
  const key = credential === undefined ? undefined : typeof credential === "string" ? credential : Redacted.value(credential)
  return key === undefined || key.length === 0 ? undefined : key
}

/** The `/rpc` URL of `base` in the scheme the transport speaks. */
const endpointUrl = (
  base: string,
  transport: "http" | "websocket"
): Effect.Effect<string, Cause.IllegalArgumentException> =>
  Effect.try({
    try: () => {
      const url = new URL(base)
      const secure = url.protocol === "https:" || url.protocol === "wss:"
      if (!["http:", "https:", "ws:", "wss:"].includes(url.protocol)) throw new Error("unsupported scheme")
      url.protocol = transport === "websocket" ? (secure ? "wss:" : "ws:") : secure ? "https:" : "http:"
      if (!url.pathname.endsWith("/rpc")) url.pathname = `${url.pathname.replace(/\/+$/, "")}/rpc`
      return url.toString()
    },
    catch: () => new Cause.IllegalArgumentException(`makeWeftClient: ${JSON.stringify(base)} is not an http(s) or ws(s) URL`)
  })

/** The client half of `ServiceAuth`: puts the credential in every call's headers. */
const credentialMiddleware = (key: string | undefined) =>
  RpcMiddleware.layerClient(ServiceAuth, ({ request }) =>
    Effect.succeed(key === undefined ? request : { ...request, headers: Headers.set(request.headers, credentialHeader, key) }))

/**
 * A WebSocket constructor that sends the credential on the upgrade request.
 * The standard WebSocket API cannot set headers, so this uses the `ws`
 * package (loaded only for this transport; Bun ships its own `ws`).
 */
const webSocketConstructor = (key: string | undefined): Layer.Layer<Socket.WebSocketConstructor> =>
  Layer.effect(
    Socket.WebSocketConstructor,
    Effect.map(Effect.promise(() => import("ws")), ({ WebSocket }) => (url: string, protocols?: string | Array<string>) =>
      // `ws` implements the WHATWG WebSocket interface Socket.fromWebSocket uses (binaryType, the
      // on* handlers, send, close, readyState) but declares its own types; @effect/platform-node
      // bridges it the same way.
      new WebSocket(url, protocols, key === undefined ? {} : { headers: { [credentialHeader]: key } }) as unknown as globalThis.WebSocket)
  )

const protocolLayer = (
  url: string,
  transport: "http" | "websocket",
  key: string | undefined
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  transport === "http"
    ? RpcClient.layerProtocolHttp({ url }).pipe(Layer.provide(FetchHttpClient.layer))
    : Layer.scoped(RpcClient.Protocol, RpcClient.makeProtocolSocket()).pipe(
      Layer.provide(Layer.scoped(Socket.Socket, Socket.makeWebSocket(url, { openTimeout: "5 seconds" }))),
      Layer.provide(webSocketConstructor(key))
    )

/**
 * A client of the service API, alive for the scope: the WebSocket (or HTTP
 * client) closes with it.
 */
export const makeWeftClient = (
  options: WeftClientOptions
): Effect.Effect<WeftApiClient, Cause.IllegalArgumentException, Scope.Scope> =>
  Effect.gen(function*() {
    const transport = options.transport ?? "http"
    const url = yield* endpointUrl(options.url, transport)
    const key = keyOf(options.credential)
    // Built in the caller's scope (not with Effect.provide, whose scope would end with `make`).
    const context = yield* Layer.build(
      Layer.merge(protocolLayer(url, transport, key), credentialMiddleware(key)).pipe(
        Layer.provide(RpcSerialization.layerMsgPack)
      )
    )
    return checkingPayloads(yield* Effect.provide(RpcClient.make(WeftApi), context))
  })

type AnyCall = (payload: unknown, options?: unknown) => Effect.Effect<unknown, unknown>

const isCall = (value: unknown): value is AnyCall => typeof value === "function"

/**
 * `client` with each call's payload checked against the call's schema before it is sent, a
 * mismatch failing the call with `ApiError` `invalid` (the client itself would die with the
 * `ParseError`, where the other doors answer `invalid`).
 */
const checkingPayloads = (client: WeftApiClient): WeftApiClient => {
  const groups: Record<string, Record<string, AnyCall>> = {}
  for (const [tag, rpc] of callSchemas) {
    const dot = tag.indexOf(".")
    const group = tag.slice(0, dot)
    const name = tag.slice(dot + 1)
    const call: unknown = Reflect.get(Reflect.get(client, group) ?? {}, name)
    if (!isCall(call)) continue
    const encode = Schema.encodeUnknown(rpc.payloadSchema)
    const target = (groups[group] ??= {})
    target[name] = (payload, options) =>
      Effect.flatMap(Effect.mapError(encode(payload), (error) => invalidPayload(tag, error)), () => call(payload, options))
  }
  // The same shape as `client` (one function per call of the group, grouped by prefix), with the
  // same signatures: only the failure channel gained `ApiError`, which every call already has.
  return groups as unknown as WeftApiClient
}

/** The client as a service, for programs that take it from their context. */
export class WeftClient extends Context.Tag("@weft/api/WeftClient")<WeftClient, WeftApiClient>() {}

export const layerWeftClient = (options: WeftClientOptions): Layer.Layer<WeftClient, Cause.IllegalArgumentException> =>
  Layer.scoped(WeftClient, makeWeftClient(options))
