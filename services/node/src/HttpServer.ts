/**
 * The node's one listening socket: Bun.serve, owned by a Scope. HTTP routes
 * come from the roles through `NodeRoutes` (an @effect/platform router); the
 * WebSocket upgrade path is added by the gateway role.
 */
import { HttpApp, HttpRouter } from "@effect/platform"
import { BunHttpServer } from "@effect/platform-bun"
import { Context, Effect, Layer } from "effect"
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
 * Starts listening once every route layer given in `routes` is built; stops
 * accepting connections when the scope closes.
 */
export const layer = <E, R>(routes: Layer.Layer<never, E, R>): Layer.Layer<HttpServer, E, NodeConfigService | Exclude<R, NodeRoutes>> =>
  Layer.scoped(
    HttpServer,
    Effect.gen(function*() {
      const config = yield* NodeConfigService
      const router = yield* NodeRoutes.router
      const app = yield* HttpRouter.toHttpApp(router)
      const runtime = yield* Effect.runtime<HttpRouter.HttpRouter.DefaultServices>()
      const handle = HttpApp.toWebHandlerRuntime(runtime)(app)
      const server = yield* Effect.acquireRelease(
        Effect.sync(() =>
          Bun.serve({
            port: config.port,
            hostname: config.host,
            fetch: (request) => handle(request)
          })
        ),
        (server) => Effect.promise(() => server.stop()).pipe(Effect.timeout("5 seconds"), Effect.ignore)
      )
      const port = server.port ?? config.port
      const hostname = server.hostname ?? config.host
      const info: HttpServerInfo = { port, hostname, url: `http://${hostname}:${port}` }
      yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({ url: info.url, port }))
      return info
    })
  ).pipe(Layer.provide(routes), Layer.provide(NodeRoutes.Live), Layer.provide(BunHttpServer.layerContext))
