/**
 * What the service API tests share: stub handlers, credentials, and the
 * Redis helpers (real Redis at REDIS_URL, a random cluster name per test, its
 * keys deleted afterwards).
 */
import { Redis } from "@weft/cluster"
import { Effect, Redacted } from "effect"
import type { Layer, Scope } from "effect"
import { ApiError, Caller, WeftApi } from "../src/Api.ts"
import type { Handlers } from "../src/Server.ts"

export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** A cluster name no other test (or run) uses, so tests never see each other's keys. */
export const uniqueCluster = (): string => `api-${process.pid}-${Math.random().toString(36).slice(2, 10)}`

export const ordersKey = "orders-key-0123456789abcdefghijklmnopqrstuv"
export const billingKey = "billing-key-0123456789abcdefghijklmnopqrstu"

/** The WebSocket message limit of the Bun test server (`bun/server.ts`): small, so that a test can cross it. */
export const bunMaxPayloadLength = 64 * 1024

export const credentials = [
  { service: "orders", key: Redacted.make(ordersKey) },
  { service: "billing", key: Redacted.make(billingKey) }
]

/**
 * Stub handlers: each answers from its payload and the `Caller` the middleware
 * provides (so a test sees who called); `userId: "missing"` and room `missing`
 * fail with a typed `ApiError`.
 */
export const StubHandlers: Layer.Layer<Handlers> = WeftApi.toLayer({
  "notify.toUser": ({ idempotencyKey, userId }) =>
    Effect.gen(function*() {
      const caller = yield* Caller
      if (userId === "missing") return yield* new ApiError({ reason: "not_found", message: `no user ${userId}` })
      // The key, when given, shows in the id: a test sees which key reached the handler.
      const id = idempotencyKey === undefined ? `${caller.service}:${userId}` : `${caller.service}:${userId}:${idempotencyKey}`
      return { status: "delivered" as const, notificationId: id, devices: 2, duplicate: false }
    }),
  "notify.toUsers": ({ userIds }) =>
    Effect.succeed({
      notificationId: "n-batch",
      delivered: 0,
      queued: new Set(userIds).size,
      refused: 0,
      devices: 0,
      refusals: [],
      duplicate: false
    }),
  "notify.toRoom": ({ room }) =>
    room === "missing"
      ? Effect.fail(new ApiError({ reason: "not_found", message: "no room missing" }))
      : Effect.succeed({ delivered: true }),
  "notify.broadcast": () => Effect.succeed({ delivered: true }),
  "presence.room": () => Effect.succeed([{ user: "alice", devices: 2 }]),
  "presence.user": ({ userId }) => Effect.succeed({ online: userId === "alice", devices: ["phone"], connections: 1 }),
  "rooms.history": () => Effect.succeed({ epoch: "e1", first: 1, last: 1, messages: [] }),
  "rooms.send": ({ room }) => Effect.succeed({ id: `${room.length}-1`, position: { epoch: String(room.length), offset: 1 }, at: 1 }),
  "rooms.edit": () => Effect.succeed({ position: { epoch: "e1", offset: 2 }, at: 2 }),
  "rooms.delete": () => Effect.succeed({ position: { epoch: "e1", offset: 3 }, at: 3 }),
  "rooms.pin": ({ pinned }) => Effect.succeed({ position: { epoch: "e1", offset: pinned ? 4 : 5 }, at: 4 }),
  "rooms.pins": () => Effect.succeed([{ id: "e1-1", by: "bot", at: 4 }]),
  "rooms.typing": () => Effect.void,
  "users.settings": ({ timeZone }) => Effect.succeed({ timeZone: timeZone ?? "UTC", quietHours: null }),
  "users.disconnect": ({ banForSeconds, device, userId }) =>
    userId === "missing"
      ? Effect.fail(new ApiError({ reason: "not_found", message: `no user ${userId}` }))
      : Effect.succeed({ disconnected: device === undefined ? 3 : 1, ...(banForSeconds === undefined ? {} : { bannedUntil: banForSeconds * 1000 }) }),
  "users.unban": ({ userId }) => Effect.succeed({ unbanned: userId === "alice" }),
  "cluster.stats": () =>
    Effect.map(Caller, (caller) => ({
      nodes: [{ node: caller.service, roles: ["gateway"], ready: true, connections: 0, actors: [], at: 0 }]
    }))
})

/** A Redis connection for `cluster`, closed with the scope after deleting the cluster's keys. */
export const redisFor = (cluster: string): Effect.Effect<Redis.RedisService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.make({ url: redisUrl, name: `api-test-${cluster}` })
    yield* Effect.addFinalizer(() => Effect.ignore(deleteKeys(redis, `${Redis.keyPrefix(cluster)}*`)))
    return redis
  })

/** The keys matching `pattern` (SCAN, bounded by the number of keys). */
export const scan = (redis: Redis.RedisService, pattern: string): Effect.Effect<ReadonlyArray<string>, Redis.RedisError> =>
  redis.use(async (client) => {
    const found: Array<string> = []
    let cursor = "0"
    // SCAN returns cursor 0 once the walk is complete; the bound only guards against a broken server.
    for (let round = 0; round < 10_000; round++) {
      const [next, batch] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      found.push(...batch)
      cursor = next
      if (cursor === "0") break
    }
    return found
  })

const deleteKeys = (redis: Redis.RedisService, pattern: string) =>
  Effect.flatMap(scan(redis, pattern), (keys) => keys.length === 0 ? Effect.void : redis.use((client) => client.del(...keys)))
