/**
 * Scheduled delivery on Redis, shared by every node of a cluster, surviving
 * node restarts.
 *
 * Five keys per cluster (see `keys`), all under the cluster's `{...}` hash
 * tag so a script may touch them together in Redis Cluster:
 * - `weft:{<cluster>}:schedule`, a ZSET of pending ids scored by due time (ms);
 * - `weft:{<cluster>}:schedule:in-flight`, a ZSET of claimed ids scored by
 *   lease deadline (ms);
 * - `weft:{<cluster>}:schedule:items`, a HASH id → JSON `{"due","payload"}`
 *   (the due time is kept here because in flight the score is the lease);
 * - `weft:{<cluster>}:schedule:attempts`, a HASH id → claims so far;
 * - `weft:{<cluster>}:schedule:owners`, a HASH id → the claim holding it.
 *
 * Every operation is one Lua script, so it is atomic, and takes "now" from
 * `redis.call('TIME')`, so node clocks never decide what is due or whose lease
 * lapsed. A claim moves due ids from the schedule (and ids whose lease lapsed)
 * to in flight in the same step, which is what keeps two nodes from taking one
 * item; ack and lease renewal check the owner, so a node whose lease lapsed
 * cannot remove or hold an item another node has claimed since.
 *
 * Lifetimes: every write sets all five keys to expire `horizonMs` + 1 day
 * later. No item may be due later than `horizonMs` after it was written, so
 * the keys cannot expire while they hold an item that is not yet due; a
 * day's margin covers runners that are late or down. They vanish once a
 * cluster has scheduled and claimed nothing for that long.
 */
import { Redis } from "@weft/cluster"
import { Cause, Effect, Layer, Schema } from "effect"
import type { ClientContext, Result } from "ioredis"
import { make as makeService, Scheduler, SchedulerError, validateOptions } from "./Scheduler.ts"
import type {
  Claim,
  DroppedItem,
  DueItem,
  ScheduledItem,
  SchedulerOptions,
  SchedulerService,
  SchedulerSettings,
  SchedulerStore
} from "./Scheduler.ts"

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

export interface Keys {
  /** `weft:{<cluster>}:` */
  readonly prefix: string
  /** SCAN pattern matching every key of this scheduler. */
  readonly pattern: string
  /** ZSET id → due ms. */
  readonly schedule: string
  /** ZSET id → lease deadline ms. */
  readonly inFlight: string
  /** HASH id → item JSON. */
  readonly items: string
  /** HASH id → claims so far. */
  readonly attempts: string
  /** HASH id → owning claim. */
  readonly owners: string
}

export const keys = (cluster: string): Keys => {
  const prefix = Redis.keyPrefix(cluster)
  const schedule = `${prefix}schedule`
  return {
    prefix,
    pattern: `${schedule}*`,
    schedule,
    inFlight: `${schedule}:in-flight`,
    items: `${schedule}:items`,
    attempts: `${schedule}:attempts`,
    owners: `${schedule}:owners`
  }
}

/** The keys in the order every script indexes them, KEYS[1..5]. */
const scriptKeys = (k: Keys): ReadonlyArray<string> => [k.schedule, k.inFlight, k.items, k.attempts, k.owners]

/** Keys outlive the horizon by this much (see the module comment). */
const ttlMarginMs = 86_400_000

// ---------------------------------------------------------------------------
// Lua
// ---------------------------------------------------------------------------

// KEYS: 1 schedule, 2 in flight, 3 items, 4 attempts, 5 owners.
// Times are integers below 2^53, which a Lua number (a double) holds exactly, and ZADD reads its
// score as a double, so `now + lease` can go to ZADD as a number. Replies carry numbers as integers.
const prelude = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function touch(ttl)
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local function forget(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
end
`

const scripts = {
  // ARGV: id, due, item JSON, horizon ms, ttl ms. Reply: {'ok'|'exists'|'too-far', now}.
  weftScheduleAdd: `${prelude}
local id, due = ARGV[1], tonumber(ARGV[2])
if due > now + tonumber(ARGV[4]) then return {'too-far', now} end
if redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[2], id) then return {'exists', now} end
-- Hash fields without a set entry are leftovers (a key evicted or deleted by hand): replace them.
forget(id)
redis.call('ZADD', KEYS[1], ARGV[2], id)
redis.call('HSET', KEYS[3], id, ARGV[3])
touch(ARGV[5])
return {'ok', now}`,

  // ARGV: id. Reply: 1 if it was pending or in flight.
  weftScheduleCancel: `
local found = redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if found then return 1 end
return 0`,

  // ARGV: owner, lease ms, limit, max attempts, ttl ms.
  // Reply: {{{id, item JSON, attempt}, ...}, {{id, attempts, reason}, ...}}.
  // Lapsed leases first (their items have waited longest), then due items, oldest first.
  weftScheduleClaim: `${prelude}
local owner, lease, limit, max_attempts = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
if #ids < limit then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #ids)) do
    ids[#ids + 1] = id
  end
end
local claimed, dropped = {}, {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local item = redis.call('HGET', KEYS[3], id)
  local attempts = redis.call('HINCRBY', KEYS[4], id, 1)
  if not item then
    forget(id)
    dropped[#dropped + 1] = {id, attempts, 'missing'}
  elseif attempts > max_attempts then
    forget(id)
    dropped[#dropped + 1] = {id, attempts, 'attempts'}
  else
    redis.call('ZADD', KEYS[2], now + lease, id)
    redis.call('HSET', KEYS[5], id, owner)
    claimed[#claimed + 1] = {id, item, attempts}
  end
end
if #ids > 0 then touch(ARGV[5]) end
return {claimed, dropped}`,

  // ARGV: id, owner. Reply: 1 if removed, 0 if not held by owner (cancelled, or claimed again).
  weftScheduleAck: `
if redis.call('HGET', KEYS[5], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1`,

  // ARGV: lease ms, ttl ms, then id, owner pairs. Reply: the ids still held by their owner, renewed.
  weftScheduleExtend: `${prelude}
local kept = {}
for i = 3, #ARGV - 1, 2 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[5], id) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[1]), id)
    kept[#kept + 1] = id
  end
end
if #kept > 0 then touch(ARGV[2]) end
return kept`
} as const

type ScriptName = keyof typeof scripts

// `defineCommand` adds these methods to the client at run time; this is how ioredis wants them typed.
declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    weftScheduleAdd(...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftScheduleCancel(...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftScheduleClaim(...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftScheduleAck(...keysAndArgs: Array<string | number>): Result<unknown, Context>
    weftScheduleExtend(...keysAndArgs: Array<string | number>): Result<unknown, Context>
  }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/** What `items` holds per id; the same schema encodes it for HSET. */
const StoredItem = Schema.parseJson(Schema.Struct({
  due: Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  payload: Schema.String
}))

const Count = Schema.Int.pipe(Schema.positive())

const AddReply = Schema.Tuple(Schema.Literal("ok", "exists", "too-far"), Schema.Int)
const FlagReply = Schema.Literal(0, 1)
const IdsReply = Schema.Array(Schema.String)
// Item JSON is decoded one item at a time (below), so one garbled entry does not block a batch.
const ClaimReply = Schema.Tuple(
  Schema.Array(Schema.Tuple(Schema.String, Schema.String, Count)),
  Schema.Array(Schema.Tuple(Schema.String, Count, Schema.Literal("missing", "attempts")))
)

const decodeStoredItem = Schema.decodeUnknownEither(StoredItem)

const decode = <A, I>(schema: Schema.Schema<A, I>, what: string) => (reply: unknown): Effect.Effect<A, SchedulerError> =>
  Schema.decodeUnknown(schema)(reply).pipe(
    Effect.mapError((error) =>
      new SchedulerError({ reason: "invalid-data", message: `${what}: unexpected reply from Redis: ${error.message}` })
    )
  )

// ---------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------

export interface Options extends SchedulerOptions {
  /** Cluster name (`[A-Za-z0-9._-]{1,64}`); every key lives under `weft:{<cluster>}:schedule`. */
  readonly cluster: string
  /** How often an idle runner looks for due items, and so the most an item waits past due. Default 250 ms. */
  readonly pollIntervalMs?: number | undefined
}

const validate = (options: Options) =>
  Effect.gen(function*() {
    const cluster = yield* Effect.try({
      try: () => Redis.validateClusterName(options.cluster),
      catch: () =>
        new Cause.IllegalArgumentException(
          `RedisScheduler: invalid cluster name ${JSON.stringify(options.cluster)} (expected [A-Za-z0-9._-]{1,64})`
        )
    })
    const settings = yield* validateOptions(options)
    const pollIntervalMs = options.pollIntervalMs ?? 250
    if (!Number.isSafeInteger(pollIntervalMs) || pollIntervalMs < 1 || pollIntervalMs > 60_000) {
      return yield* new Cause.IllegalArgumentException(
        `RedisScheduler: pollIntervalMs must be an integer in [1, 60000], got ${pollIntervalMs}`
      )
    }
    return { cluster, settings, pollIntervalMs }
  })

const makeStore = (
  redis: Redis.RedisService,
  cluster: string,
  settings: SchedulerSettings,
  pollIntervalMs: number
): SchedulerStore => {
  const k = keys(cluster)
  const all = scriptKeys(k)
  const { horizonMs, leaseMs, maxAttempts } = settings
  const ttlMs = horizonMs + ttlMarginMs

  // Idempotent, and every key is an argument, so sharing the node's client with other
  // schedulers (other clusters, tests) is fine.
  for (const [name, lua] of Object.entries(scripts)) redis.client.defineCommand(name, { lua, numberOfKeys: 5 })

  const script = (name: ScriptName, args: ReadonlyArray<string | number>) =>
    redis.use((client) => client[name](...all, ...args)).pipe(
      Effect.mapError((error) => new SchedulerError({ reason: "unavailable", message: `${name}: ${error.message}` }))
    )

  const encodeItem = (item: ScheduledItem) =>
    Schema.encode(StoredItem)({ due: item.due, payload: item.payload }).pipe(
      Effect.mapError((error) => new SchedulerError({ reason: "invalid-item", message: error.message }))
    )

  return {
    schedule: (item) =>
      Effect.gen(function*() {
        const json = yield* encodeItem(item)
        const reply = yield* script("weftScheduleAdd", [item.id, item.due, json, horizonMs, ttlMs])
        const [status, now] = yield* decode(AddReply, `schedule ${item.id}`)(reply)
        if (status === "too-far") {
          return yield* new SchedulerError({
            reason: "too-far",
            message: `${item.id} is due ${item.due - now} ms from now, beyond the horizon of ${horizonMs} ms`
          })
        }
        return status === "ok"
      }),

    cancel: (id) =>
      script("weftScheduleCancel", [id]).pipe(
        Effect.flatMap(decode(FlagReply, `cancel ${id}`)),
        Effect.map((found) => found === 1)
      ),

    claim: (owner, limit) =>
      Effect.gen(function*() {
        const reply = yield* script("weftScheduleClaim", [owner, leaseMs, limit, maxAttempts, ttlMs])
        const [claimed, lost] = yield* decode(ClaimReply, "claim")(reply)
        const items: Array<DueItem> = []
        const dropped: Array<DroppedItem> = lost.map(([id, attempts, reason]) => ({ id, attempts, reason }))
        for (const [id, json, attempt] of claimed) {
          const stored = decodeStoredItem(json)
          if (stored._tag === "Right") {
            items.push({ id, due: stored.right.due, payload: stored.right.payload, attempt })
          } else {
            // Not written by this code, so no retry can deliver it: remove it and report it.
            yield* script("weftScheduleCancel", [id]).pipe(Effect.ignore)
            dropped.push({ id, attempts: attempt, reason: "invalid-data" })
          }
        }
        const claim: Claim = { items, dropped }
        return claim
      }),

    ack: (id, owner) =>
      script("weftScheduleAck", [id, owner]).pipe(
        Effect.flatMap(decode(FlagReply, `ack ${id}`)),
        Effect.map((acked) => acked === 1)
      ),

    extend: (held) =>
      held.length === 0
        ? Effect.succeed([])
        : script("weftScheduleExtend", [leaseMs, ttlMs, ...held.flat()]).pipe(Effect.flatMap(decode(IdsReply, "extend"))),

    // Other nodes write too, and nothing tells this one, so it polls.
    idle: Effect.sleep(pollIntervalMs)
  }
}

/** A scheduler for `options.cluster` on the node's `Redis` connection. */
export const make = (options: Options): Effect.Effect<SchedulerService, Cause.IllegalArgumentException, Redis.Redis> =>
  Effect.gen(function*() {
    const { cluster, pollIntervalMs, settings } = yield* validate(options)
    const redis = yield* Redis.Redis
    return makeService(makeStore(redis, cluster, settings, pollIntervalMs), settings)
  })

export const layer = (options: Options): Layer.Layer<Scheduler, Cause.IllegalArgumentException, Redis.Redis> =>
  Layer.effect(Scheduler, make(options))
