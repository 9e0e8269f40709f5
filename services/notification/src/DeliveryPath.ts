/**
 * The delivery path of notifications: what the service API's `notify.*` calls
 * do, callable without the RPC layer (the ingest role's bus consumers use it
 * too). Idempotency is the caller's: each call takes the notification id to
 * use, and the same id again is dropped by the user's inbox.
 *
 * - To users: the delivery time is worked out from the user's settings
 *   (`LocalTime.deliveryTime`: a local time, quiet hours); due now, the user
 *   entity stores it in the inbox and sends it to every online device; later,
 *   it waits in the durable scheduler (`ScheduledDelivery`).
 * - To a room: an ephemeral `notification` event on the room's channel.
 * - Broadcast: an ephemeral `notification` on the `broadcast` channel of every node.
 */
import { ApiError, type DeliverAt, type Delivery, type NotificationContent } from "@weft/api"
import { Room } from "@weft/chat"
import { ClusterTopics } from "@weft/cluster"
import { broadcastChannel, Fanout } from "@weft/gateway"
import { Codec } from "@weft/protocol"
import { Clock, Context, Effect, Either, Layer, Schema } from "effect"
import { call, invalid } from "./internal/entityCall.ts"
import * as LocalTime from "./LocalTime.ts"
import * as ScheduledDelivery from "./ScheduledDelivery.ts"
import { Scheduler } from "./Scheduler.ts"
import { User } from "./User.ts"

export type Notification = typeof NotificationContent.Type

export interface DeliveryPathService {
  /** To every device of `user`: now, or held until its delivery time. A repeated `id` is a no-op (`duplicate`). */
  readonly toUser: (
    user: string,
    id: string,
    sender: string,
    notification: Notification,
    deliverAt: DeliverAt | undefined
  ) => Effect.Effect<Delivery, ApiError>
  /** `toUser` for each distinct user, a few at a time, with one id; fails with the first refusal. */
  readonly toUsers: (
    users: ReadonlyArray<string>,
    id: string,
    sender: string,
    notification: Notification,
    deliverAt: DeliverAt | undefined
  ) => Effect.Effect<ReadonlyArray<{ readonly userId: string; readonly delivery: Delivery }>, ApiError>
  /** To everyone in `room` now (ephemeral, not stored). */
  readonly toRoom: (room: string, sender: string, notification: Notification) => Effect.Effect<void, ApiError>
  /** To every connected client of every node now (ephemeral). */
  readonly broadcast: (sender: string, notification: Notification) => Effect.Effect<void, ApiError>
}

export class DeliveryPath extends Context.Tag("@weft/notification/DeliveryPath")<DeliveryPath, DeliveryPathService>() {}

/** Users a batch notifies at once. */
const batchConcurrency = 16

const decodeZone = Schema.decodeUnknownEither(LocalTime.TimeZoneId)
const decodeQuietHours = Schema.decodeUnknownEither(Schema.NullOr(LocalTime.QuietHours))
const utc = Either.getOrThrow(decodeZone("UTC"))

export const make = Effect.gen(function*() {
  const users = yield* User.client
  const rooms = yield* Room.client
  const topics = yield* ClusterTopics.ClusterTopics
  const scheduler = yield* Scheduler

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

  const toUser: DeliveryPathService["toUser"] = (user, id, sender, notification, deliverAt) =>
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

  return DeliveryPath.of({
    toUser,
    toUsers: (userIds, id, sender, notification, deliverAt) =>
      Effect.forEach(
        Array.from(new Set(userIds)),
        (userId) => Effect.map(toUser(userId, id, sender, notification, deliverAt), (delivery) => ({ userId, delivery })),
        { concurrency: batchConcurrency }
      ),
    toRoom: (room, sender, notification) =>
      Effect.asVoid(call(`room/${room}`, rooms(room).Announce({ from: sender, type: notification.kind, data: notification.data }))),
    broadcast: (sender, notification) =>
      Effect.gen(function*() {
        const frame = Codec.encodeServerFrame({
          type: "message",
          channel: broadcastChannel,
          data: { kind: "notification", type: notification.kind, data: notification.data },
          from: sender,
          at: yield* Clock.currentTimeMillis
        }, "msgpack")
        yield* topics.publish(Fanout.clusterTopic(broadcastChannel), Codec.toBytes(frame)).pipe(
          Effect.mapError((error) => new ApiError({ reason: "unavailable", message: `broadcast not sent: ${error.message}` }))
        )
      })
  })
})

/** The delivery path over the cluster's entities, topics and scheduler. */
export const layer = Layer.effect(DeliveryPath, make)
