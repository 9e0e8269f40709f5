/**
 * Idempotency keys for the service API's handlers: a call retried with the
 * same key (per calling service) runs once and answers as the first did.
 *
 * `once(caller, key, schema, run)`:
 * - the first call with `(caller, key)` marks the key pending, runs `run`, and
 *   stores its success (encoded with `schema`, as JSON) for `ttl` (24 h);
 * - a later call returns the stored value with `duplicate: true`, without running;
 * - a concurrent call waits (polling with backoff, at most `maxWait`) for the
 *   first to finish and returns its value; if the first fails, the waiter
 *   takes the key and runs itself;
 * - a failure (or an interruption) is not stored: the pending mark is removed
 *   and a retry runs again;
 * - a pending mark expires after `pendingTtl` (30 s), so a caller that died
 *   mid-call blocks its key no longer than that.
 *
 * Keys are per caller: two services using the same key do not share it.
 *
 * Shaped like @effect/cluster's RunnerStorage: the `Idempotency` Tag, a
 * string-level `Encoded` store (three atomic steps) that a backend implements,
 * and the two backends beside each other: Redis (`weft:{<cluster>}:idem:<sha256>`,
 * shared by every node) and memory (one node, bounded, and the proof that
 * `Encoded` asks nothing Redis-specific).
 */
import { Redis as ClusterRedis } from "@weft/cluster"
import { Cause, Clock, Context, Data, Duration, Effect, Exit, Layer, Schema } from "effect"
import type { ClientContext, Result } from "ioredis"
import { ApiError } from "./Api.ts"
import { hex, randomHex, sha256 } from "./internal/digest.ts"

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

export interface Once<A> {
  readonly value: A
  /** This answer repeats an earlier call's: `run` did not run. */
  readonly duplicate: boolean
}

export interface IdempotencyService {
  readonly once: <A, I>(
    caller: string,
    key: string,
    schema: Schema.Schema<A, I>,
    run: Effect.Effect<A, ApiError>
  ) => Effect.Effect<Once<A>, ApiError>
}

export class Idempotency extends Context.Tag("@weft/api/Idempotency")<Idempotency, IdempotencyService>() {}

export interface Options {
  /** How long a success is kept for retries. Default 24 hours. */
  readonly ttl?: Duration.DurationInput
  /** How long a call in progress holds its key; keep it above the longest call. Default 30 seconds. */
  readonly pendingTtl?: Duration.DurationInput
  /** How long a concurrent call waits for the first before failing `unavailable`. Default: `pendingTtl`. */
  readonly maxWait?: Duration.DurationInput
}

// ---------------------------------------------------------------------------
// The store interface
// ---------------------------------------------------------------------------

/** The store could not be reached or answered with an error. */
export class StoreError extends Data.TaggedError("StoreError")<{ readonly message: string }> {}

/**
 * Strings by id with a TTL, and three atomic steps; ids are 64 hex characters,
 * values are opaque (a pending mark or a stored answer).
 */
export interface Encoded {
  /** If `id` holds nothing, puts `pending` there for `pendingTtlMs` and gives `undefined`; otherwise gives what it holds. */
  readonly claim: (id: string, pending: string, pendingTtlMs: number) => Effect.Effect<string | undefined, StoreError>
  /** Replaces `pending` (or nothing) by `value` for `ttlMs`; `false` when `id` holds something else. */
  readonly complete: (id: string, pending: string, value: string, ttlMs: number) => Effect.Effect<boolean, StoreError>
  /** Removes `pending` from `id` if it is still there. */
  readonly release: (id: string, pending: string) => Effect.Effect<void, StoreError>
}

const pendingPrefix = "p:"
const donePrefix = "d:"

/** Bounds the wait loop whatever the clock does; the deadline (`maxWait`) normally ends it first. */
const maxPolls = 10_000
const firstPollMs = 5
const maxPollMs = 250

const unavailable = (message: string) => new ApiError({ reason: "unavailable", message })
const storeDown = (error: StoreError) =>
  Effect.zipRight(
    Effect.logWarning("idempotency store unavailable").pipe(Effect.annotateLogs({ error: error.message })),
    Effect.fail(unavailable("the idempotency store is unavailable; retry with the same key"))
  )

/** The store id of `(caller, key)`: a JSON pair, so that no two pairs share a string, hashed to a fixed size. */
export const slotId = (caller: string, key: string): Effect.Effect<string> =>
  Effect.map(sha256(JSON.stringify([caller, key])), hex)

const millis = (input: Duration.DurationInput): number => Duration.toMillis(Duration.decode(input))

/** Builds the service over a store: the protocol (claim, run, store or release, wait) lives here, once. */
export const makeEncoded = (encoded: Encoded, options: Options = {}): IdempotencyService => {
  const ttlMs = millis(options.ttl ?? "24 hours")
  const pendingTtlMs = millis(options.pendingTtl ?? "30 seconds")
  const maxWaitMs = options.maxWait === undefined ? pendingTtlMs : millis(options.maxWait)

  const release = (id: string, pending: string) =>
    Effect.catchAll(encoded.release(id, pending), (error) =>
      Effect.logWarning("could not release an idempotency key; it frees itself when the mark expires").pipe(
        Effect.annotateLogs({ error: error.message })
      ))

  const runFirst = <A, I>(
    id: string,
    pending: string,
    schema: Schema.Schema<A, I>,
    run: Effect.Effect<A, ApiError>
  ): Effect.Effect<Once<A>, ApiError> =>
    Effect.uninterruptibleMask((restore) =>
      restore(run).pipe(
        // Not stored: the key is free again for a retry (or for a concurrent caller waiting on it).
        Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : release(id, pending)),
        Effect.tap((value) =>
          Effect.matchEffect(Schema.encode(Schema.parseJson(schema))(value), {
            // The value ran and is the answer either way; only its repeat is lost (a retry runs again).
            onFailure: (error) =>
              Effect.zipRight(
                Effect.logError("an answer does not fit its schema; it is returned but not kept for retries").pipe(
                  Effect.annotateLogs({ error: error.message })
                ),
                release(id, pending)
              ),
            onSuccess: (json) =>
              encoded.complete(id, pending, `${donePrefix}${json}`, ttlMs).pipe(
                Effect.flatMap((stored) =>
                  stored
                    ? Effect.void
                    : Effect.logWarning(
                      "a call outlived its pending mark and another call with the same idempotency key took it; both ran"
                    )
                ),
                Effect.catchAll((error) =>
                  Effect.logWarning("could not store an answer for retries").pipe(Effect.annotateLogs({ error: error.message }))
                )
              )
          })
        ),
        Effect.map((value) => ({ value, duplicate: false }))
      )
    )

  const repeat = <A, I>(schema: Schema.Schema<A, I>, stored: string): Effect.Effect<Once<A>, ApiError> =>
    Schema.decodeUnknown(Schema.parseJson(schema))(stored).pipe(
      Effect.map((value) => ({ value, duplicate: true })),
      Effect.catchTag("ParseError", (error) =>
        Effect.zipRight(
          Effect.logError("a stored answer does not fit its schema").pipe(Effect.annotateLogs({ error: error.message })),
          Effect.fail(unavailable("the answer stored for this idempotency key cannot be read"))
        ))
    )

  return {
    once: (caller, key, schema, run) =>
      Effect.gen(function*() {
        const id = yield* slotId(caller, key)
        const pending = `${pendingPrefix}${randomHex(16)}`
        const started = yield* Clock.currentTimeMillis
        for (let poll = 0; poll < maxPolls; poll++) {
          const held = yield* Effect.catchAll(encoded.claim(id, pending, pendingTtlMs), storeDown)
          if (held === undefined) return yield* runFirst(id, pending, schema, run)
          if (held.startsWith(donePrefix)) return yield* repeat(schema, held.slice(donePrefix.length))
          if (!held.startsWith(pendingPrefix)) {
            yield* Effect.logError("an idempotency slot holds something unknown").pipe(Effect.annotateLogs({ id }))
            return yield* unavailable("the idempotency store holds something unknown for this key")
          }
          // Another call holds the key: wait for its answer, or for the key to be free again.
          const now = yield* Clock.currentTimeMillis
          if (now - started >= maxWaitMs) break
          yield* Effect.sleep(Duration.millis(Math.min(maxPollMs, firstPollMs * 2 ** Math.min(poll, 8), maxWaitMs - (now - started))))
        }
        return yield* unavailable("a call with this idempotency key is still in progress; retry later with the same key")
      })
  }
}

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

interface Entry {
  readonly value: string
  readonly expiresAt: number
}

export interface MemoryOptions extends Options {
  /** Most slots held at once; when full, expired ones go first, then the oldest. Default 100,000. */
  readonly maxEntries?: number
}

export interface MemoryEncoded extends Encoded {
  /** Slots held, expired or not: what `maxEntries` bounds. */
  readonly size: () => number
}

/**
 * The in-memory store: a Map in insertion order with expiry times from
 * Effect's `Clock` (so `TestClock` drives it). Each step is one synchronous
 * block, which makes it atomic among fibers.
 */
export const makeMemoryEncoded = (options: { readonly maxEntries: number }): MemoryEncoded => {
  const entries = new Map<string, Entry>()
  const live = (id: string, now: number): Entry | undefined => {
    const entry = entries.get(id)
    if (entry === undefined || entry.expiresAt > now) return entry
    entries.delete(id)
    return undefined
  }
  /** Makes room for one more: expired slots first, then the oldest (whose retries would run again). */
  const makeRoom = (now: number) => {
    if (entries.size < options.maxEntries) return
    for (const [id, entry] of entries) if (entry.expiresAt <= now) entries.delete(id)
    for (const id of entries.keys()) {
      if (entries.size < options.maxEntries) break
      entries.delete(id)
    }
  }
  const put = (id: string, value: string, expiresAt: number, now: number) => {
    // Re-inserted at the end, so insertion order stays age order.
    entries.delete(id)
    makeRoom(now)
    entries.set(id, { value, expiresAt })
  }
  return {
    size: () => entries.size,
    claim: (id, pending, pendingTtlMs) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = live(id, now)
        if (entry !== undefined) return entry.value
        put(id, pending, now + pendingTtlMs, now)
        return undefined
      }),
    complete: (id, pending, value, ttlMs) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = live(id, now)
        if (entry !== undefined && entry.value !== pending) return false
        put(id, value, now + ttlMs, now)
        return true
      }),
    release: (id, pending) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        if (live(id, now)?.value === pending) entries.delete(id)
      })
  }
}

/** Idempotency for a single node (no Redis). */
export const makeMemory = (options: MemoryOptions = {}): IdempotencyService =>
  makeEncoded(makeMemoryEncoded({ maxEntries: options.maxEntries ?? 100_000 }), options)

export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<Idempotency> =>
  Layer.sync(Idempotency, () => makeMemory(options))

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

export interface RedisOptions extends Options {
  /** The cluster name: every key is under `weft:{<cluster>}:`. */
  readonly cluster: string
}

/** Every key this store writes for one cluster. */
export interface Keys {
  /** `weft:{<cluster>}:idem:` */
  readonly prefix: string
  /** SCAN pattern for this cluster's slots. */
  readonly pattern: string
  /** STRING `p:<token>` (PX = pending TTL) or `d:<json>` (PX = answer TTL). */
  readonly slot: (id: string) => string
}

export const keys = (cluster: string): Keys => {
  const prefix = `${ClusterRedis.keyPrefix(cluster)}idem:`
  return { prefix, pattern: `${prefix}*`, slot: (id) => `${prefix}${id}` }
}

const scripts = {
  weftIdemClaim: `local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`,
  weftIdemComplete: `local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`,
  weftIdemRelease: `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`
} as const

// `defineCommand` adds these methods to the client at run time; this is how ioredis wants them typed.
declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    weftIdemClaim(key: string, pending: string, pendingTtlMs: number): Result<string | null, Context>
    weftIdemComplete(key: string, pending: string, value: string, ttlMs: number): Result<number, Context>
    weftIdemRelease(key: string, pending: string): Result<number, Context>
  }
}

const storeError = (error: ClusterRedis.RedisError) => new StoreError({ message: error.message })

/**
 * The Redis store: each step one Lua script on one key (atomic, and a single
 * Redis Cluster slot thanks to the `{<cluster>}` hash tag). The node's client
 * fails fast while Redis is down, so calls fail `unavailable` instead of hanging.
 */
export const makeRedisEncoded = (redis: ClusterRedis.RedisService, k: Keys): Encoded => {
  // Idempotent; the scripts take their key as an argument, so any number of stores may share the client.
  for (const [name, lua] of Object.entries(scripts)) redis.client.defineCommand(name, { lua, numberOfKeys: 1 })
  return {
    claim: (id, pending, pendingTtlMs) =>
      Effect.mapError(redis.use((client) => client.weftIdemClaim(k.slot(id), pending, pendingTtlMs)), storeError).pipe(
        Effect.map((held) => held ?? undefined)
      ),
    complete: (id, pending, value, ttlMs) =>
      Effect.mapError(redis.use((client) => client.weftIdemComplete(k.slot(id), pending, value, ttlMs)), storeError).pipe(
        Effect.map((stored) => stored === 1)
      ),
    release: (id, pending) =>
      Effect.asVoid(Effect.mapError(redis.use((client) => client.weftIdemRelease(k.slot(id), pending)), storeError))
  }
}

export const makeRedis = (
  options: RedisOptions
): Effect.Effect<IdempotencyService, Cause.IllegalArgumentException, ClusterRedis.Redis> =>
  Effect.gen(function*() {
    const cluster = yield* Effect.try({
      try: () => ClusterRedis.validateClusterName(options.cluster),
      catch: () => new Cause.IllegalArgumentException("Idempotency: cluster must be 1-64 of A-Z a-z 0-9 . _ -")
    })
    const redis = yield* ClusterRedis.Redis
    return makeEncoded(makeRedisEncoded(redis, keys(cluster)), options)
  })

export const layerRedis = (
  options: RedisOptions
): Layer.Layer<Idempotency, Cause.IllegalArgumentException, ClusterRedis.Redis> => Layer.effect(Idempotency, makeRedis(options))
