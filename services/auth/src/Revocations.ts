/**
 * Revocations: users banned for a time. A ban refuses the user's ticket
 * requests (`POST /v1/tickets`, 403), their WebSocket upgrades (403, for a
 * ticket issued before the ban) and their credential refreshes, until it
 * ends; the service API's `users.disconnect` sets it (and closes the user's
 * connections), `users.unban` lifts it. A ban lives exactly as long as it
 * lasts: the store drops it when it ends (a TTL), so nothing needs cleaning.
 *
 * Shaped like @effect/cluster's RunnerStorage: the `Revocations` Tag, a
 * string-level `Encoded` store interface that is the only thing a backend
 * implements, and two backends beside each other: Redis (`makeRedis`,
 * `weft:{<cluster>}:ban:<user>`, shared by every node of a cluster) and memory
 * (`makeMemory`, one node, and the proof that `Encoded` asks nothing
 * Redis-specific).
 */
import { Redis as ClusterRedis } from "@weft/cluster"
import { Cause, Clock, Context, Effect, Layer, Schema } from "effect"
import { User } from "./Grant.ts"

// ---------------------------------------------------------------------------
// Errors and values
// ---------------------------------------------------------------------------

/**
 * - `unavailable`: the store could not be reached or answered with an error.
 * - `invalid`: a ban that cannot be stored (a lifetime that is not a positive integer of ms).
 */
export class RevocationError extends Schema.TaggedError<RevocationError>()("RevocationError", {
  reason: Schema.Literal("unavailable", "invalid"),
  message: Schema.String
}) {}

export class Ban extends Schema.Class<Ban>("Ban")({
  user: User,
  /** When the ban ends, in ms since the epoch. */
  until: Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  /** Why, for operators (the service API's `reason`); never sent to clients. */
  reason: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(500)), { exact: true }),
  /** The service that set it. */
  by: Schema.optionalWith(Schema.String, { exact: true })
}) {}

export interface BanOptions {
  /** How long the ban lasts, in ms (a positive integer). */
  readonly ttlMs: number
  readonly reason?: string | undefined
  readonly by?: string | undefined
}

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

export interface RevocationsService {
  /** Bans `user` for `ttlMs` from now; a ban already in place is replaced (the new end wins). */
  readonly ban: (user: string, options: BanOptions) => Effect.Effect<Ban, RevocationError>
  /** Lifts `user`'s ban; `false` when there was none. */
  readonly unban: (user: string) => Effect.Effect<boolean, RevocationError>
  /** `user`'s ban while it lasts, else `undefined`. */
  readonly banned: (user: string) => Effect.Effect<Ban | undefined, RevocationError>
}

export class Revocations extends Context.Tag("@weft/auth/Revocations")<Revocations, RevocationsService>() {}

/** A store of strings by key with a TTL. Keys are user ids; values are JSON-encoded bans. */
export interface Encoded {
  /** Stores `value` under `key` for `ttlMs`, replacing what was there. */
  readonly put: (key: string, value: string, ttlMs: number) => Effect.Effect<void, RevocationError>
  /** The value under `key`, or `undefined` when absent or expired. */
  readonly get: (key: string) => Effect.Effect<string | undefined, RevocationError>
  /** Deletes `key`; `false` when there was nothing (or only something expired). */
  readonly remove: (key: string) => Effect.Effect<boolean, RevocationError>
}

const BanJson = Schema.parseJson(Ban)
const encodeBan = Schema.encode(BanJson)
const decodeBan = Schema.decodeUnknown(BanJson)

/** Builds the service over a string store: ban encoding and the end-of-ban check live here, once. */
export const makeEncoded = (encoded: Encoded): RevocationsService => ({
  ban: (user, options) =>
    Effect.gen(function*() {
      if (!Number.isInteger(options.ttlMs) || options.ttlMs < 1) {
        return yield* new RevocationError({ reason: "invalid", message: "a ban lasts a positive whole number of milliseconds" })
      }
      const now = yield* Clock.currentTimeMillis
      const ban = yield* Effect.try({
        try: () =>
          new Ban({
            user,
            until: now + options.ttlMs,
            ...(options.reason === undefined ? {} : { reason: options.reason.slice(0, 500) }),
            ...(options.by === undefined ? {} : { by: options.by })
          }),
        catch: () => new RevocationError({ reason: "invalid", message: "not a user id (1-200 characters)" })
      })
      // A Ban was validated when it was constructed, so encoding it cannot fail short of a bug.
      yield* encoded.put(user, yield* Effect.orDie(encodeBan(ban)), options.ttlMs)
      return ban
    }),
  unban: (user) => encoded.remove(user),
  banned: (user) =>
    Effect.gen(function*() {
      const value = yield* encoded.get(user)
      if (value === undefined) return undefined
      const ban = yield* Effect.option(decodeBan(value))
      // Unreadable: refusing a user on data we cannot read would lock them out for good; say so.
      if (ban._tag === "None") {
        yield* Effect.logError("a stored ban could not be read; ignored").pipe(Effect.annotateLogs({ user }))
        return undefined
      }
      // The store's TTL ends a ban; the clock check covers a store whose expiry lags.
      const now = yield* Clock.currentTimeMillis
      return ban.value.until > now ? ban.value : undefined
    })
})

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

interface Entry {
  readonly value: string
  readonly expiresAt: number
}

/**
 * The in-memory store: a Map with expiry times read from Effect's `Clock` (so
 * `TestClock` drives it). Expired entries are swept at most once per
 * `sweepEveryMs` on use, so memory stays bounded by the bans in force plus
 * those that ended since the last sweep, without a background fiber.
 */
export interface MemoryEncoded extends Encoded {
  /** Entries held, expired or not: what sweeping keeps bounded. */
  readonly size: () => number
}

export const makeMemoryEncoded = (options: { readonly sweepEveryMs: number } = { sweepEveryMs: 60_000 }): MemoryEncoded => {
  const entries = new Map<string, Entry>()
  let nextSweep = 0
  const sweep = (now: number) => {
    if (now < nextSweep) return
    nextSweep = now + options.sweepEveryMs
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
  }
  const live = (key: string, now: number): Entry | undefined => {
    const entry = entries.get(key)
    return entry !== undefined && entry.expiresAt > now ? entry : undefined
  }
  return {
    size: () => entries.size,
    put: (key, value, ttlMs) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        entries.set(key, { value, expiresAt: now + ttlMs })
      }),
    get: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        return live(key, now)?.value
      }),
    remove: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        const found = live(key, now) !== undefined
        entries.delete(key)
        return found
      })
  }
}

/** Revocations for a single node (no Redis). */
export const makeMemory = (): RevocationsService => makeEncoded(makeMemoryEncoded())

export const layerMemory: Layer.Layer<Revocations> = Layer.sync(Revocations, makeMemory)

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

export interface RedisOptions {
  /** The cluster name: every key is under `weft:{<cluster>}:`. */
  readonly cluster: string
}

/** Every key this store writes for one cluster. */
export interface Keys {
  /** `weft:{<cluster>}:ban:` */
  readonly prefix: string
  /** SCAN pattern for this cluster's bans. */
  readonly pattern: string
  /** STRING ban JSON, PX = what is left of the ban. */
  readonly ban: (user: string) => string
}

export const keys = (cluster: string): Keys => {
  const prefix = `${ClusterRedis.keyPrefix(cluster)}ban:`
  return { prefix, pattern: `${prefix}*`, ban: (user) => `${prefix}${user}` }
}

const redisFailure = (error: ClusterRedis.RedisError) =>
  new RevocationError({ reason: "unavailable", message: `the revocation store is unavailable: ${error.message}` })

/**
 * The Redis store: `SET key value PX ttl`, `GET key`, `DEL key`. The node's Redis client fails
 * fast while disconnected: a check then fails with `unavailable` (the caller refuses with 503)
 * rather than letting a banned user in.
 */
export const makeRedisEncoded = (redis: ClusterRedis.RedisService, k: Keys): Encoded => ({
  put: (key, value, ttlMs) => Effect.mapError(redis.use((client) => client.set(k.ban(key), value, "PX", ttlMs)), redisFailure).pipe(Effect.asVoid),
  get: (key) => Effect.mapError(redis.use((client) => client.get(k.ban(key))), redisFailure).pipe(Effect.map((value) => value ?? undefined)),
  remove: (key) => Effect.mapError(redis.use((client) => client.del(k.ban(key))), redisFailure).pipe(Effect.map((removed) => removed > 0))
})

export const makeRedis = (
  options: RedisOptions
): Effect.Effect<RevocationsService, Cause.IllegalArgumentException, ClusterRedis.Redis> =>
  Effect.gen(function*() {
    const cluster = yield* Effect.try({
      try: () => ClusterRedis.validateClusterName(options.cluster),
      catch: () => new Cause.IllegalArgumentException("Revocations: cluster must be 1-64 of A-Z a-z 0-9 . _ -")
    })
    const redis = yield* ClusterRedis.Redis
    return makeEncoded(makeRedisEncoded(redis, keys(cluster)))
  })

export const layerRedis = (options: RedisOptions): Layer.Layer<Revocations, Cause.IllegalArgumentException, ClusterRedis.Redis> =>
  Layer.effect(Revocations, makeRedis(options))
