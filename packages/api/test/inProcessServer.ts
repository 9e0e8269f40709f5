/**
 * The service API served in the test process (vitest runs on Node): the real
 * `Server.routes` on an @effect/platform router behind a Node http server, and
 * the real `Server.makeWebSocketEndpoint` behind the same server's upgrades.
 * Node has no Bun.serve, so this file plays its part for the endpoint: the
 * upgrade callback, `ws.data`, `sendBinary`, `close`, and the socket events,
 * on the `ws` package. Bound to 127.0.0.1 on a free port; closed with the scope.
 */
import { HttpRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { createServer, type IncomingMessage, STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"
import { type RawData, WebSocketServer } from "ws"
import * as Server from "../src/Server.ts"
import * as ServiceAuth from "../src/ServiceAuth.ts"
import { StubHandlers } from "./fixtures.ts"

class TestRoutes extends HttpRouter.Tag("@weft/api/test/TestRoutes")<TestRoutes>() {}

export interface InProcessServer {
  readonly url: string
  readonly endpoint: Server.WebSocketEndpoint
  /** Sockets the `ws` server holds (to see that a refused upgrade left none). */
  readonly openSockets: () => number
}

const bytesOf = (data: RawData): Uint8Array => {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data))
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

const headersOf = (request: IncomingMessage): Headers => {
  const headers = new Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    if (typeof value === "string") headers.set(name, value)
    else if (Array.isArray(value)) headers.set(name, value.join(", "))
  }
  return headers
}

/** Writes a plain HTTP response on a socket that asked for an upgrade, as Bun does for a refused one. */
const refuseOnSocket = async (socket: Duplex, response: Response): Promise<void> => {
  const body = await response.text()
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}`]
  response.headers.forEach((value, name) => lines.push(`${name}: ${value}`))
  lines.push(`content-length: ${Buffer.byteLength(body)}`, "connection: close", "", body)
  socket.end(lines.join("\r\n"))
}

export const serve = (
  credentials: ReadonlyArray<ServiceAuth.ServiceCredential>,
  options: Server.WebSocketOptions = {}
): Effect.Effect<InProcessServer, ServiceAuth.ServiceAuthConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const services = Layer.merge(StubHandlers, ServiceAuth.layer(credentials))
    const routes = yield* Layer.build(
      TestRoutes.use(Server.routes).pipe(Layer.provideMerge(TestRoutes.Live), Layer.provide(services))
    )
    const router = yield* Effect.provide(TestRoutes.router, routes)
    const app = yield* HttpRouter.toHttpApp(router)
    const handler = yield* NodeHttpServer.makeHandler(app).pipe(Effect.provide(NodeHttpServer.layerContext))
    const endpoint = yield* Server.makeWebSocketEndpoint(options).pipe(Effect.provide(services))

    const wss = new WebSocketServer({ noServer: true, maxPayload: endpoint.websocket.maxPayloadLength })
    const server = createServer(handler)
    server.on("upgrade", (incoming: IncomingMessage, socket: Duplex, head: Buffer) => {
      const request = new Request(`http://127.0.0.1${incoming.url ?? "/"}`, { headers: headersOf(incoming) })
      let accepted: Server.RpcSocket | undefined
      const upgrader: Server.RpcWebSocketServer = {
        upgrade: (_request, { data }) => {
          accepted = data
          return true
        }
      }
      void endpoint.upgrade(request, upgrader).then((response) => {
        if (response !== undefined) return refuseOnSocket(socket, response)
        const data = accepted
        if (data === undefined) return void socket.destroy()
        wss.handleUpgrade(incoming, socket, head, (ws) => {
          const bunLike: Server.RpcWebSocket = {
            data,
            sendBinary: (bytes) => {
              ws.send(bytes)
              return bytes.byteLength
            },
            close: (code, reason) => ws.close(code, reason)
          }
          endpoint.websocket.open(bunLike)
          ws.on("message", (message, isBinary) => {
            const bytes = bytesOf(message)
            endpoint.websocket.message(bunLike, isBinary ? bytes : new TextDecoder().decode(bytes))
          })
          ws.on("close", (code, reason) => endpoint.websocket.close(bunLike, code, reason.toString()))
        })
      })
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const ws of wss.clients) ws.terminate()
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return { url: `http://127.0.0.1:${port}`, endpoint, openSockets: () => wss.clients.size }
  })
