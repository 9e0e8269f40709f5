/**
 * One-time connection tickets. A client that proved itself with a JWT gets a
 * ticket (`issue`); it opens its WebSocket with `?ticket=...` on any node, and
 * that node takes the ticket (`take`): the grant comes back once, and the
 * ticket is gone. A ticket expires `ttlSeconds` after it was issued, or when
 * the JWT it came from expires, whichever is first.
 *
 * Tickets are 32 random bytes, base64url (43 characters). The store keeps the
 * SHA-256 of a ticket, never the ticket: someone who reads the store (a dump,
 * a replica, MONITOR of another command) learns grants but cannot connect.
 * 256 random bits make a salt or a slow hash pointless.
 *
 * Shaped like @effect/cluster's RunnerStorage: the `Tickets` Tag, a string-level
 * `Encoded` store interface that is the only thing a backend implements, and
 * two backends beside each other: Redis (`makeRedis`, shared by every node of a
 * cluster) and memory (`makeMemory`, one node, and the proof that `Encoded`
 * asks nothing Redis-specific).
 */
import { Redis as ClusterRedis } from "@weft/cluster"
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import { Cause, Clock, Context, Effect, Layer, Schema } from "effect"
import { Grant } from "./Grant.ts"

// ---------------------------------------------------------------------------
// Errors and values
// ---------------------------------------------------------------------------

/**
 * - `unavailable`: the store could not be reached or answered with an error.
 * - `invalid-data`: the store held something that is not a grant (the ticket is spent anyway).
 * - `collision`: a freshly drawn ticket already existed (2^-256: a broken random source).
 */
export class TicketError extends Schema.TaggedError<TicketError>()("TicketError", {
  reason: Schema.Literal("unavailable", "invalid-data", "collision"),
  message: Schema.String
}) {}

/** What a ticket looks like: 43 characters of base64url (32 bytes, unpadded). */
export const Ticket = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]{43}$/, { message: () => "a ticket: 43 characters of base64url" })
)
export const isTicket = Schema.is(Ticket)

export interface Issued {
  readonly ticket: string
  /** Seconds until the ticket expires. */
  readonly expiresIn: number
}

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

export interface TicketsService {
  /** Issues a ticket for `grant`. */
  readonly issue: (grant: Grant) => Effect.Effect<Issued, TicketError>
  /**
   * Takes a ticket: its grant the first time, `undefined` afterwards, after it
   * expired, or when it never existed. Atomic across nodes. A string that is
   * not shaped like a ticket is `undefined` without a store round trip.
   */
  readonly take: (ticket: string) => Effect.Effect<Grant | undefined, TicketError>
}

export class Tickets extends Context.Tag("@weft/auth/Tickets")<Tickets, TicketsService>() {}

/**
 * A store of strings by key with a TTL, which is all tickets need. Keys are
 * ticket hashes (64 hex characters), values are JSON-encoded grants.
 */
export interface Encoded {
  /** Stores `value` under `key` for `ttlMs` unless `key` exists; `false` when it did. */
  readonly put: (key: string, value: string, ttlMs: number) => Effect.Effect<boolean, TicketError>
  /** Returns the value under `key` and deletes it, in one atomic step; `undefined` when absent or expired. */
  readonly take: (key: string) => Effect.Effect<string | undefined, TicketError>
}

export interface Options {
  /** Lifetime of a ticket, 1-3600 s (the node allows 1-60; DESIGN.md advises 30-60). */
  readonly ttlSeconds: number
}

/** The SHA-256 of a ticket, hex: the store key for it. */
export const hash = (ticket: string): string => createHash("sha256").update(ticket).digest("hex")

const randomTicket = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")

const GrantJson = Schema.parseJson(Grant)
const encodeGrant = Schema.encode(GrantJson)
const decodeGrant = Schema.decodeUnknown(GrantJson)

const validateTtl = (ttlSeconds: number): Effect.Effect<number, Cause.IllegalArgumentException> =>
  Number.isInteger(ttlSeconds) && ttlSeconds >= 1 && ttlSeconds <= 3600
    ? Effect.succeed(ttlSeconds)
    : Effect.fail(new Cause.IllegalArgumentException("Tickets: ttlSeconds must be an integer from 1 to 3600"))

/** Builds the service over a string store: ticket drawing, hashing, TTLs and grant encoding live here, once. */
export const makeEncoded = (encoded: Encoded, options: Options): Effect.Effect<TicketsService, Cause.IllegalArgumentException> =>
  Effect.map(validateTtl(options.ttlSeconds), (ttlSeconds) => ({
    issue: (grant) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // A ticket must not outlive the JWT it was issued for. A token accepted within the clock
        // tolerance after its `exp` still gets a usable second.
        const left = grant.expiresAt === undefined ? Infinity : grant.expiresAt - now
        const ttlMs = Math.max(1000, Math.min(ttlSeconds * 1000, left))
        // A Grant was validated when it was constructed, so encoding it cannot fail short of a bug.
        const value = yield* Effect.orDie(encodeGrant(grant))
        const ticket = randomTicket()
        const stored = yield* encoded.put(hash(ticket), value, ttlMs)
        if (!stored) return yield* new TicketError({ reason: "collision", message: "a new ticket collided with a stored one" })
        return { ticket, expiresIn: Math.ceil(ttlMs / 1000) }
      }),
    take: (ticket) =>
      isTicket(ticket)
        ? encoded.take(hash(ticket)).pipe(
          Effect.flatMap((value) =>
            value === undefined
              ? Effect.succeed(undefined)
              : Effect.mapError(
                decodeGrant(value),
                () => new TicketError({ reason: "invalid-data", message: "the stored ticket is not a grant" })
              )
          )
        )
        : Effect.succeed(undefined)
  }))

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

interface Entry {
  readonly value: string
  readonly expiresAt: number
}

/**
 * The in-memory store: a Map with expiry times read from Effect's `Clock`
 * (so `TestClock` drives it). Expired entries are swept at most once per
 * `sweepEveryMs` on use, so memory stays bounded by what is live plus what
 * expired since the last sweep, without a background fiber.
 */
export interface MemoryEncoded extends Encoded {
  /** Entries held, expired or not: what sweeping keeps bounded. */
  readonly size: () => number
}

export const makeMemoryEncoded = (options: { readonly sweepEveryMs: number }): MemoryEncoded => {
  const entries = new Map<string, Entry>()
  let nextSweep = 0
  const sweep = (now: number) => {
    if (now < nextSweep) return
    nextSweep = now + options.sweepEveryMs
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
  }
  return {
    size: () => entries.size,
    put: (key, value, ttlMs) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        const existing = entries.get(key)
        if (existing !== undefined && existing.expiresAt > now) return false
        entries.set(key, { value, expiresAt: now + ttlMs })
        return true
      }),
    take: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        const entry = entries.get(key)
        if (entry === undefined) return undefined
        // Read and delete in one synchronous step: no other fiber can run in between.
        entries.delete(key)
        return entry.expiresAt > now ? entry.value : undefined
      })
  }
}

/** Tickets for a single node (no Redis). */
export const makeMemory = (options: Options): Effect.Effect<TicketsService, Cause.IllegalArgumentException> =>
  makeEncoded(makeMemoryEncoded({ sweepEveryMs: options.ttlSeconds * 1000 }), options)

export const layerMemory = (options: Options): Layer.Layer<Tickets, Cause.IllegalArgumentException> =>
  Layer.effect(Tickets, makeMemory(options))

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

export interface RedisOptions extends Options {
  /** The cluster name: every key is under `weft:{<cluster>}:`. */
  readonly cluster: string
}

/** Every key this store writes for one cluster. */
export interface Keys {
  /** `weft:{<cluster>}:ticket:` */
  readonly prefix: string
  /** SCAN pattern for this cluster's tickets. */
  readonly pattern: string
  /** STRING grant JSON, PX = ticket lifetime. */
  readonly ticket: (hash: string) => string
}

export const keys = (cluster: string): Keys => {
  const prefix = `${ClusterRedis.keyPrefix(cluster)}ticket:`
  return { prefix, pattern: `${prefix}*`, ticket: (hash) => `${prefix}${hash}` }
}

const redisFailure = (error: ClusterRedis.RedisError) =>
  new TicketError({ reason: "unavailable", message: `the ticket store is unavailable: ${error.message}` })

/**
 * The Redis store: `SET key value PX ttl NX` and `GETDEL key` (Redis 6.2+), each
 * one atomic command, so two nodes taking one ticket at once cannot both get it.
 * The node's Redis client fails fast while disconnected: a ticket request then
 * fails with `unavailable` (HTTP 503) instead of hanging.
 */
export const makeRedisEncoded = (redis: ClusterRedis.RedisService, k: Keys): Encoded => ({
  put: (key, value, ttlMs) =>
    Effect.mapError(
      redis.use((client) => client.set(k.ticket(key), value, "PX", ttlMs, "NX")),
      redisFailure
    ).pipe(Effect.map((reply) => reply === "OK")),
  take: (key) =>
    Effect.mapError(redis.use((client) => client.getdel(k.ticket(key))), redisFailure).pipe(
      Effect.map((value) => value ?? undefined)
    )
})

export const makeRedis = (
  options: RedisOptions
): Effect.Effect<TicketsService, Cause.IllegalArgumentException, ClusterRedis.Redis> =>
  Effect.gen(function*() {
    const cluster = yield* Effect.try({
      try: () => ClusterRedis.validateClusterName(options.cluster),
      catch: () => new Cause.IllegalArgumentException("Tickets: cluster must be 1-64 of A-Z a-z 0-9 . _ -")
    })
    const redis = yield* ClusterRedis.Redis
    return yield* makeEncoded(makeRedisEncoded(redis, keys(cluster)), options)
  })

export const layerRedis = (options: RedisOptions): Layer.Layer<Tickets, Cause.IllegalArgumentException, ClusterRedis.Redis> =>
  Layer.effect(Tickets, makeRedis(options))
