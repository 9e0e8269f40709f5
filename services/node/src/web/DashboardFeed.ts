/**
 * The dashboard's live feed: a WebSocket at `/v1/dashboard/feed` that sends
 * a JSON text frame (`DashboardSnapshot.Frame`) every second to each viewer.
 *
 * Bounded whatever the viewers do: one ticker for the node, not one per
 * viewer, reading the cluster's reports once per tick and encoding the frame
 * once for everyone (and doing nothing while nobody watches); at most
 * `maxViewers` sockets; a viewer whose socket still holds more than
 * `maxBufferedBytes` unsent simply misses frames until it catches up, so a
 * slow viewer costs no memory here. Viewers send nothing; what they send is
 * ignored.
 */
import { NodeStats } from "@weft/cluster"
import type { ServerWebSocket, WebSocketHandler } from "bun"
import { Clock, Duration, Effect, Layer, Schedule } from "effect"
import type { Scope } from "effect"
import { webSocketEndpoint, type WebSocketEndpoint } from "../HttpServer.ts"
import { type NodeConfig, NodeConfigService } from "../NodeConfig.ts"
import * as DashboardSnapshot from "./DashboardSnapshot.ts"

export const path = "/v1/dashboard/feed"
export const tickEvery = Duration.seconds(1)
export const maxViewers = 64
export const maxBufferedBytes = 64 * 1024

/** What Bun keeps on a viewer's socket (`ws.data`). */
export class Viewer {
  /** Frames skipped because the socket's buffer was full. */
  skipped = 0
}

type ViewerSocket = ServerWebSocket<Viewer>

const refuse = (status: number, message: string) =>
  new Response(JSON.stringify({ error: message }), { status, headers: { "content-type": "application/json" } })

export const make: Effect.Effect<WebSocketEndpoint<Viewer>, never, NodeStats.NodeStats | NodeConfigService | Scope.Scope> = Effect.gen(
  function*() {
    const stats = yield* NodeStats.NodeStats
    const config = yield* NodeConfigService
    const viewers = new Set<ViewerSocket>()
    let state = DashboardSnapshot.initial
    let latest: string | undefined
    let closing = false
    let failing = false

    const send = (socket: ViewerSocket, frame: string): void => {
      if (socket.getBufferedAmount() > maxBufferedBytes) socket.data.skipped++
      else socket.sendText(frame)
    }

    const tick = Effect.gen(function*() {
      if (viewers.size === 0) {
        // Nobody watching: forget, so that the next viewer's first rates are not averaged over the gap.
        state = DashboardSnapshot.initial
        latest = undefined
        return
      }
      const reports = yield* stats.all
      const now = yield* Clock.currentTimeMillis
      const made = DashboardSnapshot.next(state, reports, now, config.nodeId)
      state = made.state
      latest = JSON.stringify(made.frame)
      for (const socket of viewers) send(socket, latest)
      failing = false
    }).pipe(
      // Once per outage, not once a second: viewers see the frames stop (the page shows when it was updated).
      Effect.catchAll((error) =>
        failing ? Effect.void : Effect.zipRight(
          Effect.sync(() => void (failing = true)),
          Effect.logWarning(`dashboard feed: the cluster's stats are unreadable: ${error.message}`)
        )
      )
    )
    yield* Effect.forkScoped(Effect.repeat(tick, Schedule.spaced(tickEvery)))

    const websocket: WebSocketHandler<Viewer> = {
      maxPayloadLength: 1024,
      open: (socket) => {
        viewers.add(socket)
        if (latest !== undefined) send(socket, latest)
      },
      message: () => {},
      close: (socket) => {
        viewers.delete(socket)
      }
    }

    const sameOrigin = (request: Request, origin: string): boolean => {
      try {
        return new URL(origin).host === new URL(request.url).host
      } catch {
        return false
      }
    }

    return {
      path,
      upgrade: (request, server) => {
        if (closing) return Promise.resolve(refuse(503, "this node is stopping"))
        if (viewers.size >= maxViewers) return Promise.resolve(refuse(503, "too many dashboard viewers on this node"))
        // The same Origin rule as the gateway's WebSockets when one is configured; the page's own origin always.
        const origin = request.headers.get("origin")
        if (
          config.allowedOrigins !== undefined && origin !== null && !sameOrigin(request, origin) &&
          !config.allowedOrigins.includes(origin)
        ) {
          return Promise.resolve(refuse(403, "origin not allowed"))
        }
        return Promise.resolve(server.upgrade(request, { data: new Viewer() }) ? undefined : refuse(400, "expected a WebSocket upgrade"))
      },
      websocket,
      owns: (data) => data instanceof Viewer,
      drain: Effect.sync(() => {
        closing = true
        for (const socket of viewers) socket.close(1001, "node stopping")
        viewers.clear()
      })
    }
  }
)

/** The feed, on nodes that serve the dashboard (dev mode or `--dashboard`). */
export const layer = (config: NodeConfig) => (config.dev || config.dashboard ? webSocketEndpoint(make) : Layer.empty)
