/**
 * `WeftApi` served at `/rpc` on the node's HTTP stack, msgpack both ways:
 *
 * - HTTP: `POST /rpc`, @effect/rpc's HTTP protocol (`routes`, for an
 *   @effect/platform router such as the node's `NodeRoutes`).
 * - WebSocket: an upgrade at `/rpc` (`makeWebSocketEndpoint`), an
 *   @effect/rpc server protocol over Bun's `ServerWebSocket`. The node's
 *   Bun.serve owns upgrades, so this module hands it an endpoint (upgrade +
 *   socket handlers) instead of opening a socket of its own.
 *
 * Both need the handlers (`WeftApi.toLayer(...)`) and `ServiceAuth` (see
 * `ServiceAuth.ts`). The credential is checked for every call by the
 * middleware; over WebSocket also on the upgrade request, which is refused
 * with 401 before the upgrade. The upgrade request's headers are added to
 * every call made on that socket, as @effect/rpc's own socket protocol does,
 * so a call needs no credential of its own but is still checked.
 *
 * The WebSocket types here are the few members of Bun's `Server` and
 * `ServerWebSocket` this module uses, so the package type-checks without
 * Bun's types and the endpoint fits the node's `WebSocketEndpoint` registry
 * structurally.
 */
import { Headers } from "@effect/platform"
import type { HttpRouter } from "@effect/platform"
import { RpcMessage, RpcSerialization, RpcServer } from "@effect/rpc"
import type { Rpc, RpcGroup } from "@effect/rpc"
import { Effect, FiberSet, Mailbox, Runtime, Schema } from "effect"
import type { Scope } from "effect"
import { type ServiceAuth, WeftApi } from "./Api.ts"
import { ServiceCredentials } from "./ServiceAuth.ts"

/** Where the service API is served, over HTTP (POST) and WebSocket (upgrade). */
export const path = "/rpc"

/** The handlers of every call of `WeftApi`: what `WeftApi.toLayer(...)` provides. */
export type Handlers = Rpc.ToHandler<RpcGroup.Rpcs<typeof WeftApi>>

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/**
 * Adds `POST /rpc` to `router`; mount with `NodeRoutes.use(Server.routes)`.
 * The RPC server runs in the scope of the route layer.
 */
export const routes = <E, R>(
  router: HttpRouter.HttpRouter.Service<E, R>
): Effect.Effect<void, never, Handlers | ServiceAuth | Scope.Scope> =>
  Effect.gen(function*() {
    const app = yield* RpcServer.toHttpApp(WeftApi, { spanPrefix: "WeftApi" }).pipe(
      Effect.provide(RpcSerialization.layerMsgPack)
    )
    yield* router.post(path, app)
  })

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

/** What `ws.data` holds for a service API socket. */
export class RpcSocket {
  constructor(
    /** The RPC server's client id for this socket. */
    readonly clientId: number,
    /** The calling service, as authenticated at the upgrade (each call is checked again). */
    readonly service: string,
    /** The upgrade request's headers, added to every call on this socket. */
    readonly headers: ReadonlyArray<[string, string]>,
    /** One msgpack parser per socket: a parser keeps the partial frame state of its stream. */
    readonly parser: RpcSerialization.Parser
  ) {}
}

/** The members of Bun's `ServerWebSocket<RpcSocket>` used here. */
export interface RpcWebSocket {
  readonly data: RpcSocket
  sendBinary(data: Uint8Array): number
  close(code?: number, reason?: string): void
}

/** The member of Bun's `Server<RpcSocket>` used here. */
export interface RpcWebSocketServer {
  upgrade(request: Request, options: { data: RpcSocket; headers?: HeadersInit }): boolean
}

/** An endpoint for the node's WebSocket registry (`HttpServer.WebSocketEndpoint<RpcSocket>` in services/node). */
export interface WebSocketEndpoint {
  readonly path: string
  readonly upgrade: (request: Request, server: RpcWebSocketServer) => Promise<Response | undefined>
  readonly websocket: {
    readonly maxPayloadLength: number
    open(ws: RpcWebSocket): void
    message(ws: RpcWebSocket, message: string | Uint8Array): void
    close(ws: RpcWebSocket, code: number, reason: string): void
  }
  readonly owns: (data: unknown) => boolean
  /** Closes every socket (1001) and refuses later upgrades with 503. */
  readonly drain: Effect.Effect<void>
  readonly connections: () => number
}

export interface WebSocketOptions {
  /** Largest message a client may send; a bigger one closes the socket with 1009. Default 4 MiB. */
  readonly maxPayloadLength?: number
}

/** The messages a client sends, checked before they reach the RPC server (the wire is not trusted). */
const FromClient = Schema.Union(
  Schema.Struct({
    _tag: Schema.Literal("Request"),
    id: Schema.String,
    tag: Schema.String,
    payload: Schema.Unknown,
    headers: Schema.Array(Schema.mutable(Schema.Tuple(Schema.String, Schema.String))),
    traceId: Schema.optional(Schema.String),
    spanId: Schema.optional(Schema.String),
    sampled: Schema.optional(Schema.Boolean)
  }),
  Schema.Struct({ _tag: Schema.Literal("Ack", "Interrupt"), requestId: Schema.String }),
  Schema.Struct({ _tag: Schema.Literal("Ping", "Eof") })
)
const isFromClient = Schema.is(FromClient)

const refuse = (status: number, message: string, headers: Record<string, string> = {}): Response =>
  new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } })

const encoder = new TextEncoder()

/**
 * The service API's WebSocket endpoint and the RPC server behind it, running
 * in the caller's scope; register it with the node's
 * `HttpServer.webSocketEndpoint(Server.makeWebSocketEndpoint())`.
 */
export const makeWebSocketEndpoint = (
  options: WebSocketOptions = {}
): Effect.Effect<WebSocketEndpoint, never, Handlers | ServiceAuth | ServiceCredentials | Scope.Scope> =>
  Effect.gen(function*() {
    const credentials = yield* ServiceCredentials
    const serialization = RpcSerialization.msgPack
    const disconnects = yield* Mailbox.make<number>()
    const sockets = new Map<number, RpcWebSocket>()
    let nextClientId = 0
    let draining = false

    // `Protocol.make` hands over the function that feeds the RPC server; it buffers until the server runs.
    let writeRequest: (clientId: number, message: RpcMessage.FromClientEncoded) => Effect.Effect<void> = () => Effect.void
    const protocol = yield* RpcServer.Protocol.make((write) => {
      writeRequest = write
      return Effect.succeed({
        disconnects,
        send: (clientId, response) =>
          Effect.sync(() => {
            const ws = sockets.get(clientId)
            if (ws === undefined) return
            const parser = ws.data.parser
            let encoded: Uint8Array | string | undefined
            try {
              encoded = parser.encode(response)
            } catch (cause) {
              // A value msgpack cannot carry: the client gets a defect instead of waiting forever.
              encoded = parser.encode(RpcMessage.ResponseDefectEncoded(cause))
            }
            if (encoded === undefined) return
            // Bun queues past the backpressure limit (-1) and reports 0 only for a closed socket,
            // whose close handler tells the RPC server: nothing to do here either way.
            ws.sendBinary(typeof encoded === "string" ? encoder.encode(encoded) : encoded)
          }),
        end: () => Effect.void,
        clientIds: Effect.sync(() => new Set(sockets.keys())),
        initialMessage: Effect.succeedNone,
        supportsAck: true,
        supportsTransferables: false,
        supportsSpanPropagation: true
      })
    })
    yield* RpcServer.make(WeftApi, { spanPrefix: "WeftApi" }).pipe(
      Effect.provideService(RpcServer.Protocol, protocol),
      Effect.interruptible,
      Effect.forkScoped
    )

    // Socket events arrive outside Effect; their work runs in fibers owned by this scope.
    const runFork = yield* FiberSet.makeRuntime<never>()
    const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())

    const upgrade = (request: Request, server: RpcWebSocketServer): Promise<Response | undefined> =>
      runPromise(
        Effect.gen(function*() {
          if (draining) return refuse(503, "this node is draining; connect to another")
          const received: Record<string, string> = {}
          request.headers.forEach((value, name) => {
            received[name] = value
          })
          const headers = Headers.fromInput(received)
          const caller = yield* Effect.either(credentials.authenticate(headers))
          if (caller._tag === "Left") return refuse(401, caller.left.message, { "www-authenticate": "Bearer" })
          const data = new RpcSocket(nextClientId++, caller.right.service, Object.entries(headers), serialization.unsafeMake())
          if (server.upgrade(request, { data })) {
            yield* Effect.logDebug("service API socket opened").pipe(Effect.annotateLogs({ service: data.service }))
            return undefined
          }
          return refuse(400, "expected a WebSocket upgrade")
        }).pipe(
          Effect.catchAllCause((cause) =>
            Effect.as(Effect.logError("service API upgrade failed", cause), refuse(500, "internal error"))
          )
        )
      )

    const message = (ws: RpcWebSocket, raw: string | Uint8Array): void => {
      const state = ws.data
      let decoded: ReadonlyArray<unknown>
      try {
        decoded = state.parser.decode(raw)
      } catch {
        return ws.close(1007, "not msgpack")
      }
      const messages: Array<RpcMessage.FromClientEncoded> = []
      for (const item of decoded) {
        if (!isFromClient(item)) return ws.close(1008, "not an RPC message")
        messages.push(item._tag === "Request" ? { ...item, headers: [...state.headers, ...item.headers] } : item)
      }
      // One fiber per socket message, in arrival order, like @effect/rpc's own socket server.
      if (messages.length > 0) runFork(Effect.forEach(messages, (item) => writeRequest(state.clientId, item), { discard: true }))
    }

    const drain = Effect.sync(() => {
      draining = true
      for (const ws of Array.from(sockets.values())) ws.close(1001, "server shutting down")
    })

    return {
      path,
      upgrade,
      websocket: {
        maxPayloadLength: options.maxPayloadLength ?? 4 * 1024 * 1024,
        open: (ws) => void sockets.set(ws.data.clientId, ws),
        message,
        close: (ws) => {
          sockets.delete(ws.data.clientId)
          // The RPC server interrupts the socket's calls in flight.
          disconnects.unsafeOffer(ws.data.clientId)
        }
      },
      owns: (data) => data instanceof RpcSocket,
      drain,
      connections: () => sockets.size
    }
  })
