/**
 * The node's one listening socket: Bun.serve, owned by a Scope. HTTP routes
 * come from the roles through `NodeRoutes` (an @effect/platform router).
 * WebSocket endpoints share the same port: the gateway's (`/v1/ws`, when the
 * node runs it) and any a role registers through `WebSocketEndpoints` (the
 * service API's `/rpc`).
 *
 * Bun.serve takes one `websocket` handler object for every socket, so the
 * server dispatches each socket event to the endpoint that upgraded it, told
 * apart by `ws.data`: a registered endpoint recognises its own data (`owns`);
 * sockets no registered endpoint owns are the gateway's. A request goes to an
 * endpoint when it asks for a WebSocket upgrade at the endpoint's path; every
 * other request (a POST to `/rpc`, a plain GET of `/v1/ws`) goes to the routes.
 */
import { HttpApp, HttpRouter } from "@effect/platform"
import { BunHttpServer } from "@effect/platform-bun"
import { WebSocketGateway } from "@weft/gateway"
import type { Server, ServerWebSocket, WebSocketHandler } from "bun"
import { Context, Effect, Layer, Option } from "effect"
import type { Scope } from "effect"
import { Draining } from "./Drain.ts"
import { NodeConfigService } from "./NodeConfig.ts"
import * as Tls from "./Tls.ts"

/** Where roles add their HTTP routes: `NodeRoutes.use((router) => router.get(...))`. */
export class NodeRoutes extends HttpRouter.Tag("@weft/node/NodeRoutes")<NodeRoutes>() {}

export interface HttpServerInfo {
  /** The bound port (useful when configured as 0). */
  readonly port: number
  readonly hostname: string
  readonly url: string
}

export class HttpServer extends Context.Tag("@weft/node/HttpServer")<HttpServer, HttpServerInfo>() {}

// ---------------------------------------------------------------------------
// WebSocket endpoints
// ---------------------------------------------------------------------------

/**
 * A WebSocket endpoint on the node's port. `Data` is what the endpoint puts
 * in `ws.data` when it upgrades; `owns` recognises it (an `instanceof` check
 * of the endpoint's own class is the usual way), because socket events are
 * dispatched on it.
 *
 * The per-server options of `websocket` (idle timeout, pings, backpressure
 * limit, compression) are the gateway's when the node runs it, else those of
 * the first endpoint; `maxPayloadLength` is each endpoint's own: the server
 * takes the largest and closes a socket whose endpoint allows less with 1009,
 * as Bun itself would.
 */
export interface WebSocketEndpoint<Data> {
  readonly path: string
  /** Refuses with a plain HTTP response, or upgrades (`server.upgrade(request, { data })`) and resolves to `undefined`. */
  readonly upgrade: (request: Request, server: Server<Data>) => Promise<Response | undefined>
  readonly websocket: WebSocketHandler<Data>
  /** Whether a socket's `data` is this endpoint's. */
  readonly owns: (data: unknown) => boolean
  /** Called once the server listens. */
  readonly attach?: (server: Server<Data>) => void
  /** Refuses later upgrades, when the node starts draining; live sockets stay. */
  readonly stopAccepting?: Effect.Effect<void>
  /** Closes the endpoint's sockets before the server stops; later upgrades should be refused. */
  readonly drain?: Effect.Effect<void>
}

export interface WebSocketEndpointsService {
  /** Registers an endpoint; the server (built after the routes) serves it. One endpoint per path. */
  readonly add: <Data>(endpoint: WebSocketEndpoint<Data>) => Effect.Effect<void>
  readonly all: () => ReadonlyArray<WebSocketEndpoint<unknown>>
}

/** Where roles add WebSocket endpoints; provided to the route layers given to `layer`, like `NodeRoutes`. */
export class WebSocketEndpoints
  extends Context.Tag("@weft/node/WebSocketEndpoints")<WebSocketEndpoints, WebSocketEndpointsService>()
{
  static readonly Live: Layer.Layer<WebSocketEndpoints> = Layer.sync(WebSocketEndpoints, () => {
    const endpoints: Array<WebSocketEndpoint<unknown>> = []
    return {
      add: (endpoint) =>
        Effect.suspend(() =>
          endpoints.some((existing) => existing.path === endpoint.path)
            ? Effect.dieMessage(`two WebSocket endpoints at ${endpoint.path}`)
            : Effect.sync(() => void endpoints.push(endpoint))
        ),
      all: () => endpoints
    }
  })
}

/** A route layer registering the endpoint `make` builds (in the layer's scope): `webSocketEndpoint(Api.Server.webSocketEndpoint)`. */
export const webSocketEndpoint = <Data, E, R>(
  make: Effect.Effect<WebSocketEndpoint<Data>, E, R>
): Layer.Layer<never, E, WebSocketEndpoints | Exclude<R, Scope.Scope>> =>
  Layer.scopedDiscard(Effect.flatMap(make, (endpoint) => Effect.flatMap(WebSocketEndpoints, (registry) => registry.add(endpoint))))

/** Bun's own default for `maxPayloadLength`. */
const bunMaxPayloadLength = 16 * 1024 * 1024

const isWebSocketUpgrade = (request: Request): boolean => request.headers.get("upgrade")?.toLowerCase() === "websocket"

const byteLength = (message: string | Buffer): number => (typeof message === "string" ? Buffer.byteLength(message) : message.byteLength)

/** The one `websocket` handler object Bun.serve takes, dispatching to the endpoints; `undefined` when there are none. */
const dispatcher = (
  registered: ReadonlyArray<WebSocketEndpoint<unknown>>,
  primary: WebSocketEndpoint<unknown> | undefined
): WebSocketHandler<unknown> | undefined => {
  const all = primary === undefined ? registered : [primary, ...registered]
  const first = all[0]
  if (first === undefined) return undefined
  const limitOf = (endpoint: WebSocketEndpoint<unknown>) => endpoint.websocket.maxPayloadLength ?? bunMaxPayloadLength
  const maxPayloadLength = Math.max(...all.map(limitOf))
  const pick = (ws: ServerWebSocket<unknown>): WebSocketEndpoint<unknown> | undefined => {
    for (const endpoint of registered) if (endpoint.owns(ws.data)) return endpoint
    return primary
  }
  const { backpressureLimit, closeOnBackpressureLimit, idleTimeout, perMessageDeflate, publishToSelf, sendPings } = first.websocket
  return {
    // Spread conditionally: with exactOptionalPropertyTypes an absent option must stay absent.
    ...(backpressureLimit === undefined ? {} : { backpressureLimit }),
    ...(closeOnBackpressureLimit === undefined ? {} : { closeOnBackpressureLimit }),
    ...(idleTimeout === undefined ? {} : { idleTimeout }),
    ...(perMessageDeflate === undefined ? {} : { perMessageDeflate }),
    ...(publishToSelf === undefined ? {} : { publishToSelf }),
    ...(sendPings === undefined ? {} : { sendPings }),
    maxPayloadLength,
    open: (ws) => pick(ws)?.websocket.open?.(ws),
    message: (ws, message) => {
      const endpoint = pick(ws)
      if (endpoint === undefined) return
      if (byteLength(message) > limitOf(endpoint)) return ws.close(1009, "message too big")
      return endpoint.websocket.message?.(ws, message)
    },
    close: (ws, code, reason) => pick(ws)?.websocket.close?.(ws, code, reason),
    // Only when an endpoint listens for them: Bun does less per frame without these handlers.
    ...(all.some((endpoint) => endpoint.websocket.drain !== undefined)
      ? { drain: (ws: ServerWebSocket<unknown>) => pick(ws)?.websocket.drain?.(ws) }
      : {}),
    ...(all.some((endpoint) => endpoint.websocket.ping !== undefined)
      ? { ping: (ws: ServerWebSocket<unknown>, data: Buffer) => pick(ws)?.websocket.ping?.(ws, data) }
      : {}),
    ...(all.some((endpoint) => endpoint.websocket.pong !== undefined)
      ? { pong: (ws: ServerWebSocket<unknown>, data: Buffer) => pick(ws)?.websocket.pong?.(ws, data) }
      : {})
  }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/** The largest HTTP request body the node reads. */
export const maxRequestBodyBytes = 4 * 1024 * 1024

/**
 * Starts listening once every route layer given in `routes` is built (route
 * layers may add HTTP routes through `NodeRoutes` and WebSocket endpoints
 * through `WebSocketEndpoints`); on release it drains: readiness goes false
 * and new WebSockets are refused, then (after `drainDelayMs`) the gateway and
 * the other endpoints say goodbye to their connections, then the server stops.
 */
export const layer = <E, R>(
  routes: Layer.Layer<never, E, R>
): Layer.Layer<HttpServer, E, NodeConfigService | Draining | Exclude<R, NodeRoutes | WebSocketEndpoints>> =>
  Layer.scoped(
    HttpServer,
    Effect.gen(function*() {
      const config = yield* NodeConfigService
      const draining = yield* Draining
      const gateway = yield* Effect.serviceOption(WebSocketGateway)
      const registered = (yield* WebSocketEndpoints).all()
      const router = yield* NodeRoutes.router
      const app = yield* HttpRouter.toHttpApp(router)
      const runtime = yield* Effect.runtime<HttpRouter.HttpRouter.DefaultServices>()
      const handle = HttpApp.toWebHandlerRuntime(runtime)(app)
      const primary: WebSocketEndpoint<unknown> | undefined = Option.match(gateway, {
        onNone: () => undefined,
        onSome: (ws) => ({
          path: ws.path,
          upgrade: ws.upgrade,
          websocket: ws.websocket,
          owns: () => true,
          attach: ws.attach,
          stopAccepting: ws.stopAccepting,
          drain: ws.drain
        })
      })
      const endpoints = primary === undefined ? registered : [primary, ...registered]
      const byPath = new Map(endpoints.map((endpoint) => [endpoint.path, endpoint]))
      if (byPath.size !== endpoints.length) return yield* Effect.dieMessage("two WebSocket endpoints share a path")
      const websocket = dispatcher(registered, primary)
      const tls = yield* Tls.read(config)
      const server = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const options = {
            port: config.port,
            hostname: config.host,
            // Never Bun's HTML error page with stack traces, whatever NODE_ENV says.
            development: false,
            // Bun's default is 128 MiB, read before any route (or credential check) sees it; the
            // largest legitimate body is a service API call, whose WebSocket messages are capped alike.
            maxRequestBodySize: maxRequestBodyBytes,
            ...(tls === undefined ? {} : { tls })
          }
          if (websocket === undefined) return Bun.serve({ ...options, fetch: (request) => handle(request) })
          const server = Bun.serve<unknown>({
            ...options,
            fetch: (request, server) => {
              const endpoint = isWebSocketUpgrade(request) ? byPath.get(new URL(request.url).pathname) : undefined
              return endpoint === undefined ? handle(request) : endpoint.upgrade(request, server)
            },
            websocket
          })
          for (const endpoint of endpoints) endpoint.attach?.(server)
          return server
        }),
        (server) =>
          Effect.gen(function*() {
            // Readiness goes false and new WebSockets are refused first; the clients are told to
            // leave once load balancers have had `drainDelayMs` to notice.
            yield* draining.start
            yield* Effect.forEach(endpoints, (endpoint) => endpoint.stopAccepting ?? Effect.void, { discard: true })
            yield* Effect.logInfo("draining").pipe(Effect.annotateLogs({ delayMs: config.drainDelayMs }))
            if (config.drainDelayMs > 0) yield* Effect.sleep(config.drainDelayMs)
            yield* Effect.forEach(endpoints, (endpoint) => endpoint.drain ?? Effect.void, { discard: true })
            yield* Effect.promise(() => server.stop()).pipe(Effect.timeout("5 seconds"), Effect.ignore)
          })
      )
      const port = server.port ?? config.port
      const hostname = server.hostname ?? config.host
      const info: HttpServerInfo = { port, hostname, url: `${tls === undefined ? "http" : "https"}://${hostname}:${port}` }
      yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({ url: info.url, port }))
      return info
    })
  ).pipe(
    Layer.provide(routes),
    Layer.provide(Layer.merge(NodeRoutes.Live, WebSocketEndpoints.Live)),
    Layer.provide(BunHttpServer.layerContext)
  )
