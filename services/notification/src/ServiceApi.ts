/**
 * What the service API's calls do (`WeftApi` of @weft/api): the handlers
 * behind `/rpc`, served by the nodes with the notification role. Each call
 * goes to the entity that owns its subject (the user, the room) wherever it
 * lives, bounded by a timeout, and every failure comes back as a typed
 * `ApiError`.
 *
 * Notifications go through the `DeliveryPath` (shared with the ingest role's
 * bus consumers): to users by their local time and quiet hours, stored in the
 * inbox or held in the durable scheduler; to rooms; to everyone.
 * With an idempotency key the notification id is derived from the key, so a
 * retry that slips past the idempotency store (expired, or the first call
 * failed half-way through a batch) is still dropped by the user's inbox.
 */
import { ApiError, BatchDelivery, Caller, Delivery, maxContentBytes, WeftApi } from "@weft/api"
import { ApiMetrics, Idempotency } from "@weft/api/server"
import { newRequestKey, Position, Room, RoomEvent } from "@weft/chat"
import { NodeStats } from "@weft/cluster"
import { Effect, Layer, Schema } from "effect"
import { DeliveryPath, layer as deliveryPathLayer } from "./DeliveryPath.ts"
import { call, invalid } from "./internal/entityCall.ts"
import * as LocalTime from "./LocalTime.ts"
import * as Revocation from "./Revocation.ts"
import { User } from "./User.ts"

/** Users of one `notify.toUsers` call notified at once: enough to keep many nodes busy, bounded. */
const batchConcurrency = 64

/** Refusals a batch reply lists; the rest are only counted. */
const maxListedRefusals = 100

const utf8 = new TextEncoder()

/**
 * Refuses content that users would receive above `maxContentBytes` (as UTF-8 JSON), before it is
 * stored or sent anywhere; the same check behind every door, since all of them end here.
 */
const checkContent = (field: string, value: unknown): Effect.Effect<void, ApiError> =>
  Effect.suspend(() => {
    let text: string | undefined
    try {
      text = JSON.stringify(value)
    } catch {
      return Effect.fail(invalid(`${field} is not JSON-compatible`))
    }
    const bytes = text === undefined ? 0 : utf8.encode(text).byteLength
    return bytes > maxContentBytes
      ? Effect.fail(new ApiError({ reason: "too_large", message: `${field} is ${bytes} bytes as JSON; the most is ${maxContentBytes}` }))
      : Effect.void
  })

const Sent = Schema.Struct({ id: Schema.String, position: Position, at: Schema.Number })

/** A stored room change as the API states it. */
const change = (accepted: { readonly position: Position; readonly at: number }) => ({ position: accepted.position, at: accepted.at })

export const layer = WeftApi.toLayer(
  Effect.gen(function*() {
    const users = yield* User.client
    const rooms = yield* Room.client
    const idempotency = yield* Idempotency.Idempotency
    const stats = yield* NodeStats.NodeStats
    const deliveryPath = yield* DeliveryPath
    const revocation = yield* Revocation.make

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

    const asDuplicate = (delivery: Delivery, duplicate: boolean): Delivery => duplicate ? { ...delivery, duplicate } : delivery

    return ApiMetrics.instrument({
      "notify.toUser": ({ deliverAt, idempotencyKey, notification, userId }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          yield* checkContent("notification.data", notification.data)
          const result = yield* once(caller.service, idempotencyKey, Delivery, (id) =>
            deliveryPath.toUser(userId, id, caller.service, notification, deliverAt))
          return asDuplicate(result.value, result.duplicate)
        }),

      "notify.toUsers": ({ deliverAt, idempotencyKey, notification, userIds }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          yield* checkContent("notification.data", notification.data)
          const result = yield* once(caller.service, idempotencyKey, BatchDelivery, (id) =>
            Effect.gen(function*() {
              const counts = { delivered: 0, queued: 0, refused: 0, devices: 0 }
              const refusals: Array<BatchDelivery["refusals"][number]> = []
              // One user at a time per slot, `batchConcurrency` slots: thousands of users never
              // mean thousands of fibers or entity calls in flight. A user that fails is counted,
              // not fatal: the others still get the notification.
              yield* Effect.forEach(
                new Set(userIds),
                (userId) =>
                  Effect.match(deliveryPath.toUser(userId, id, caller.service, notification, deliverAt), {
                    onSuccess: (delivery) => {
                      if (delivery.status === "delivered") counts.delivered++
                      else counts.queued++
                      counts.devices += delivery.devices
                    },
                    onFailure: (error) => {
                      counts.refused++
                      if (refusals.length < maxListedRefusals) refusals.push({ userId, reason: error.reason, message: error.message })
                    }
                  }),
                { concurrency: batchConcurrency, discard: true }
              )
              return { notificationId: id, ...counts, refusals, duplicate: false }
            }))
          return result.duplicate ? { ...result.value, duplicate: true } : result.value
        }),

      "notify.toRoom": ({ notification, room }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          yield* checkContent("notification.data", notification.data)
          yield* deliveryPath.toRoom(room, caller.service, notification)
          return { delivered: true }
        }),

      "notify.broadcast": ({ notification }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          yield* checkContent("notification.data", notification.data)
          yield* deliveryPath.broadcast(caller.service, notification)
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
          yield* checkContent("body", payload.body)
          const { replyTo, thread } = payload
          const send = call(
            `room/${payload.room}`,
            // A service is trusted like a moderator: it may post in a read-only (announcement) room.
            rooms(payload.room).Send({
              from: payload.as,
              body: payload.body,
              moderator: true,
              key: newRequestKey(),
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

      "rooms.edit": ({ as, body, id, room }) =>
        Effect.zipRight(
          checkContent("body", body),
          call(`room/${room}`, rooms(room).Edit({ from: as, id, body, key: newRequestKey() })).pipe(Effect.map(change))
        ),

      "rooms.delete": ({ as, id, room }) =>
        call(`room/${room}`, rooms(room).Delete({ from: as, id, moderator: true, key: newRequestKey() })).pipe(Effect.map(change)),

      "rooms.pin": ({ as, id, pinned, room }) => call(`room/${room}`, rooms(room).Pin({ from: as, id, pinned, key: newRequestKey() })).pipe(Effect.map(change)),

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

      "users.disconnect": (request) => Effect.flatMap(Caller, (caller) => revocation.disconnect(request, caller.service)),

      "users.unban": ({ userId }) => Effect.flatMap(Caller, (caller) => revocation.unban(userId, caller.service)),

      "cluster.stats": () =>
        stats.all.pipe(
          Effect.map((nodes) => ({ nodes })),
          Effect.mapError((error) => new ApiError({ reason: "unavailable", message: `cluster stats unavailable: ${error.message}` }))
        )
    })
  })
).pipe(Layer.provide(deliveryPathLayer))
