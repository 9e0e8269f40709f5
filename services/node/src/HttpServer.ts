/**
 * The node's one listening socket: Bun.serve, owned by a Scope. HTTP routes
 * come from the roles through `NodeRoutes` (an @effect/platform router); the
 * gateway role, when the node runs it, owns the WebSocket path and Bun's
 * WebSocket handlers on the same port.
 */
import { HttpApp, HttpRouter } from "@effect/platform"
import { BunHttpServer } from "@effect/platform-bun"
import { WebSocketGateway } from "@weft/gateway"
import { Context, Effect, Layer, Option } from "effect"
import { NodeConfigService } from "./NodeConfig.ts"

/** Where roles add their HTTP routes: `NodeRoutes.use((router) => router.get(...))`. */
export class NodeRoutes extends HttpRouter.Tag("@weft/node/NodeRoutes")<NodeRoutes>() {}

export interface HttpServerInfo {
  /** The bound port (useful when configured as 0). */
  readonly port: number
  readonly hostname: string
  readonly url: string
}

export class HttpServer extends Context.Tag("@weft/node/HttpServer")<HttpServer, HttpServerInfo>() {}

/**
 * Starts listening once every route layer given in `routes` is built; on
 * release, the gateway says goodbye to its connections before the server
 * stops accepting.
 */
export const layer = <E, R>(
  routes: Layer.Layer<never, E, R>
): Layer.Layer<HttpServer, E, NodeConfigService | Exclude<R, NodeRoutes>> =>
  Layer.scoped(
    HttpServer,
    Effect.gen(function*() {
      const config = yield* NodeConfigService
      const gateway = yield* Effect.serviceOption(WebSocketGateway)
      const router = yield* NodeRoutes.router
      const app = yield* HttpRouter.toHttpApp(router)
      const runtime = yield* Effect.runtime<HttpRouter.HttpRouter.DefaultServices>()
      const handle = HttpApp.toWebHandlerRuntime(runtime)(app)
      const server = yield* Effect.acquireRelease(
        Effect.sync(() => {
          if (Option.isNone(gateway)) {
            return Bun.serve({ port: config.port, hostname: config.host, development: false, fetch: (request) => handle(request) })
          }
          const ws = gateway.value
          const server = Bun.serve({
            port: config.port,
            hostname: config.host,
            // Never Bun's HTML error page with stack traces, whatever NODE_ENV says.
            development: false,
            fetch: (request, server) => new URL(request.url).pathname === ws.path ? ws.upgrade(request, server) : handle(request),
            websocket: ws.websocket
          })
          ws.attach(server)
          return server
        }),
        (server) =>
          Effect.zipRight(
            Option.match(gateway, { onNone: () => Effect.void, onSome: (ws) => ws.drain }),
            Effect.promise(() => server.stop()).pipe(Effect.timeout("5 seconds"), Effect.ignore)
          )
      )
      const port = server.port ?? config.port
      const hostname = server.hostname ?? config.host
      const info: HttpServerInfo = { port, hostname, url: `http://${hostname}:${port}` }
      yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({ url: info.url, port }))
      return info
    })
  ).pipe(Layer.provide(routes), Layer.provide(NodeRoutes.Live), Layer.provide(BunHttpServer.layerContext))
