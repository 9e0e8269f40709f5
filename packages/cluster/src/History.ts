/**
 * Room history: an append-only log of room events per room, bounded by
 * length and age, behind one interface with a Redis Streams adapter and an
 * in-memory twin (the embedded default).
 *
 * Offsets are assigned by the room (its single activation is the only
 * writer) and are dense: 1, 2, 3, ... within an epoch. The epoch names one
 * continuous history: a new epoch starts when a room's history is created
 * (first use, or after it expired or was lost), and positions from another
 * epoch cannot be resumed.
 */
import { Cause, Context, Effect, Schema } from "effect"

/** One stored room event, as written and read back. `event` is the room event's encoded form. */
export class StoredEvent extends Schema.Class<StoredEvent>("StoredEvent")({
  offset: Schema.Number.pipe(Schema.int(), Schema.positive()),
  /** UTC milliseconds when the room accepted it. */
  at: Schema.Number,
  /** The room event, encoded (JSON-compatible). */
  event: Schema.Unknown
}) {}

/** An event to append: its offset, its time (UTC ms) and the room event's encoded form. */
export interface NewEvent {
  readonly offset: number
  readonly at: number
  readonly event: unknown
}

/** Where a room's history stands. */
export interface HistoryHead {
  readonly epoch: string
  /** The offset of the last event appended (0 when none). */
  readonly lastOffset: number
  /** The oldest offset still retained (lastOffset + 1 when the history is empty). */
  readonly firstOffset: number
}

export class HistoryError extends Schema.TaggedError<HistoryError>()("HistoryError", {
  reason: Schema.Literal("unavailable", "conflict", "invalid-data"),
  message: Schema.String
}) {}

export interface HistoryLimits {
  /** Events kept per room at most. */
  readonly maxLength: number
  /** Events older than this are dropped, and an idle room's whole history expires after it. */
  readonly maxAgeMs: number
}

export interface HistoryService {
  /** The room's head; creates the history (a new epoch) if there is none. */
  readonly open: (room: string) => Effect.Effect<HistoryHead, HistoryError>
  /**
   * Appends at exactly `offset` in `epoch`. Fails with `conflict` if the epoch changed or
   * the offset is not the next one (another activation wrote first), so a stale writer
   * never forks the history.
   */
  readonly append: (
    room: string,
    epoch: string,
    offset: number,
    at: number,
    event: unknown
  ) => Effect.Effect<void, HistoryError>
  /**
   * Appends `entries` at consecutive offsets, the first right after the last one stored: all of
   * them or none, in one round trip, so a busy room writes a batch per round trip instead of an
   * event per round trip. Fails as `append` does; an empty batch does nothing.
   */
  readonly appendAll: (room: string, epoch: string, entries: ReadonlyArray<NewEvent>) => Effect.Effect<void, HistoryError>
  /** Events with offset > `after`, oldest first, at most `limit`. */
  readonly readAfter: (room: string, after: number, limit: number) => Effect.Effect<ReadonlyArray<StoredEvent>, HistoryError>
  /** The `limit` events just before `before` (offset < `before`), oldest first. */
  readonly readBefore: (room: string, before: number, limit: number) => Effect.Effect<ReadonlyArray<StoredEvent>, HistoryError>
}

export class History extends Context.Tag("@weft/chat/History")<History, HistoryService>() {}

// ---------------------------------------------------------------------------
// Shared by the adapters (RedisHistory, MemoryHistory), so that both check and
// trim exactly alike and the contract suite can hold them to one behaviour.
// ---------------------------------------------------------------------------

/**
 * A room id as history takes it: the part after `room:` in a channel. Every one of these
 * characters is safe in a Redis key name, so ids are used in keys as they are.
 */
export const HistoryRoomId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._\-:@/|+=]{1,195}$/))

const isRoomId = Schema.is(HistoryRoomId)

/** Fails with `invalid-data` unless `room` is a room id (see `HistoryRoomId`). */
export const checkRoom = (room: string): Effect.Effect<void, HistoryError> =>
  isRoomId(room)
    ? Effect.void
    : Effect.fail(new HistoryError({ reason: "invalid-data", message: `not a room id: ${JSON.stringify(room)}` }))

/**
 * Fails with `invalid-data` unless `value` is a safe integer. Read positions and limits are
 * offsets and counts; a fraction or NaN there is a caller's bug, better reported than rounded.
 */
export const checkInteger = (what: string, value: number): Effect.Effect<void, HistoryError> =>
  Number.isSafeInteger(value)
    ? Effect.void
    : Effect.fail(new HistoryError({ reason: "invalid-data", message: `${what} must be an integer, got ${value}` }))

/**
 * What both adapters check of a batch before any round trip: a room id, offsets that are
 * positive integers each one past the previous (`conflict` otherwise: no stored history could
 * take them), and finite times (`invalid-data`).
 */
export const checkBatch = (room: string, entries: ReadonlyArray<NewEvent>): Effect.Effect<void, HistoryError> =>
  Effect.flatMap(checkRoom(room), () => {
    for (let i = 0; i < entries.length; i++) {
      const { at, offset } = entries[i]!
      const expected = i === 0 ? offset : entries[i - 1]!.offset + 1
      if (!Number.isSafeInteger(offset) || offset < 1 || offset !== expected) {
        return Effect.fail(new HistoryError({ reason: "conflict", message: `append ${room}: ${offset} is not the next offset of the batch` }))
      }
      if (!Number.isFinite(at)) {
        return Effect.fail(new HistoryError({ reason: "invalid-data", message: `append ${room}: at must be finite` }))
      }
    }
    return Effect.void
  })

/** Limits both adapters accept: a whole number of events (≥ 1) and of milliseconds (≥ 1, Redis PEXPIRE's unit). */
export const validateLimits = (
  limits: HistoryLimits
): Effect.Effect<HistoryLimits, Cause.IllegalArgumentException> =>
  Number.isSafeInteger(limits.maxLength) && limits.maxLength >= 1 &&
    Number.isSafeInteger(limits.maxAgeMs) && limits.maxAgeMs >= 1
    ? Effect.succeed({ maxLength: limits.maxLength, maxAgeMs: limits.maxAgeMs })
    : Effect.fail(
      new Cause.IllegalArgumentException(
        `History: maxLength and maxAgeMs must be integers ≥ 1, got ${limits.maxLength} and ${limits.maxAgeMs}`
      )
    )

/**
 * The stored form of an event: JSON text. Both adapters store this text (the memory twin too),
 * so an event that JSON cannot carry (a BigInt, `undefined`, a cycle) fails the same way in
 * both, and what is read back is the JSON round trip of what was appended, never the caller's
 * own object.
 */
export const EventJson = Schema.parseJson()

const encodeEventJson = Schema.encode(EventJson)

/** The event as stored JSON text; `invalid-data` when JSON cannot carry it. */
export const encodeEvent = (event: unknown): Effect.Effect<string, HistoryError> =>
  Effect.mapError(
    encodeEventJson(event),
    (error) => new HistoryError({ reason: "invalid-data", message: `the event is not JSON: ${error.message}` })
  )

/**
 * Age trimming looks at most this many of a room's oldest events per write (open or append),
 * so one write costs a bounded amount even after a quiet spell left many events stale. What
 * is left stale beyond it goes with the following writes, and an idle room's whole history
 * expires anyway. 2^10 - 1 because Redis scans in doubling batches 1, 2, 4, ..., 512.
 */
export const ageScanLimit = 1023
