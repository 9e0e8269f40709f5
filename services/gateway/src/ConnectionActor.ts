/**
 * The connection actor: one per WebSocket, pinned to its node, addressed
 * `conn/<node>/<incarnation>-<n>` from anywhere in the cluster (through ActorMail). It owns
 * the connection's subscriptions and answers its requests; the socket handler
 * in front of it has already decoded, rate-limited and de-duplicated frames.
 *
 * A crash closes the connection (1011) instead of restarting with fresh state:
 * the socket's subscriptions live in Bun and would no longer match the
 * actor's. The client reconnects and subscribes again.
 *
 * It also keeps the connection's credentials: a countdown to the JWT's `exp`
 * (`CredentialExpiry`) asks the client for a new JWT (`refresh-required`) and
 * closes the connection (4003) when none came; a `refresh` replaces the grant
 * (new channels, new expiry), and subscriptions the new grant no longer
 * allows end with an `unsubscribed` frame. `Disconnect` is how the service
 * API's revocations reach it, from any node.
 */
import { Actor, Supervision } from "@weft/actor"
import { Auth, type Grant, type Refresh } from "@weft/auth"
import { Channel, CloseCodes, ErrorCodes, type ErrorName, Frame } from "@weft/protocol"
import type { ClusterTopics } from "@weft/cluster"
import { Effect, FiberSet, Schema } from "effect"
import * as CredentialExpiry from "./CredentialExpiry.ts"
import { type Caller, Extensions, type Position, type RequestError } from "./Extensions.ts"
import { Fanout } from "./Fanout.ts"
import { GatewayConfigService } from "./GatewayConfig.ts"
import { answer, Sockets, type Socket } from "./Sockets.ts"

/** The channel every connection is on, for messages to everyone. */
export const broadcastChannel = "broadcast"

/** A decoded frame from the connection's own socket. */
export class Inbound extends Schema.TaggedRequest<Inbound>()("Inbound", {
  payload: { frame: Frame.ClientFrame },
  success: Schema.Void,
  failure: Schema.Never
}) {}

/** A frame for the client, from anywhere in the cluster. */
export class Push extends Schema.TaggedRequest<Push>()("Push", {
  payload: { frame: Frame.ServerFrame },
  success: Schema.Void,
  failure: Schema.Never
}) {}

/** Close the connection, optionally saying goodbye first. */
export class Disconnect extends Schema.TaggedRequest<Disconnect>()("Disconnect", {
  payload: { code: Schema.Number, reason: Schema.String, goodbye: Schema.optional(Frame.Goodbye) },
  success: Schema.Void,
  failure: Schema.Never
}) {}

/** The socket is gone: release everything. */
export class SocketClosed extends Schema.TaggedRequest<SocketClosed>()("SocketClosed", {
  payload: {},
  success: Schema.Void,
  failure: Schema.Never
}) {}

/**
 * A moment of the credentials' countdown (told by the actor's own `CredentialExpiry`): time to
 * ask for a refresh, or the credentials that expired at `expiresAt` were not replaced in time.
 */
export class CredentialsDue extends Schema.TaggedRequest<CredentialsDue>()("CredentialsDue", {
  payload: { stage: Schema.Literal("refresh-required", "expired"), expiresAt: Schema.Number },
  success: Schema.Void,
  failure: Schema.Never
}) {}

export const Connection = Actor.make("conn", [Inbound, Push, Disconnect, SocketClosed, CredentialsDue])
export type ConnectionMessage = Inbound | Push | Disconnect | SocketClosed | CredentialsDue

const ackFrame = (id: number, position: Position | undefined, recovery: "ok" | "failed" | undefined): Frame.ServerFrame => ({
  type: "ack",
  id,
  ...(position === undefined ? {} : { position }),
  ...(recovery === undefined ? {} : { recovery })
})

/** The catalogue error a refused `refresh` is answered with. */
const refreshRefusal = (reason: Refresh.RefreshReason): ErrorName =>
  reason === "wrong-user" ? "wrong_user" : reason === "unavailable" ? "unavailable" : "invalid_credentials"

const callerOf = (conn: string, node: string, grant: Grant): Caller => ({
  conn,
  node,
  grant,
  canSubscribe: Channel.matcher(grant.subscribe, grant.user),
  canPublish: Channel.matcher(grant.publish, grant.user),
  canModerate: Channel.matcher(grant.moderate, grant.user)
})

const errorFrame = (id: number | undefined, name: ErrorName, message: string): typeof Frame.ErrorFrame.Type => ({
  type: "error",
  ...(id === undefined ? {} : { id }),
  code: ErrorCodes[name],
  name,
  message
})

export const ConnectionLive = Actor.toLayer(
  Connection,
  (ctx) =>
    Effect.gen(function*() {
      const sockets = yield* Sockets
      const fanout = yield* Fanout
      const extensions = yield* Extensions
      const config = yield* GatewayConfigService
      const auth = yield* Auth
      const found = sockets.get(ctx.address.key)
      if (found === undefined) {
        // The socket closed before the actor started: nothing to serve.
        yield* ctx.stop
        return {
          receive: {
            Inbound: () => Effect.void,
            Push: () => Effect.void,
            Disconnect: () => Effect.void,
            SocketClosed: () => Effect.void,
            CredentialsDue: () => Effect.void
          }
        }
      }
      const socket: Socket = found
      const address = ctx.address.toString()
      /** Who the connection is and what it may do; replaced by a successful `refresh`. */
      let caller: Caller = callerOf(address, config.nodeId, socket.data.grant)
      const subscriptions = new Set<string>()

      /** When the current credentials expire (ms); `undefined`: never. */
      let expiresAt = caller.grant.expiresAt
      const expiry = yield* CredentialExpiry.make({
        marginMs: config.refreshMarginMs,
        graceMs: config.expiryGraceMs,
        refreshRequired: (due) => Effect.ignore(ctx.self.tell(new CredentialsDue({ stage: "refresh-required", expiresAt: due }))),
        expired: (due) => Effect.ignore(ctx.self.tell(new CredentialsDue({ stage: "expired", expiresAt: due })))
      })
      yield* expiry.set(expiresAt)

      // Answers still on their way when the connection stops are abandoned with it.
      const answering = yield* FiberSet.makeRuntime<never>().pipe(
        Effect.map((run) => (answer: Effect.Effect<void>) => Effect.sync(() => void run(answer)))
      )
      const reply = (id: number | undefined, frame: Frame.ServerFrame) => answer(sockets, socket, id, frame)
      const fail = (id: number | undefined, name: ErrorName, message: string) => reply(id, errorFrame(id, name, message))
      const refused = (id: number) => (error: RequestError) => fail(id, error.name, error.message)
      const unavailable = (id: number, what: string) => (error: { readonly message: string }) =>
        fail(id, "unavailable", `could not ${what}: ${error.message}`)

      const subscribe = (id: number, channel: string, since: Position | undefined): Effect.Effect<void> => {
        if (subscriptions.has(channel)) return fail(id, "already_subscribed", `already subscribed to ${channel}`)
        // The gateway put the socket on it at open; a subscription of the connection's own could
        // be unsubscribed, taking the socket off the topic for good.
        if (channel === broadcastChannel) return fail(id, "already_subscribed", `every connection is on ${channel}`)
        if (subscriptions.size >= config.maxSubscriptions) {
          return fail(id, "too_many_subscriptions", `at most ${config.maxSubscriptions} subscriptions per connection`)
        }
        const handler = extensions.channel(channel)
        if (handler === undefined && !caller.canSubscribe(channel)) {
          return fail(id, "forbidden", `not allowed to subscribe to ${channel}`)
        }
        subscriptions.add(channel)
        let recovery: "ok" | "failed" | undefined
        const subscribed: Effect.Effect<void, RequestError | ClusterTopics.TopicError> = handler === undefined
          ? Effect.zipRight(fanout.subscribe(socket, channel), reply(id, ackFrame(id, undefined, undefined)))
          : Effect.asVoid(fanout.subscribeAfter(
            socket,
            channel,
            Effect.map(handler.subscribe(caller, channel, since), (result) => {
              recovery = result.recovery
              return { ...(result.position === undefined ? {} : { position: result.position }), messages: result.catchUp }
            }),
            // The ack, then the missed messages, then live ones.
            (result) => {
              socket.data.inFlight.delete(id)
              sockets.send(socket, ackFrame(id, result.position, recovery))
            }
          ))
        return subscribed.pipe(
          Effect.catchAll((error) =>
            Effect.zipRight(
              Effect.sync(() => subscriptions.delete(channel)),
              error._tag === "RequestError" ? refused(id)(error) : unavailable(id, "subscribe")(error)
            )
          )
        )
      }

      /** Whether the connection may stay subscribed to `channel` (asked again when its credentials change). */
      const stillAllowed = (channel: string): boolean => {
        const handler = extensions.channel(channel)
        if (handler === undefined) return caller.canSubscribe(channel)
        return handler.allows === undefined ? caller.canSubscribe(channel) : handler.allows(caller, channel)
      }

      /**
       * A `refresh`: the new JWT is checked like one sent to `POST /v1/tickets` and must be for the
       * same user and device. Then the connection takes the new grant: subscriptions it no longer
       * allows end (an `unsubscribed` frame each, before the `ack`), and the countdown restarts
       * from the new `exp` (none without one).
       */
      const refresh = (id: number, token: string): Effect.Effect<void> =>
        auth.refresh(caller.grant, token).pipe(
          Effect.matchEffect({
            onFailure: (error) =>
              Effect.zipRight(
                Effect.logDebug("refresh refused").pipe(Effect.annotateLogs({ conn: address, reason: error.reason })),
                fail(id, refreshRefusal(error.reason), error.message)
              ),
            onSuccess: (next) =>
              Effect.gen(function*() {
                caller = callerOf(address, config.nodeId, next)
                socket.data.grant = next
                for (const channel of Array.from(subscriptions)) {
                  if (stillAllowed(channel)) continue
                  subscriptions.delete(channel)
                  yield* unsubscribe(channel)
                  sockets.send(socket, { type: "unsubscribed", channel, reason: "forbidden" })
                }
                expiresAt = next.expiresAt
                yield* expiry.set(expiresAt)
                yield* reply(id, { type: "ack", id, ...(expiresAt === undefined ? {} : { expiresAt }) })
              })
          })
        )

      const unsubscribe = (channel: string): Effect.Effect<void> => {
        const handler = extensions.channel(channel)
        return Effect.zipRight(
          fanout.unsubscribe(socket, channel),
          handler === undefined ? Effect.void : handler.unsubscribe(caller, channel)
        )
      }

      const handle = (frame: Frame.ClientFrame): Effect.Effect<void> => {
        switch (frame.type) {
          case "subscribe":
            return subscribe(frame.id, frame.channel, frame.since)
          case "unsubscribe": {
            const { id, channel } = frame
            if (!subscriptions.delete(channel)) return fail(id, "not_subscribed", `not subscribed to ${channel}`)
            return Effect.zipRight(unsubscribe(channel), reply(id, { type: "ack", id }))
          }
          case "publish": {
            const { id, channel, data } = frame
            const handler = extensions.channel(channel)
            if (handler !== undefined) {
              // In line now, in frame order; the answer is awaited while the next frames are read.
              return handler.publish(caller, channel, data).pipe(
                Effect.flatMap((pending) =>
                  answering(pending.pipe(
                    Effect.flatMap((result) => reply(id, ackFrame(id, result.position, undefined))),
                    Effect.catchAll(refused(id))
                  ))
                ),
                Effect.catchAll(refused(id))
              )
            }
            if (!caller.canPublish(channel)) return fail(id, "forbidden", `not allowed to publish to ${channel}`)
            return Effect.clockWith((clock) =>
              fanout.publish({ type: "message", channel, data, from: caller.grant.user, at: clock.unsafeCurrentTimeMillis() })
            ).pipe(
              Effect.zipRight(reply(id, { type: "ack", id })),
              Effect.catchAll(unavailable(id, "publish"))
            )
          }
          case "rpc": {
            const { id, method, params } = frame
            if (method === "conn.info") {
              return reply(id, {
                type: "reply",
                id,
                result: {
                  conn: address,
                  user: caller.grant.user,
                  ...(caller.grant.device === undefined ? {} : { device: caller.grant.device }),
                  node: config.nodeId,
                  subscriptions: Array.from(subscriptions)
                }
              })
            }
            const registered = extensions.method(method)
            if (registered === undefined) return fail(id, "unknown_method", `no method ${JSON.stringify(method)}`)
            return registered.handle(caller, params).pipe(
              // `null` rather than an absent field, so every client reads a result.
              Effect.flatMap((result) => reply(id, { type: "reply", id, result: result === undefined ? null : result })),
              Effect.catchAll(refused(id))
            )
          }
          case "ping":
            return reply(undefined, frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id })
          case "pong":
            return Effect.void
          case "refresh":
            return refresh(frame.id, frame.token)
        }
      }

      const release = Effect.gen(function*() {
        yield* Effect.forEach(Array.from(subscriptions), unsubscribe, { discard: true })
        subscriptions.clear()
        yield* extensions.closed({ conn: address, node: config.nodeId, grant: caller.grant })
      })

      return {
        receive: {
          Inbound: ({ frame }) => handle(frame),
          Push: ({ frame }) => Effect.sync(() => void sockets.send(socket, frame)),
          Disconnect: ({ code, reason, goodbye }) =>
            Effect.sync(() => {
              if (goodbye !== undefined) sockets.send(socket, goodbye)
              socket.data.closing = true
              socket.close(code, reason)
            }),
          SocketClosed: () => ctx.stop,
          CredentialsDue: ({ expiresAt: due, stage }) =>
            Effect.sync(() => {
              // From a countdown a refresh has since replaced: nothing to do.
              if (due !== expiresAt || socket.data.closing) return
              if (stage === "refresh-required") {
                sockets.send(socket, {
                  type: "refresh-required",
                  expiresAt: due,
                  deadline: CredentialExpiry.deadlineOf(due, config.expiryGraceMs)
                })
                return
              }
              sockets.send(socket, { type: "goodbye", reason: "credentials-expired", reconnect: true })
              socket.data.closing = true
              socket.close(CloseCodes.credentials_expired, "credentials expired")
            })
        },
        stopping: (termination) =>
          Effect.zipRight(
            release,
            Effect.sync(() => {
              if (socket.data.closing) return
              // Stopped while the socket is open: a crash or the node shutting down.
              socket.data.closing = true
              if (termination._tag === "Shutdown") socket.close(CloseCodes.going_away, "server shutting down")
              else socket.close(CloseCodes.internal_error, "connection failed")
            })
          )
      }
    }),
  {
    activation: "explicit",
    supervision: Supervision.stop,
    // Inbound frames are rate limited before they get here, so a full mailbox means a stuck actor.
    mailbox: { capacity: 1024, overflow: "stop" }
  }
)
