/**
 * WebSocket termination on Bun.serve: the upgrade (refused before it happens
 * for a bad ticket, origin, subprotocol, too many connections or a banned
 * user), and the socket events. Each socket gets a connection actor; this module does the
 * per-frame work that must be cheap and synchronous (decode, rate limit,
 * duplicate ids) and hands valid frames to the actor. A sweeper closes silent
 * connections (heartbeat) and slow consumers.
 */
import { ActorMail, NodeLeases } from "@weft/cluster"
import { ActorSystem } from "@weft/actor"
import { Auth, type Grant } from "@weft/auth"
import { CloseCodes, Codec, ErrorCodes, type ErrorName, type Frame } from "@weft/protocol"
import type { Server, WebSocketHandler } from "bun"
import { Context, Duration, Effect, Layer, Runtime, Schedule } from "effect"
import * as ConnectionActor from "./ConnectionActor.ts"
import { broadcastChannel, ConnectionLive, Inbound, SocketClosed } from "./ConnectionActor.ts"
import * as Extensions from "./Extensions.ts"
import * as Fanout from "./Fanout.ts"
import * as GatewayMetrics from "./GatewayMetrics.ts"
import { GatewayConfigService } from "./GatewayConfig.ts"
import * as RateLimit from "./RateLimit.ts"
import * as SocketsModule from "./Sockets.ts"
import { type Socket, Sockets, type SocketState } from "./Sockets.ts"

export const path = "/v1/ws"


/**
 * Over how long a draining node spreads its clients' reconnections (each goodbye's `after` is
 * random below it): about a thousand reconnections a second, so that they do not all land on
 * the next node at once, between 1 and 10 seconds.
 */
export const drainSpreadMs = (connections: number): number => Math.min(10_000, Math.max(1_000, connections))

/**
 * Requests a connection may have unanswered at once. Publishes are answered while the connection
 * reads on, so this, not the actor's mailbox, bounds what one connection holds in memory.
 */
export const maxRequestsInFlight = 1024

/** How long a draining node waits for the answers of requests in flight before it closes the sockets. */
const drainAnswersWithin = Duration.seconds(5)
/** How long a draining socket must have sent nothing before it is closed. */
const drainQuietMs = 200

/** How long a client closed for rate abuse is told to wait before reconnecting. */
const abuseBackoffMs = 10_000

export interface WebSocketGatewayService {
  readonly path: string
  /** Refuses with a plain HTTP response, or upgrades (and resolves to `undefined`). */
  readonly upgrade: (request: Request, server: Server<SocketState>) => Promise<Response | undefined>
  readonly websocket: WebSocketHandler<SocketState>
  /** Called once the server listens. */
  readonly attach: (server: Server<SocketState>) => void
  /** New upgrades get 503 from then on (clients go to another node); live connections stay. */
  readonly stopAccepting: Effect.Effect<void>
  /** Stops accepting, says goodbye to every connection and closes it. */
  readonly drain: Effect.Effect<void>
  readonly connections: () => number
}

export class WebSocketGateway extends Context.Tag("@weft/gateway/WebSocketGateway")<WebSocketGateway, WebSocketGatewayService>() {}

const refuse = (status: number, message: string): Response =>
  new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8" } })

const isRequest = (frame: Frame.ClientFrame): frame is Extract<Frame.ClientFrame, { readonly id: number }> =>
  frame.type === "subscribe" || frame.type === "unsubscribe" || frame.type === "publish" || frame.type === "rpc" ||
  frame.type === "refresh"

const make = Effect.gen(function*() {
  const config = yield* GatewayConfigService
  const sockets = yield* Sockets
  const system = yield* ActorSystem
  const mail = yield* ActorMail.ActorMail
  const auth = yield* Auth
  const extensions = yield* Extensions.Extensions
  const fanout = yield* Fanout.Fanout
  const runtime = yield* Effect.runtime<never>()
  const runPromise = Runtime.runPromise(runtime)
  const runSync = Runtime.runSync(runtime)
  const runFork = Runtime.runFork(runtime)
  let draining = false
  let next = 0
  // Connection actors are reachable from every node by address (`conn/<node>/<incarnation>-<n>`).
  yield* mail.accept(ConnectionActor.Connection)

  const detach = (grant: Grant, conn: string) => extensions.closed({ conn, node: config.nodeId, grant })

  const upgrade = (request: Request, server: Server<SocketState>): Promise<Response | undefined> =>
    runPromise(Effect.gen(function*() {
      if (draining) return refuse(503, "this node is draining; connect to another")
      const origin = request.headers.get("origin")
      if (config.allowedOrigins !== undefined && (origin === null || !config.allowedOrigins.includes(origin))) {
        return refuse(403, "origin not allowed")
      }
      const offered = request.headers.get("sec-websocket-protocol")
      const encoding = Codec.negotiate(offered)
      if (encoding === undefined) {
        return refuse(400, `unsupported subprotocol; offer ${Codec.subprotocols.msgpack} or ${Codec.subprotocols.json}`)
      }
      const redeemed = yield* Effect.either(auth.redeem(new URL(request.url).searchParams.get("ticket")))
      if (redeemed._tag === "Left") {
        return redeemed.left.reason === "unavailable"
          ? refuse(503, "tickets are unavailable right now")
          : refuse(401, "missing, invalid, expired or used ticket")
      }
      const grant = redeemed.right
      const key = mail.localKey(++next)
      const address = `conn/${key}`
      const refused = yield* extensions.admit({ conn: address, node: config.nodeId, grant })
      if (refused !== undefined) return refuse(refused.status, refused.message)
      // The ban is checked once the connection is registered with its user: a ban stored before
      // `users.disconnect` listed the user's connections is seen here, and one stored after it
      // closes this connection with the others (docs/auth.md, "Revocation").
      const ban = yield* Effect.either(auth.banned(grant.user))
      if (ban._tag === "Left") {
        yield* detach(grant, address)
        return refuse(503, "bans cannot be checked right now")
      }
      if (ban.right !== undefined) {
        yield* detach(grant, address)
        return refuse(403, `this user is banned until ${new Date(ban.right.until).toISOString()}`)
      }
      const now = Date.now()
      const state: SocketState = {
        key,
        grant,
        encoding,
        bucket: RateLimit.makeBucket(config.rateBurst, now),
        inFlight: new Set(),
        lastFrameAt: now,
        actor: undefined,
        closing: false
      }
      const upgraded = server.upgrade(request, {
        data: state,
        headers: offered === null ? {} : { "Sec-WebSocket-Protocol": Codec.subprotocols[encoding] }
      })
      if (upgraded) return undefined
      yield* detach(grant, address)
      return refuse(400, "expected a WebSocket upgrade")
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.as(Effect.logError("websocket upgrade failed", cause), refuse(500, "internal error"))
      )
    ))

  const sendError = (socket: Socket, id: number | undefined, name: ErrorName, message: string): void => {
    sockets.send(socket, { type: "error", ...(id === undefined ? {} : { id }), code: ErrorCodes[name], name, message })
  }

  const close = (socket: Socket, code: number, reason: string): void => {
    if (socket.data.closing) return
    socket.data.closing = true
    socket.close(code, reason)
  }

  const websocket: WebSocketHandler<SocketState> = {
    maxPayloadLength: config.maxFrameBytes,
    backpressureLimit: config.slowConsumerBytes,
    closeOnBackpressureLimit: false,
    // A backstop: the sweeper closes silent connections (4001) well before this.
    idleTimeout: Math.min(960, Math.ceil((3 * config.heartbeatMs) / 1000)),
    sendPings: true,
    open: (socket) => {
      sockets.add(socket)
      const { grant, key } = socket.data
      sockets.send(socket, {
        type: "welcome",
        protocol: "weft.v1",
        conn: `conn/${key}`,
        user: grant.user,
        ...(grant.device === undefined ? {} : { device: grant.device }),
        node: config.nodeId,
        heartbeat: config.heartbeatMs,
        limits: {
          maxFrameBytes: config.maxFrameBytes,
          maxSubscriptions: config.maxSubscriptions,
          ratePerSecond: config.ratePerSecond
        },
        ...(grant.expiresAt === undefined ? {} : { expiresAt: grant.expiresAt })
      })
      // Every connection hears broadcasts (the service API's notify.broadcast).
      runFork(Effect.ignore(fanout.subscribe(socket, broadcastChannel)))
      const spawned = runSync(Effect.either(system.spawn(ConnectionActor.Connection, key)))
      if (spawned._tag === "Left") close(socket, CloseCodes.internal_error, "could not start the connection")
      else socket.data.actor = spawned.right
    },
    message: (socket, raw) => {
      const state = socket.data
      const now = Date.now()
      state.lastFrameAt = now
      const decoded = Codec.decodeClientFrame(raw, state.encoding)
      const frame = decoded._tag === "Right" ? decoded.right : undefined
      GatewayMetrics.recordIn(frame === undefined ? "invalid" : frame.type)
      // The id an error answers with (a ping's too); only requests are tracked as in flight.
      const id = frame === undefined ? (decoded._tag === "Left" ? decoded.left.id : undefined) : "id" in frame ? frame.id : undefined
      const requestId = frame !== undefined && isRequest(frame) ? frame.id : undefined
      // Every frame takes a token, readable or not, so junk cannot bypass the limit.
      const verdict = RateLimit.take(state.bucket, config.ratePerSecond, config.rateBurst, now)
      if (verdict === "abuse") {
        sockets.send(socket, { type: "goodbye", reason: "policy", reconnect: true, after: abuseBackoffMs })
        return close(socket, CloseCodes.policy_violation, "rate limit exceeded repeatedly")
      }
      if (verdict === "refuse") return sendError(socket, id, "rate_limited", `more than ${config.ratePerSecond} frames per second`)
      if (decoded._tag === "Left") {
        const error = decoded.left
        return void sockets.send(socket, {
          type: "error",
          ...(error.id === undefined ? {} : { id: error.id }),
          code: error.code,
          name: error.name,
          message: error.detail
        })
      }
      if (frame === undefined) return
      // Liveness answers never wait behind slow requests in the connection's mailbox.
      if (frame.type === "ping") return void sockets.send(socket, frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id })
      if (frame.type === "pong") return
      if (requestId !== undefined) {
        if (state.inFlight.has(requestId)) return sendError(socket, requestId, "duplicate_id", `request ${requestId} is still in flight`)
        if (state.inFlight.size >= maxRequestsInFlight) {
          return sendError(socket, requestId, "unavailable", `more than ${maxRequestsInFlight} requests in flight; wait for answers`)
        }
        state.inFlight.add(requestId)
      }
      const actor = state.actor
      // The frame was decoded against the same Schema the message declares: skip re-validation.
      const told = actor === undefined ? undefined : runSync(Effect.either(actor.tell(new Inbound({ frame }, true))))
      if (told === undefined || told._tag === "Left") {
        if (requestId !== undefined) state.inFlight.delete(requestId)
        sendError(socket, requestId, "unavailable", "the connection cannot take more requests right now")
      }
    },
    close: (socket) => {
      socket.data.closing = true
      sockets.remove(socket)
      runFork(fanout.unsubscribe(socket, broadcastChannel))
      const actor = socket.data.actor
      const told = actor === undefined ? undefined : runSync(Effect.either(actor.tell(new SocketClosed())))
      // No actor to clean up after itself: release the user registration here.
      if (told === undefined || told._tag === "Left") runFork(detach(socket.data.grant, `conn/${socket.data.key}`))
    }
  }

  /** Closes connections silent for two heartbeats, and slow consumers under the `disconnect` policy. */
  const sweep = Effect.sync(() => {
    const now = Date.now()
    for (const socket of sockets.all()) {
      if (socket.data.closing) continue
      if (now - socket.data.lastFrameAt > 2 * config.heartbeatMs) {
        close(socket, CloseCodes.heartbeat_timeout, "no frame within two heartbeats")
      } else if (config.slowConsumerPolicy === "disconnect" && socket.getBufferedAmount() > config.slowConsumerBytes) {
        // Likely dropped with the rest of the backlog, but worth the attempt.
        sockets.send(socket, { type: "goodbye", reason: "slow-consumer", reconnect: true })
        close(socket, CloseCodes.slow_consumer, "slow consumer")
      }
    }
  })
  yield* Effect.forkScoped(
    Effect.repeat(sweep, Schedule.spaced(Duration.millis(Math.min(1000, Math.max(50, config.heartbeatMs / 4)))))
  )

  const stopAccepting = Effect.sync(() => {
    draining = true
  })

  /** Tells every client to reconnect (goodbye `draining`), and closes each socket once its answers are out. */
  const sendAway = Effect.gen(function*() {
    const leaving = Array.from(sockets.all())
    const window = drainSpreadMs(leaving.length)
    for (const socket of leaving) {
      sockets.send(socket, { type: "goodbye", reason: "draining", reconnect: true, after: Math.floor(Math.random() * window) })
    }
    const saidGoodbyeAt = Date.now()
    // Requests already sent get their answers before the close, so that a client does not resend
    // (and duplicate) a publish that was stored: a socket closes once it has nothing in flight and
    // has been quiet for a moment (frames sent before the goodbye reached the client are still on
    // their way). Bounded, so that a stuck request or a chatty client cannot hold the node.
    const closeQuiet = Effect.sync(() => {
      const now = Date.now()
      let open = 0
      for (const socket of leaving) {
        if (socket.data.closing) continue
        // Quiet since the goodbye too: a socket silent before it may still have a request on its
        // way, sent before the client read the goodbye.
        if (socket.data.inFlight.size === 0 && now - Math.max(socket.data.lastFrameAt, saidGoodbyeAt) >= drainQuietMs) {
          close(socket, CloseCodes.going_away, "server shutting down")
        } else open++
      }
      return open === 0
    })
    yield* closeQuiet.pipe(
      Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("10 millis") }),
      Effect.timeout(drainAnswersWithin),
      Effect.ignore
    )
    for (const socket of leaving) close(socket, CloseCodes.going_away, "server shutting down")
  })

  const drain = Effect.zipRight(stopAccepting, sendAway)

  // The cluster took this node for dead (its lease lapsed: frozen, or cut off from Redis, past
  // it) and dropped its connections from rooms and users; they reconnect, here or elsewhere, and
  // register again. Staying would leave them out of presence for as long as they live.
  const leases = yield* Effect.serviceOption(NodeLeases.NodeLeases)
  if (leases._tag === "Some") yield* leases.value.onLapse(() => runFork(sendAway))

  return {
    path,
    upgrade,
    websocket,
    attach: (server) => sockets.setServer(server),
    stopAccepting,
    drain,
    connections: () => sockets.count()
  } satisfies WebSocketGatewayService
})

/** The gateway role: sockets, fan-out, connection actors and the upgrade path. */
export const layer = Layer.scoped(WebSocketGateway, make).pipe(
  Layer.provideMerge(ConnectionLive),
  Layer.provideMerge(Fanout.layer),
  Layer.provideMerge(SocketsModule.layer),
  Layer.provideMerge(Extensions.layer)
)
