/**
 * Room history on Redis Streams, shared by every node of a cluster.
 *
 * Per room, two keys under the cluster's prefix (see `keys`):
 * - `weft:{<cluster>}:room:<room>:events`, a STREAM whose entry ids are
 *   `<offset>-0`, set explicitly, so "after offset n" is the exclusive range
 *   `(n-0` and no lookup table between offsets and ids is needed. Fields: `at`
 *   (ms) and `event` (JSON text of the encoded event).
 * - `weft:{<cluster>}:room:<room>:meta`, a HASH with `epoch` (random, made by
 *   `open` when there is none) and `last` (the last offset appended). `last`
 *   lives here and not only in the stream because trimming may empty the
 *   stream, and the next offset must still follow it.
 *
 * `open` and `append` are each one Lua script, so they are atomic and a stale
 * writer is refused in the same step that would otherwise have forked the
 * history. Scripts take "now" from Redis TIME, so node clocks do not decide
 * what has aged out; an event's own age is its caller-given `at`.
 *
 * Lifetimes: every write (`append`, or `open` creating a history) sets both
 * keys to expire `maxAgeMs` later. By then the newest event is past its age
 * limit too, so expiry removes only what age trimming would have, and the next
 * `open` starts a new epoch.
 */
import * as Redis from "./Redis.ts"
import { Cause, Effect, Layer, ParseResult, Schema } from "effect"
import type { ClientContext, Result } from "ioredis"
import {
  ageScanLimit,
  checkBatch,
  checkInteger,
  checkRoom,
  EventJson,
  History,
  HistoryError,
  StoredEvent,
  validateLimits
} from "./History.ts"
import type { HistoryHead, HistoryLimits, HistoryService, NewEvent } from "./History.ts"

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/**
 * The keys of one cluster's room histories. All share the `{cluster}` hash tag, so a script may
 * touch both keys of a room in Redis Cluster. A room id may contain `:`, yet no two rooms' keys
 * collide: a key ends in `:events` or `:meta`, and with the suffix fixed the id is what is left.
 */
export interface Keys {
  /** `weft:{<cluster>}:` */
  readonly prefix: string
  /** SCAN pattern matching every room history key of the cluster. */
  readonly pattern: string
  /** STREAM of the room's events, ids `<offset>-0`. */
  readonly events: (room: string) => string
  /** HASH `epoch`, `last`. */
  readonly meta: (room: string) => string
}

/** `namespace` separates logs of different kinds (room histories, user inboxes) in one cluster. */
export const keys = (cluster: string, namespace = "room"): Keys => {
  const prefix = Redis.keyPrefix(cluster)
  return {
    prefix,
    pattern: `${prefix}${namespace}:*`,
    events: (id) => `${prefix}${namespace}:${id}:events`,
    meta: (id) => `${prefix}${namespace}:${id}:meta`
  }
}

// ---------------------------------------------------------------------------
// Lua
// ---------------------------------------------------------------------------

// Doubling batches 1, 2, 4, ... cover `ageScanLimit` (2^n - 1) entries in n XRANGE calls.
const ageScanBatches = Math.log2(ageScanLimit + 1)

// Both scripts: KEYS[1] meta, KEYS[2] events. Offsets travel as strings (ARGV, entry ids) and are
// never formatted by Lua: Lua 5.1 prints numbers with 14 significant digits, which would corrupt
// a large offset in an id.
const prelude = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function at_of(fields)
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'at' then return tonumber(fields[i + 1]) end
  end
  return nil
end

-- Drops the oldest entries whose 'at' is before 'cutoff'. Ids are offsets, so the cut is one
-- XTRIM MINID just past the newest stale entry. The scan goes oldest first and stops at the first
-- fresh entry, so it never drops an event younger than the limit even if 'at' is not monotonic
-- (two nodes' clocks). Batches double (one entry when the oldest is fresh, the usual case) and
-- stop after ${ageScanLimit} entries, so one call stays short; the rest goes with the next write.
local function trim_by_age(events, cutoff)
  local start, count, stale, done = '-', 1, nil, false
  for _ = 1, ${ageScanBatches} do
    local entries = redis.call('XRANGE', events, start, '+', 'COUNT', count)
    for _, entry in ipairs(entries) do
      local at = at_of(entry[2])
      -- An entry without a readable 'at' is kept: reads will report it, trimming must not hide it.
      if at == nil or at >= cutoff then
        done = true
        break
      end
      stale = entry[1]
    end
    if done or #entries < count then break end
    start = '(' .. stale
    count = count * 2
  end
  if stale then
    -- '<offset>-1' sorts right after '<offset>-0': MINID keeps everything from the next offset on.
    redis.call('XTRIM', events, 'MINID', string.sub(stale, 1, -2) .. '1')
  end
end
`

const scripts = {
  // ARGV: epoch to create if there is none, max age ms. Reply: {epoch, last, oldest id or ''}.
  weftHistoryOpen: `${prelude}
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch then
  -- A room that comes back after a quiet spell must not start by serving what has aged out.
  trim_by_age(KEYS[2], now - tonumber(ARGV[2]))
else
  -- No meta means no history: a stream left without its meta (evicted, or deleted by hand)
  -- belongs to a lost epoch, and its offsets must not reappear under the new one.
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'last', '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  epoch = ARGV[1]
end
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first = ''
if oldest[1] then first = oldest[1][1] end
return {epoch, redis.call('HGET', KEYS[1], 'last') or '', first}`,

  // ARGV: epoch, max length, max age ms, then offset, at, event JSON for each event of the batch.
  // Reply: {'ok', ''} | {'epoch', current epoch or ''} | {'offset', last} | {'invalid', why}.
  // All or nothing: everything that could refuse the batch is checked before the first XADD.
  weftHistoryAppend: `${prelude}
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[1] then return {'epoch', epoch or ''} end
local last = redis.call('HGET', KEYS[1], 'last')
local last_number = tonumber(last or '')
if last_number == nil then return {'invalid', 'the meta hash has no last offset'} end
local count = (#ARGV - 3) / 3
for i = 1, count do
  if tonumber(ARGV[1 + 3 * i]) ~= last_number + i then return {'offset', last} end
end
-- A stream whose top id is not below the first new one was not written by this script: report
-- it as bad data instead of failing like an outage.
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if top[1] and tonumber(string.match(top[1][1], '^(%d+)-')) >= last_number + 1 then
  return {'invalid', 'the stream already holds entry ' .. top[1][1]}
end
for i = 1, count do
  redis.call('XADD', KEYS[2], ARGV[1 + 3 * i] .. '-0', 'at', ARGV[2 + 3 * i], 'event', ARGV[3 + 3 * i])
end
redis.call('HSET', KEYS[1], 'last', ARGV[1 + 3 * count])
-- Exact MAXLEN (no '~'), so the oldest offset kept is exactly last - maxLength + 1.
redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[2])
trim_by_age(KEYS[2], now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'ok', ''}`
} as const

type ScriptName = keyof typeof scripts

// `defineCommand` adds these methods to the client at run time; this is how ioredis wants them typed.
declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    weftHistoryOpen(meta: string, events: string, ...args: Array<string | number>): Result<unknown, Context>
    weftHistoryAppend(meta: string, events: string, ...args: Array<string | number>): Result<unknown, Context>
  }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/** A count or offset as Redis holds it: plain decimal digits, a safe integer. */
const OffsetFromString = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^(0|[1-9][0-9]{0,15})$/)),
  Schema.NumberFromString
).pipe(Schema.int(), Schema.nonNegative())

/** A stream entry id `<offset>-0` as the offset. */
const OffsetFromEntryId = Schema.transform(
  Schema.String.pipe(Schema.pattern(/^[1-9][0-9]{0,15}-0$/)),
  Schema.Number.pipe(Schema.int(), Schema.positive()),
  { strict: true, decode: (id) => Number(id.slice(0, -2)), encode: (offset) => `${offset}-0` }
)

/** The fields of an entry; the same schema encodes them for XADD. */
const EntryFields = Schema.Struct({ at: Schema.compose(Schema.NumberFromString, Schema.Finite), event: EventJson })

/** An XRANGE entry `[id, [field, value, ...]]` as a StoredEvent. */
const StoredEventFromEntry = Schema.transformOrFail(
  Schema.Tuple(OffsetFromEntryId, Schema.Array(Schema.String)),
  StoredEvent,
  {
    strict: true,
    decode: ([offset, flat], _, ast) => {
      if (flat.length % 2 !== 0) return ParseResult.fail(new ParseResult.Type(ast, flat, "expected field, value pairs"))
      const fields: Record<string, string> = {}
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1]
      return ParseResult.map(ParseResult.decodeUnknown(EntryFields)(fields), ({ at, event }) => ({ offset, at, event }))
    },
    encode: ({ at, event, offset }) =>
      ParseResult.map(
        ParseResult.encodeUnknown(EntryFields)({ at, event }),
        (fields) => [offset, ["at", fields.at, "event", fields.event]] as const
      )
  }
)

const RangeReply = Schema.Array(StoredEventFromEntry)

const OpenReply = Schema.Tuple(
  Schema.NonEmptyString,
  OffsetFromString,
  Schema.Union(Schema.Literal(""), OffsetFromEntryId)
)

const AppendReply = Schema.Tuple(Schema.Literal("ok", "epoch", "offset", "invalid"), Schema.String)

const decode = <A, I>(schema: Schema.Schema<A, I>, what: string) => (reply: unknown): Effect.Effect<A, HistoryError> =>
  Schema.decodeUnknown(schema)(reply).pipe(
    Effect.mapError((error) =>
      new HistoryError({ reason: "invalid-data", message: `${what}: unexpected reply from Redis: ${error.message}` })
    )
  )

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

export interface Options extends HistoryLimits {
  /** Cluster name (`[A-Za-z0-9._-]{1,64}`); every key lives under `weft:{<cluster>}:<namespace>:`. */
  readonly cluster: string
  /** What kind of log this is, in key names: `room` (the default), `inbox`. */
  readonly namespace?: string
}

const newEpoch = (): string => crypto.randomUUID().replaceAll("-", "")

const validate = (options: Options) =>
  Effect.gen(function*() {
    const cluster = yield* Effect.try({
      try: () => Redis.validateClusterName(options.cluster),
      catch: () =>
        new Cause.IllegalArgumentException(
          `RedisHistory: invalid cluster name ${JSON.stringify(options.cluster)} (expected [A-Za-z0-9._-]{1,64})`
        )
    })
    const limits = yield* validateLimits(options)
    return { cluster, namespace: options.namespace ?? "room", ...limits }
  })

const makeService = (
  redis: Redis.RedisService,
  settings: { readonly cluster: string; readonly namespace: string } & HistoryLimits
): HistoryService => {
  const k = keys(settings.cluster, settings.namespace)
  const { maxAgeMs, maxLength } = settings

  // Idempotent, and the scripts take every key as an argument, so sharing the node's client with
  // other histories (other clusters, tests) is fine.
  for (const [name, lua] of Object.entries(scripts)) redis.client.defineCommand(name, { lua, numberOfKeys: 2 })

  const unavailable = (what: string) => (error: Redis.RedisError) =>
    new HistoryError({ reason: "unavailable", message: `${what}: ${error.message}` })

  const script = (name: ScriptName, room: string, args: ReadonlyArray<string | number>) =>
    redis.use((client) => client[name](k.meta(room), k.events(room), ...args)).pipe(
      Effect.mapError(unavailable(`${name} ${room}`))
    )

  const range = (what: string, command: (client: Redis.RedisService["client"]) => Promise<unknown>) =>
    redis.use(command).pipe(Effect.mapError(unavailable(what)), Effect.flatMap(decode(RangeReply, what)))

  const appendAll = (room: string, epoch: string, entries: ReadonlyArray<NewEvent>) =>
    Effect.gen(function*() {
      yield* checkBatch(room, entries)
      const first = entries[0]
      if (first === undefined) return
      const args: Array<string | number> = [epoch, maxLength, maxAgeMs]
      for (const { at, event, offset } of entries) {
        const fields = yield* Schema.encode(EntryFields)({ at, event }).pipe(
          Effect.mapError((error) => new HistoryError({ reason: "invalid-data", message: `append ${room}: ${error.message}` }))
        )
        args.push(String(offset), fields.at, fields.event)
      }
      const reply = yield* script("weftHistoryAppend", room, args)
      const [status, detail] = yield* decode(AppendReply, `append ${room}`)(reply)
      switch (status) {
        case "ok":
          return
        case "epoch":
          return yield* new HistoryError({
            reason: "conflict",
            message: detail === ""
              ? `append ${room}: the history of epoch ${epoch} is gone (expired); open it again`
              : `append ${room}: the history is at epoch ${detail}, not ${epoch}`
          })
        case "offset":
          return yield* new HistoryError({
            reason: "conflict",
            message: `append ${room}: the last offset is ${detail}, so ${first.offset} is not the next one`
          })
        case "invalid":
          return yield* new HistoryError({ reason: "invalid-data", message: `append ${room}: ${detail}` })
      }
    })

  return {
    open: (room) =>
      Effect.gen(function*() {
        yield* checkRoom(room)
        const reply = yield* script("weftHistoryOpen", room, [newEpoch(), maxAgeMs])
        const [epoch, lastOffset, oldest] = yield* decode(OpenReply, `open ${room}`)(reply)
        const firstOffset = oldest === "" ? lastOffset + 1 : oldest
        if (firstOffset > lastOffset + 1) {
          return yield* new HistoryError({
            reason: "invalid-data",
            message: `open ${room}: the oldest event ${firstOffset} is past the last offset ${lastOffset}`
          })
        }
        const head: HistoryHead = { epoch, lastOffset, firstOffset }
        return head
      }),

    append: (room, epoch, offset, at, event) => appendAll(room, epoch, [{ offset, at, event }]),

    appendAll,

    readAfter: (room, after, limit) =>
      Effect.gen(function*() {
        yield* checkRoom(room)
        yield* checkInteger("readAfter: after", after)
        yield* checkInteger("readAfter: limit", limit)
        // A room never holds more than maxLength events, so a larger limit asks for nothing more.
        const count = Math.min(limit, maxLength)
        if (count <= 0) return []
        // Offsets start at 1: after anything below 1 means from the oldest retained event.
        const start = after < 1 ? "-" : `(${after}-0`
        return yield* range(
          `readAfter ${room}`,
          (client) => client.xrange(k.events(room), start, "+", "COUNT", count)
        )
      }),

    readBefore: (room, before, limit) =>
      Effect.gen(function*() {
        yield* checkRoom(room)
        yield* checkInteger("readBefore: before", before)
        yield* checkInteger("readBefore: limit", limit)
        const count = Math.min(limit, maxLength)
        if (count <= 0 || before <= 1) return []
        const newestFirst = yield* range(
          `readBefore ${room}`,
          (client) => client.xrevrange(k.events(room), `(${before}-0`, "-", "COUNT", count)
        )
        return [...newestFirst].reverse()
      })
  }
}

/** Room history for `options.cluster` on the node's `Redis` connection. */
export const make = (options: Options): Effect.Effect<HistoryService, Cause.IllegalArgumentException, Redis.Redis> =>
  Effect.gen(function*() {
    const settings = yield* validate(options)
    const redis = yield* Redis.Redis
    return makeService(redis, settings)
  })

export const layer = (options: Options): Layer.Layer<History, Cause.IllegalArgumentException, Redis.Redis> =>
  Layer.effect(History, make(options))
