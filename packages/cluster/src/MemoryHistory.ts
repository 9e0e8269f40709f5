/**
 * The in-memory twin of `RedisHistory`: the same epochs, dense offsets,
 * conflicts, trimming by length and age, and expiry of idle rooms, for one
 * node without Redis (the embedded default) and for tests.
 *
 * `open` and `append` mirror the Lua scripts of `RedisHistory` step by step,
 * and the contract suite (`test/history.contract.ts`) holds both to the same
 * behaviour. Time comes from Effect's `Clock`, so `TestClock` drives age and
 * expiry. Every method reads the clock and then runs synchronously, so no
 * other fiber can interleave with it: each is atomic, as a script is in Redis.
 *
 * Memory is bounded like Redis': at most `maxLength` events per room, and a
 * room nobody has written to for `maxAgeMs` is dropped (swept on use, no
 * background fiber).
 */
import { Clock, Effect, Layer, Schema } from "effect"
import type { Cause } from "effect"
import {
  ageScanLimit,
  checkBatch,
  checkInteger,
  checkRoom,
  encodeEvent,
  EventJson,
  History,
  HistoryError,
  StoredEvent,
  validateLimits
} from "./History.ts"
import type { HistoryHead, HistoryLimits, HistoryService, NewEvent } from "./History.ts"

interface Entry {
  readonly offset: number
  readonly at: number
  /** JSON text, as Redis stores it: what is read back is a copy, never the appended object. */
  readonly json: string
}

interface Log {
  readonly epoch: string
  /** Last offset appended; kept apart from `entries` because trimming may empty them. */
  last: number
  /** Dense offsets, oldest first: `entries[i].offset === entries[0].offset + i`. */
  readonly entries: Array<Entry>
  /** The room's keys expire when the clock passes this (Redis PEXPIRE, set by every write). */
  expiresAt: number
}

/** What the memory twin holds, for tests that check memory stays bounded. */
export interface MemoryHistoryService extends HistoryService {
  /** Rooms held, including expired ones not swept yet. */
  readonly rooms: () => number
}

const newEpoch = (): string => crypto.randomUUID().replaceAll("-", "")

const decodeEventJson = Schema.decode(EventJson)

export const make = (limits: HistoryLimits): Effect.Effect<MemoryHistoryService, Cause.IllegalArgumentException> =>
  Effect.map(validateLimits(limits), ({ maxAgeMs, maxLength }) => {
    // Insertion order is write order: a write moves its room to the end. Every room expires
    // `maxAgeMs` after its last write, so the map is also in expiry order and the sweep stops at
    // the first live room: amortized O(1) per call, however many rooms there are.
    const logs = new Map<string, Log>()

    const sweep = (now: number) => {
      for (const [room, log] of logs) {
        if (log.expiresAt >= now) return
        logs.delete(room)
      }
    }

    /** The room's log if it has not expired. Redis expires a key once its time is strictly past. */
    const live = (room: string, now: number): Log | undefined => {
      sweep(now)
      const log = logs.get(room)
      if (log === undefined || log.expiresAt >= now) return log
      logs.delete(room)
      return undefined
    }

    const touch = (room: string, log: Log, now: number) => {
      log.expiresAt = now + maxAgeMs
      logs.delete(room)
      logs.set(room, log)
    }

    /** As `trim_by_age` in RedisHistory: oldest first, stop at the first fresh one, bounded scan. */
    const trimByAge = (log: Log, now: number) => {
      const cutoff = now - maxAgeMs
      const scan = Math.min(log.entries.length, ageScanLimit)
      let stale = 0
      while (stale < scan && log.entries[stale].at < cutoff) stale++
      if (stale > 0) log.entries.splice(0, stale)
    }

    const read = (entries: ReadonlyArray<Entry>) =>
      Effect.forEach(entries, (entry) =>
        decodeEventJson(entry.json).pipe(
          Effect.map((event) => new StoredEvent({ offset: entry.offset, at: entry.at, event })),
          // Only this module writes `json`, from encodeEvent; failing here would be a bug in it.
          Effect.orDie
        ))

    /**
     * `pick` of the room's retained entries, taken in the same synchronous step as the clock read:
     * appends trim the array in place, and a fiber may yield between two steps of an Effect.
     */
    const window = (room: string, pick: (entries: ReadonlyArray<Entry>) => ReadonlyArray<Entry>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => read(pick(live(room, now)?.entries ?? [])))

    const appendAll = (room: string, epoch: string, entries: ReadonlyArray<NewEvent>) =>
      Effect.gen(function*() {
        yield* checkBatch(room, entries)
        const first = entries[0]
        if (first === undefined) return
        const json = yield* Effect.forEach(entries, (entry) => encodeEvent(entry.event))
        const now = yield* Clock.currentTimeMillis
        const log = live(room, now)
        if (log === undefined || log.epoch !== epoch) {
          return yield* new HistoryError({
            reason: "conflict",
            message: log === undefined
              ? `append ${room}: the history of epoch ${epoch} is gone (expired); open it again`
              : `append ${room}: the history is at epoch ${log.epoch}, not ${epoch}`
          })
        }
        if (first.offset !== log.last + 1) {
          return yield* new HistoryError({
            reason: "conflict",
            message: `append ${room}: the last offset is ${log.last}, so ${first.offset} is not the next one`
          })
        }
        entries.forEach(({ at, offset }, i) => log.entries.push({ offset, at, json: json[i]! }))
        log.last = entries[entries.length - 1]!.offset
        if (log.entries.length > maxLength) log.entries.splice(0, log.entries.length - maxLength)
        trimByAge(log, now)
        touch(room, log, now)
      })

    return {
      rooms: () => logs.size,

      open: (room) =>
        Effect.gen(function*() {
          yield* checkRoom(room)
          const epoch = newEpoch()
          const now = yield* Clock.currentTimeMillis
          let log = live(room, now)
          if (log === undefined) {
            log = { epoch, last: 0, entries: [], expiresAt: 0 }
            touch(room, log, now)
          } else {
            trimByAge(log, now)
          }
          const head: HistoryHead = {
            epoch: log.epoch,
            lastOffset: log.last,
            firstOffset: log.entries.length === 0 ? log.last + 1 : log.entries[0].offset
          }
          return head
        }),

      append: (room, epoch, offset, at, event) => appendAll(room, epoch, [{ offset, at, event }]),

      appendAll,

      readAfter: (room, after, limit) =>
        Effect.gen(function*() {
          yield* checkRoom(room)
          yield* checkInteger("readAfter: after", after)
          yield* checkInteger("readAfter: limit", limit)
          if (limit <= 0) return []
          return yield* window(room, (entries) => {
            if (entries.length === 0) return []
            const from = Math.max(0, after + 1 - entries[0].offset)
            return entries.slice(from, from + limit)
          })
        }),

      readBefore: (room, before, limit) =>
        Effect.gen(function*() {
          yield* checkRoom(room)
          yield* checkInteger("readBefore: before", before)
          yield* checkInteger("readBefore: limit", limit)
          if (limit <= 0) return []
          return yield* window(room, (entries) => {
            if (entries.length === 0) return []
            // Index of the first entry not before `before`, clamped into the retained range.
            const end = Math.min(entries.length, Math.max(0, before - entries[0].offset))
            return entries.slice(Math.max(0, end - limit), end)
          })
        })
    }
  })

export const layer = (limits: HistoryLimits): Layer.Layer<History, Cause.IllegalArgumentException> =>
  Layer.effect(History, make(limits))
