/**
 * What the service API's calls do (`WeftApi` of @weft/api): the handlers
 * behind `/rpc`, served by the nodes with the notification role. Each call
 * goes to the entity that owns its subject (the user, the room) wherever it
 * lives, bounded by a timeout, and every failure comes back as a typed
 * `ApiError`.
 *
 * Notifications to users: the delivery time is worked out from the user's
 * settings (`LocalTime.deliveryTime`: a local time, quiet hours); due now,
 * the user entity stores it in the inbox and sends it to every online
 * device; later, it waits in the durable scheduler (`ScheduledDelivery`).
 * With an idempotency key the notification id is derived from the key, so a
 * retry that slips past the idempotency store (expired, or the first call
 * failed half-way through a batch) is still dropped by the user's inbox.
 */
import { ApiError, Caller, Delivery, type DeliverAt, WeftApi } from "@weft/api"
import type { NotificationContent } from "@weft/api"
import { ApiMetrics, Idempotency } from "@weft/api/server"
import { Position, Room, RoomEvent, RoomRefused } from "@weft/chat"
import { ClusterTopics, Entities, NodeStats } from "@weft/cluster"
import { broadcastChannel, Fanout } from "@weft/gateway"
import { Codec } from "@weft/protocol"
import { Clock, Effect, Either, Schema } from "effect"
import * as LocalTime from "./LocalTime.ts"
import * as ScheduledDelivery from "./ScheduledDelivery.ts"
import { Scheduler } from "./Scheduler.ts"
import { User, UserRefused } from "./User.ts"

const callTimeout = "10 seconds"

/** Users a batch notifies at once. */
const batchConcurrency = 16

/** Bounds a call to an entity and turns whatever it fails with into an `ApiError`. */
const call = <A, E extends { readonly _tag: string }>(address: string, request: Effect.Effect<A, E>) =>
  request.pipe(
    Entities.withTimeout(address, callTimeout),
    Effect.mapError((error): ApiError =>
      error instanceof UserRefused || error instanceof RoomRefused
        ? new ApiError({ reason: error.reason, message: error.message })
        : new ApiError({ reason: "unavailable", message: `${address} did not answer (${error._tag}); retry with the same idempotency key` })
    )
  )

const invalid = (message: string) => new ApiError({ reason: "invalid", message })

const decodeZone = Schema.decodeUnknownEither(LocalTime.TimeZoneId)
const decodeQuietHours = Schema.decodeUnknownEither(Schema.NullOr(LocalTime.QuietHours))
const utc = Either.getOrThrow(decodeZone("UTC"))
const Sent = Schema.Struct({ id: Schema.String, position: Position, at: Schema.Number })

/** A stored room change as the API states it. */
const change = (accepted: { readonly position: Position; readonly at: number }) => ({ position: accepted.position, at: accepted.at })

export const layer = WeftApi.toLayer(
  Effect.gen(function*() {
    const users = yield* User.client
    const rooms = yield* Room.client
    const idempotency = yield* Idempotency.Idempotency
    const topics = yield* ClusterTopics.ClusterTopics
    const stats = yield* NodeStats.NodeStats
    const scheduler = yield* Scheduler

    /**
     * Runs `run` once per `(caller, key)`; `run` gets the notification id to use: derived from
     * the key when there is one, random otherwise.
     */
    const once = <A, I>(
      caller: string,
      key: string | undefined,
      schema: Schema.Schema<A, I>,
      run: (id: string) => Effect.Effect<A, ApiError>
    ): Effect.Effect<{ readonly value: A; readonly duplicate: boolean }, ApiError> =>
      key === undefined
        ? Effect.map(run(`n-${crypto.randomUUID()}`), (value) => ({ value, duplicate: false }))
        : Effect.flatMap(Idempotency.slotId(caller, key), (slot) => idempotency.once(caller, key, schema, run(`k-${slot.slice(0, 32)}`)))

    /** When to deliver to `user` (UTC ms); asks the user's settings only when they matter. */
    const dueFor = (user: string, deliverAt: DeliverAt | undefined, respectQuietHours: boolean, now: number) =>
      Effect.gen(function*() {
        if (deliverAt === undefined && !respectQuietHours) return now
        const settings = yield* call(`user/${user}`, users(user).GetSettings())
        const due = LocalTime.deliveryTime(now, {
          deliverAt,
          respectQuietHours,
          // Stored settings were checked when set; one that no longer reads (a zone this runtime
          // dropped) falls back to UTC rather than losing the notification.
          timeZone: Either.getOrElse(decodeZone(settings.timeZone), () => utc),
          quietHours: Either.getOrElse(decodeQuietHours(settings.quietHours), () => null)
        })
        return yield* Either.match(due, { onLeft: (error) => Effect.fail(invalid(error.message)), onRight: Effect.succeed })
      })

    const notifyUser = (
      user: string,
      id: string,
      sender: string,
      notification: typeof NotificationContent.Type,
      deliverAt: DeliverAt | undefined
    ): Effect.Effect<Delivery, ApiError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const due = yield* dueFor(user, deliverAt, notification.respectQuietHours ?? false, now)
        const pending = { user, id, type: notification.kind, data: notification.data, sender }
        if (due > now) {
          const stored = yield* ScheduledDelivery.schedule(scheduler, pending, due).pipe(
            Effect.mapError((error) =>
              error.reason === "unavailable"
                ? new ApiError({ reason: "unavailable", message: `the scheduler is unavailable: ${error.message}` })
                : invalid(`cannot schedule this notification: ${error.message}`)
            )
          )
          return { status: "scheduled" as const, notificationId: id, devices: 0, scheduledAt: due, duplicate: !stored }
        }
        const sent = yield* call(`user/${user}`, users(user).Notify({ id, type: pending.type, data: pending.data, sender }))
        return {
          status: sent.devices > 0 ? "delivered" as const : "stored" as const,
          notificationId: id,
          devices: sent.devices,
          duplicate: sent.duplicate
        }
      })

    const asDuplicate = (delivery: Delivery, duplicate: boolean): Delivery => duplicate ? { ...delivery, duplicate } : delivery

    const now = Clock.currentTimeMillis

    return ApiMetrics.instrument({
      "notify.toUser": ({ deliverAt, idempotencyKey, notification, userId }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const result = yield* once(caller.service, idempotencyKey, Delivery, (id) =>
            notifyUser(userId, id, caller.service, notification, deliverAt))
          return asDuplicate(result.value, result.duplicate)
        }),

      "notify.toUsers": ({ deliverAt, idempotencyKey, notification, userIds }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const unique = Array.from(new Set(userIds))
          const result = yield* once(caller.service, idempotencyKey, Schema.Array(Schema.Struct({ userId: Schema.String, delivery: Delivery })), (id) =>
            Effect.forEach(
              unique,
              (userId) => Effect.map(notifyUser(userId, id, caller.service, notification, deliverAt), (delivery) => ({ userId, delivery })),
              { concurrency: batchConcurrency }
            ))
          return result.value.map((entry) => ({ userId: entry.userId, delivery: asDuplicate(entry.delivery, result.duplicate) }))
        }),

      "notify.toRoom": ({ notification, room }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          yield* call(`room/${room}`, rooms(room).Announce({ from: caller.service, type: notification.kind, data: notification.data }))
          return { delivered: true }
        }),

      "notify.broadcast": ({ notification }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const frame = Codec.encodeServerFrame({
            type: "message",
            channel: broadcastChannel,
            data: { kind: "notification", type: notification.kind, data: notification.data },
            from: caller.service,
            at: yield* now
          }, "msgpack")
          yield* topics.publish(Fanout.clusterTopic(broadcastChannel), Codec.toBytes(frame)).pipe(
            Effect.mapError((error) => new ApiError({ reason: "unavailable", message: `broadcast not sent: ${error.message}` }))
          )
          return { delivered: true }
        }),

      "presence.room": ({ room }) => call(`room/${room}`, rooms(room).Presence()),

      "presence.user": ({ userId }) =>
        Effect.map(call(`user/${userId}`, users(userId).Connections()), (connections) => {
          const devices = Array.from(new Set(connections.flatMap((c) => c.device === undefined ? [] : [c.device])))
          return { online: connections.length > 0, devices, connections: connections.length }
        }),

      "rooms.history": ({ after, before, limit, room }) =>
        Effect.map(
          call(`room/${room}`, rooms(room).History({ limit: limit ?? 50, ...(after === undefined ? {} : { after }), ...(before === undefined ? {} : { before }) })),
          (page) => ({ epoch: page.epoch, first: page.first, last: page.last, messages: page.entries })
        ),

      "rooms.send": (payload) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const { replyTo, thread } = payload
          const send = call(
            `room/${payload.room}`,
            // A service is trusted like a moderator: it may post in a read-only (announcement) room.
            rooms(payload.room).Send({
              from: payload.as,
              body: payload.body,
              moderator: true,
              ...(replyTo === undefined ? {} : { replyTo }),
              ...(thread === undefined ? {} : { thread })
            })
          ).pipe(Effect.map((accepted) => ({
            id: accepted.id ?? RoomEvent.idOf(accepted.position.epoch, accepted.position.offset),
            position: accepted.position,
            at: accepted.at
          })))
          const result = yield* once(caller.service, payload.idempotencyKey, Sent, () => send)
          return result.value
        }),

      "rooms.edit": ({ as, body, id, room }) => call(`room/${room}`, rooms(room).Edit({ from: as, id, body })).pipe(Effect.map(change)),

      "rooms.delete": ({ as, id, room }) =>
        call(`room/${room}`, rooms(room).Delete({ from: as, id, moderator: true })).pipe(Effect.map(change)),

      "rooms.pin": ({ as, id, pinned, room }) => call(`room/${room}`, rooms(room).Pin({ from: as, id, pinned })).pipe(Effect.map(change)),

      "rooms.pins": ({ room }) => call(`room/${room}`, rooms(room).Pins()),

      "rooms.typing": ({ as, room }) => call(`room/${room}`, rooms(room).Typing({ from: as })),

      "users.settings": ({ quietHours, timeZone, userId }) =>
        Effect.gen(function*() {
          if (timeZone !== undefined && !LocalTime.isValidTimeZone(timeZone)) {
            return yield* invalid(`not an IANA time zone: ${JSON.stringify(timeZone)}`)
          }
          if (timeZone === undefined && quietHours === undefined) return yield* call(`user/${userId}`, users(userId).GetSettings())
          return yield* call(
            `user/${userId}`,
            users(userId).SetSettings({
              ...(timeZone === undefined ? {} : { timeZone }),
              ...(quietHours === undefined ? {} : { quietHours })
            })
          )
        }),

      "cluster.stats": () =>
        stats.all.pipe(
          Effect.map((nodes) => ({ nodes })),
          Effect.mapError((error) => new ApiError({ reason: "unavailable", message: `cluster stats unavailable: ${error.message}` }))
        )
    })
  })
)
