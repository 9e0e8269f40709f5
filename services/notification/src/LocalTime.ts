/**
 * Local time for notifications: a user's IANA time zone, wall-clock delivery
 * times and quiet hours, turned into UTC instants by the zone's rules (Effect
 * `DateTime`, which reads them from Intl), never by a fixed offset.
 *
 * All functions are pure: "now" is an argument, so the caller decides whose
 * clock counts (the node's `Clock`, or TestClock in tests).
 *
 * Semantics at daylight-saving transitions:
 * - A wall-clock time that does not exist (the spring-forward gap, e.g.
 *   02:30 in Paris on 2026-03-29) resolves to the first valid instant after
 *   the gap: the transition itself, whose wall clock reads the end of the gap
 *   (03:00 CEST). This is not Temporal's "compatible" choice (which would
 *   shift by the gap length, to 03:30): a notification asked for 02:30 should
 *   not wait longer than the clock skipped.
 * - A wall-clock time that happens twice (the fall-back overlap, e.g. 01:30 in
 *   New York on 2026-11-01) resolves to the earlier instant (01:30 EDT).
 * - Quiet hours are a range of wall-clock times `[start, end)`: an instant is
 *   quiet when the user's clock, by the zone's rules, reads a time in the
 *   range. A window across midnight (22:00-07:00) works the same, and on a
 *   DST night it simply lasts an hour more or less in real time. When a
 *   window boundary falls in a fall-back overlap, the clock may read a quiet
 *   time again after having left the window (quiet hours 00:30-01:30 on
 *   fall-back night: quiet until the first 01:30, not quiet for the rest of
 *   that hour, quiet again when the clock reads 01:00-01:30 a second time).
 *   The rule holds throughout: nothing is delivered while the user's clock
 *   shows a quiet time. `start === end` is an empty window (no quiet hours).
 *
 * One assumption, shared with Effect's own resolution: a zone's offset
 * changes at most once within a day either side of the time asked about,
 * which every zone in the tz database keeps for dates after 1970.
 */
import { DateTime, Either, Option, Schema } from "effect"

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

export class LocalTimeError extends Schema.TaggedError<LocalTimeError>()("LocalTimeError", {
  reason: Schema.Literal("invalid-time-zone", "invalid-local-time", "invalid-instant"),
  message: Schema.String
}) {}

/**
 * Whether `timeZone` is an IANA zone name this runtime knows ("Europe/Paris", "UTC",
 * "Etc/GMT+5"; names are case-insensitive, as Intl takes them). Fixed offsets such as
 * "+05:30" are refused even where Intl accepts them (Bun does, Node 20 does not): they
 * have no daylight-saving rules, which is the point of asking for a zone.
 */
export const isValidTimeZone = (timeZone: string): boolean =>
  !/^[+-]/.test(timeZone) && Option.isSome(DateTime.zoneMakeNamed(timeZone))

/** An IANA zone name checked by `isValidTimeZone`: decode JWT claims and API input with this. */
export const TimeZoneId = Schema.String.pipe(
  Schema.filter((timeZone) => isValidTimeZone(timeZone) || `not an IANA time zone: ${JSON.stringify(timeZone)}`),
  Schema.brand("TimeZoneId")
)
export type TimeZoneId = typeof TimeZoneId.Type

/** A wall-clock time of day, "HH:MM" from "00:00" to "23:59". */
export const ClockTime = Schema.String.pipe(Schema.pattern(/^([01][0-9]|2[0-3]):[0-5][0-9]$/), Schema.brand("ClockTime"))
export type ClockTime = typeof ClockTime.Type

/** Quiet hours `[start, end)` in the user's wall-clock time; `start > end` crosses midnight. */
export const QuietHours = Schema.Struct({ start: ClockTime, end: ClockTime })
export type QuietHours = typeof QuietHours.Type

/** A wall-clock date and time, "YYYY-MM-DDTHH:MM" (no seconds, no offset: the zone gives it meaning). */
export const LocalDateTime = Schema.String.pipe(
  Schema.filter((at) => Option.isSome(parseLocal(at)) || `not a local date and time "YYYY-MM-DDTHH:MM": ${JSON.stringify(at)}`)
)

/** The last instant handled (ms): the end of 9999, as for local times. Beyond it `Date` runs out. */
export const maxInstant = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/** A UTC instant in ms since the epoch, 1970 to 9999. */
const Instant = Schema.Number.pipe(Schema.int(), Schema.between(0, maxInstant))
const isInstant = Schema.is(Instant)

/** When to deliver: a UTC instant (ms since the epoch) or a wall-clock time in the user's zone. */
export const DeliverAt = Schema.Union(
  Schema.TaggedStruct("Utc", { at: Instant }),
  Schema.TaggedStruct("Local", { at: LocalDateTime })
)
export type DeliverAt = typeof DeliverAt.Type

export interface DeliveryRequest {
  readonly deliverAt?: DeliverAt | undefined
  /** Push delivery out of the user's quiet hours. */
  readonly respectQuietHours: boolean
  readonly timeZone: TimeZoneId
  readonly quietHours: QuietHours | null
}

// ---------------------------------------------------------------------------
// Wall clock arithmetic
//
// A "wall" value is the local date and time written as if it were UTC, in ms: Date.UTC of the
// local parts. It orders and subtracts like a clock on the user's wall, which is what quiet
// hours and local delivery times are about.
// ---------------------------------------------------------------------------

const minuteMs = 60_000
const dayMs = 86_400_000

const mod = (n: number, m: number): number => ((n % m) + m) % m

/** Parses "YYYY-MM-DDTHH:MM" to a wall value; None for any other text or a date that is not in the calendar. */
function parseLocal(at: string): Option.Option<number> {
  const match = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})$/.exec(at)
  if (match === null) return Option.none()
  const [year, month, day, hours, minutes] = match.slice(1).map(Number)
  // 1970 on: before it, tz data is patchy and offsets may have seconds, which Intl rounds.
  if (year < 1970 || month < 1 || month > 12 || hours > 23 || minutes > 59) return Option.none()
  const wall = Date.UTC(year, month - 1, day, hours, minutes)
  // Date.UTC rolls 2026-02-30 over to March; a round trip catches every day the month lacks.
  return new Date(wall).getUTCDate() === day ? Option.some(wall) : Option.none()
}

/** "HH:MM" as ms after midnight. */
const clockMs = (time: ClockTime): number => (Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5))) * minuteMs

/**
 * The zone of a `TimeZoneId`. The brand says `isValidTimeZone` accepted it, so this cannot throw
 * unless the brand was forged with a cast, which is a defect worth dying on.
 */
const zoneOf = (timeZone: TimeZoneId): DateTime.TimeZone.Named => DateTime.zoneUnsafeMakeNamed(timeZone)

const offsetAt = (zone: DateTime.TimeZone.Named, utc: number): number =>
  DateTime.zonedOffset(DateTime.unsafeMakeZoned(utc, { timeZone: zone }))

/** What the user's clock reads at `utc`, as a wall value. */
const wallAt = (zone: DateTime.TimeZone.Named, utc: number): number => utc + offsetAt(zone, utc)

/**
 * The first instant in `(from, to]` with the offset in force at `to`, given that the offset at
 * `from` differs: where the clock jumps. Bisection to the millisecond; transitions are less than
 * a day or two apart here, so it takes about 28 steps (64 is the hard bound).
 */
const transitionIn = (zone: DateTime.TimeZone.Named, from: number, to: number): number => {
  const after = offsetAt(zone, to)
  let lo = from
  let hi = to
  for (let step = 0; step < 64 && hi - lo > 1; step++) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if (offsetAt(zone, mid) === after) hi = mid
    else lo = mid
  }
  return hi
}

/**
 * Every instant at which the clock reads exactly `wall`, earliest first: none in a gap, two in
 * an overlap, one otherwise. Effect's "earlier"/"later" disambiguation finds the candidates;
 * each is checked by reading the clock back, so a gap (where both candidates read otherwise)
 * is recognised rather than assumed.
 */
const instantsReading = (zone: DateTime.TimeZone.Named, wall: number): Array<number> => {
  const candidates = (["earlier", "later"] as const).map((disambiguation) =>
    DateTime.toEpochMillis(DateTime.unsafeMakeZoned(wall, { timeZone: zone, adjustForTimeZone: true, disambiguation }))
  )
  return [...new Set(candidates)].filter((utc) => wallAt(zone, utc) === wall).sort((a, b) => a - b)
}

/**
 * Every instant at which the clock first reads `wall` or later, coming from before it: the
 * instants reading `wall`, or, when `wall` is in a gap, the transition that skips it.
 */
const instantsReaching = (zone: DateTime.TimeZone.Named, wall: number): Array<number> => {
  const exact = instantsReading(zone, wall)
  if (exact.length > 0) return exact
  // In a gap, "earlier" gives the instant one gap-length before the transition (its clock reads
  // `wall` minus the gap) and "later" the one after it (reading `wall` plus the gap).
  const before = DateTime.toEpochMillis(
    DateTime.unsafeMakeZoned(wall, { timeZone: zone, adjustForTimeZone: true, disambiguation: "earlier" })
  )
  const after = DateTime.toEpochMillis(
    DateTime.unsafeMakeZoned(wall, { timeZone: zone, adjustForTimeZone: true, disambiguation: "later" })
  )
  return [offsetAt(zone, before) === offsetAt(zone, after) ? after : transitionIn(zone, before, after)]
}

/** The single instant a wall value means: the earlier one in an overlap, the end of the gap in a gap. */
const resolveWall = (zone: DateTime.TimeZone.Named, wall: number): number => instantsReaching(zone, wall)[0]

// ---------------------------------------------------------------------------
// Public functions
// ---------------------------------------------------------------------------

/**
 * The UTC instant (ms) of the wall-clock time `at` ("YYYY-MM-DDTHH:MM") in `timeZone`.
 * In a spring-forward gap: the first valid instant after the gap. In a fall-back overlap: the
 * earlier instant.
 */
export const resolveLocal = (at: string, timeZone: string): Either.Either<number, LocalTimeError> => {
  if (!isValidTimeZone(timeZone)) {
    return Either.left(
      new LocalTimeError({ reason: "invalid-time-zone", message: `not an IANA time zone: ${JSON.stringify(timeZone)}` })
    )
  }
  return Option.match(parseLocal(at), {
    onNone: () =>
      Either.left(
        new LocalTimeError({
          reason: "invalid-local-time",
          message: `not a local date and time "YYYY-MM-DDTHH:MM" (1970 or later): ${JSON.stringify(at)}`
        })
      ),
    onSome: (wall) => Either.right(resolveWall(DateTime.zoneUnsafeMakeNamed(timeZone), wall))
  })
}

/** Whether the user's clock at `utc` reads a time inside `[start, end)`. */
const isQuiet = (zone: DateTime.TimeZone.Named, start: number, end: number, utc: number): boolean => {
  const time = mod(wallAt(zone, utc), dayMs)
  return start < end ? start <= time && time < end : time >= start || time < end
}

/**
 * When the quiet hours the user is in at `nowUtc` (ms, an instant as `Clock` gives it) end:
 * the first instant after `nowUtc` at which their clock reads a time outside `[start, end)`
 * (the clock reaching `end`, or jumping out of the window at a transition). `undefined` when `nowUtc` is not in quiet hours (or
 * there are none).
 */
export const quietHoursEnd = (
  nowUtc: number,
  timeZone: TimeZoneId,
  quietHours: QuietHours | null
): number | undefined => {
  if (quietHours === null) return undefined
  const start = clockMs(quietHours.start)
  const end = clockMs(quietHours.end)
  const zone = zoneOf(timeZone)
  if (start === end || !isQuiet(zone, start, end, nowUtc)) return undefined

  // The clock reaches `end` next on today's or tomorrow's date; the day after covers a zone
  // that skipped a whole calendar day (Pacific/Apia, 2011-12-30).
  const today = mod(wallAt(zone, nowUtc), dayMs)
  const midnight = wallAt(zone, nowUtc) - today
  let reachesEnd: number | undefined
  for (let day = 0; day <= 2 && reachesEnd === undefined; day++) {
    const later = instantsReaching(zone, midnight + day * dayMs + end).filter((utc) => utc > nowUtc)
    if (later.length > 0) reachesEnd = later[0]
  }
  if (reachesEnd === undefined) return undefined

  // Before it, a transition may take the clock out of the window without reading `end`: a
  // fall-back jump to before `start`.
  if (offsetAt(zone, nowUtc) !== offsetAt(zone, reachesEnd)) {
    const jump = transitionIn(zone, nowUtc, reachesEnd)
    if (jump < reachesEnd && !isQuiet(zone, start, end, jump)) return jump
  }
  return reachesEnd
}

/**
 * The UTC instant (ms) to deliver at: the requested time (`deliverAt`, now when absent or
 * past), then, with `respectQuietHours`, pushed to the end of any quiet hours it falls in.
 * Never before `nowUtc`. Fails only for a local time that is not one (`invalid-local-time`) or
 * an instant (`nowUtc` or a `Utc` time) outside 1970-9999 or not whole ms (`invalid-instant`).
 */
export const deliveryTime = (nowUtc: number, request: DeliveryRequest): Either.Either<number, LocalTimeError> => {
  if (!isInstant(nowUtc)) {
    return Either.left(new LocalTimeError({ reason: "invalid-instant", message: `now is not a UTC instant in ms: ${nowUtc}` }))
  }
  const requested = requestedInstant(request)
  if (Either.isLeft(requested)) return requested
  let at = Math.max(nowUtc, requested.right)
  if (!request.respectQuietHours) return Either.right(at)
  // One push always suffices: where quiet hours end the clock reads a time outside them. The
  // bound only keeps a broken invariant from becoming a hang.
  for (let push = 0; push < 4; push++) {
    const end = quietHoursEnd(at, request.timeZone, request.quietHours)
    if (end === undefined) break
    at = end
  }
  return Either.right(at)
}

const requestedInstant = (request: DeliveryRequest): Either.Either<number, LocalTimeError> => {
  const deliverAt = request.deliverAt
  if (deliverAt === undefined) return Either.right(-Infinity)
  if (deliverAt._tag === "Local") return resolveLocal(deliverAt.at, request.timeZone)
  return isInstant(deliverAt.at)
    ? Either.right(deliverAt.at)
    : Either.left(new LocalTimeError({ reason: "invalid-instant", message: `not a UTC instant in ms: ${deliverAt.at}` }))
}
