/**
 * `bun packages/api/test/bun/server.ts`: the service API with stub handlers on
 * a plain Bun.serve (127.0.0.1, a free port): `POST /rpc` through the real
 * route, WebSocket upgrades at `/rpc` through the real endpoint and Bun's own
 * `ServerWebSocket`. Prints `{"url": ...}` once listening; stops on SIGTERM.
 * The node's endpoint registry (services/node) is not involved: this checks
 * the endpoint against Bun itself.
 */
import { HttpApp, HttpRouter } from "@effect/platform"
import { BunHttpServer, BunRuntime } from "@effect/platform-bun"
import { Effect, Layer } from "effect"
import * as Server from "../../src/Server.ts"
import * as ServiceAuth from "../../src/ServiceAuth.ts"
import { bunMaxPayloadLength as maxPayloadLength, credentials, StubHandlers } from "../fixtures.ts"

class Routes extends HttpRouter.Tag("@weft/api/test/BunRoutes")<Routes>() {}

const program = Effect.gen(function*() {
  const services = Layer.merge(StubHandlers, ServiceAuth.layer(credentials))
  const routes = yield* Layer.build(Routes.use(Server.routes).pipe(Layer.provideMerge(Routes.Live), Layer.provide(services)))
  const app = yield* HttpRouter.toHttpApp(yield* Effect.provide(Routes.router, routes))
  const handle = HttpApp.toWebHandlerRuntime(yield* Effect.runtime<HttpRouter.HttpRouter.DefaultServices>())(app)
  const endpoint = yield* Server.makeWebSocketEndpoint({ maxPayloadLength }).pipe(Effect.provide(services))
  const server = yield* Effect.acquireRelease(
    Effect.sync(() =>
      Bun.serve<Server.RpcSocket>({
        port: 0,
        hostname: "127.0.0.1",
        development: false,
        fetch: (request, server) =>
          request.headers.get("upgrade")?.toLowerCase() === "websocket" && new URL(request.url).pathname === endpoint.path
            ? endpoint.upgrade(request, server)
            : handle(request),
        websocket: endpoint.websocket
      })
    ),
    (server) => Effect.zipRight(endpoint.drain, Effect.promise(() => server.stop(true)))
  )
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.port}` }))
  return yield* Effect.never
})

BunRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(BunHttpServer.layerContext), Effect.orDie))
