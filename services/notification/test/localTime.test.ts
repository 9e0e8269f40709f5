/**
 * LocalTime against hand-checked instants (tz database 2025: Paris and New
 * York spring-forward and fall-back days, Kolkata without DST at +05:30,
 * Chatham at +12:45/+13:45 changing at 02:45/03:45), then properties over many
 * zones and instants near their transitions, checked against an oracle that
 * reads Intl directly rather than through Effect.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import {
  deliveryTime,
  isValidTimeZone,
  LocalDateTime,
  QuietHours,
  quietHoursEnd,
  resolveLocal,
  TimeZoneId
} from "../src/LocalTime.ts"
import type { DeliverAt, DeliveryRequest, LocalTimeError } from "../src/LocalTime.ts"

const zone = Schema.decodeSync(TimeZoneId)
const quiet = (start: string, end: string) => Schema.decodeSync(QuietHours)({ start, end })
const utc = (iso: string) => {
  const ms = Date.parse(iso)
  if (Number.isNaN(ms)) throw new Error(`bad test instant ${iso}`)
  return ms
}
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())

const resolved = (at: string, timeZone: string) =>
  Either.match(resolveLocal(at, timeZone), { onLeft: (error) => error.reason, onRight: iso })

const endOf = (nowIso: string, timeZone: string, start: string, end: string) =>
  iso(quietHoursEnd(utc(nowIso), zone(timeZone), quiet(start, end)))

const deliver = (nowIso: string, request: DeliveryRequest) =>
  Either.match(deliveryTime(utc(nowIso), request), { onLeft: (error: LocalTimeError) => error.reason, onRight: iso })

const hours = (ms: number) => ms / 3_600_000

// ---------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------

describe("isValidTimeZone / TimeZoneId", () => {
  it("accepts IANA names, case-insensitively as Intl does", () => {
    for (const name of ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC", "Etc/GMT+5", "europe/paris"]) {
      expect(isValidTimeZone(name), name).toBe(true)
    }
  })

  it("refuses unknown names, empty strings and fixed offsets (which Bun's Intl would take)", () => {
    for (const name of ["Mars/Olympus", "Europe/Pariss", "Paris", "", " ", "+05:30", "-08:00", "+01", "GMT+1", "UTC+1"]) {
      expect(isValidTimeZone(name), JSON.stringify(name)).toBe(false)
      expect(Either.isLeft(Schema.decodeUnknownEither(TimeZoneId)(name))).toBe(true)
      expect(resolved("2026-01-01T00:00", name)).toBe("invalid-time-zone")
    }
  })

  it("QuietHours takes HH:MM from 00:00 to 23:59 only", () => {
    const decode = Schema.decodeUnknownEither(QuietHours)
    expect(Either.isRight(decode({ start: "22:00", end: "07:00" }))).toBe(true)
    for (const bad of ["24:00", "7:00", "07:60", "07:00:00", "", "0700"]) {
      expect(Either.isLeft(decode({ start: bad, end: "07:00" })), bad).toBe(true)
    }
  })
})

// ---------------------------------------------------------------------------
// resolveLocal
// ---------------------------------------------------------------------------

describe("resolveLocal", () => {
  it("Europe/Paris: CET (+01:00) in winter, CEST (+02:00) in summer", () => {
    expect(resolved("2026-01-15T09:00", "Europe/Paris")).toBe("2026-01-15T08:00:00.000Z")
    expect(resolved("2026-07-15T09:00", "Europe/Paris")).toBe("2026-07-15T07:00:00.000Z")
  })

  it("Europe/Paris spring forward (2026-03-29, 02:00 CET → 03:00 CEST): the gap resolves to its end", () => {
    expect(resolved("2026-03-29T01:59", "Europe/Paris")).toBe("2026-03-29T00:59:00.000Z")
    for (const inGap of ["2026-03-29T02:00", "2026-03-29T02:30", "2026-03-29T02:59"]) {
      expect(resolved(inGap, "Europe/Paris"), inGap).toBe("2026-03-29T01:00:00.000Z")
    }
    expect(resolved("2026-03-29T03:00", "Europe/Paris")).toBe("2026-03-29T01:00:00.000Z")
    expect(resolved("2026-03-29T03:01", "Europe/Paris")).toBe("2026-03-29T01:01:00.000Z")
  })

  it("Europe/Paris fall back (2026-10-25, 03:00 CEST → 02:00 CET): a repeated time resolves to the earlier instant", () => {
    expect(resolved("2026-10-25T01:59", "Europe/Paris")).toBe("2026-10-24T23:59:00.000Z")
    expect(resolved("2026-10-25T02:00", "Europe/Paris")).toBe("2026-10-25T00:00:00.000Z")
    expect(resolved("2026-10-25T02:30", "Europe/Paris")).toBe("2026-10-25T00:30:00.000Z")
    expect(resolved("2026-10-25T02:59", "Europe/Paris")).toBe("2026-10-25T00:59:00.000Z")
    expect(resolved("2026-10-25T03:00", "Europe/Paris")).toBe("2026-10-25T02:00:00.000Z")
  })

  it("America/New_York spring forward (2026-03-08, 02:00 EST → 03:00 EDT)", () => {
    expect(resolved("2026-03-08T01:59", "America/New_York")).toBe("2026-03-08T06:59:00.000Z")
    expect(resolved("2026-03-08T02:00", "America/New_York")).toBe("2026-03-08T07:00:00.000Z")
    expect(resolved("2026-03-08T02:30", "America/New_York")).toBe("2026-03-08T07:00:00.000Z")
    expect(resolved("2026-03-08T03:00", "America/New_York")).toBe("2026-03-08T07:00:00.000Z")
    expect(resolved("2026-03-08T09:00", "America/New_York")).toBe("2026-03-08T13:00:00.000Z")
  })

  it("America/New_York fall back (2026-11-01, 02:00 EDT → 01:00 EST)", () => {
    expect(resolved("2026-11-01T00:59", "America/New_York")).toBe("2026-11-01T04:59:00.000Z")
    expect(resolved("2026-11-01T01:00", "America/New_York")).toBe("2026-11-01T05:00:00.000Z")
    expect(resolved("2026-11-01T01:30", "America/New_York")).toBe("2026-11-01T05:30:00.000Z")
    expect(resolved("2026-11-01T02:00", "America/New_York")).toBe("2026-11-01T07:00:00.000Z")
  })

  it("Asia/Kolkata: +05:30 all year, no gaps", () => {
    expect(resolved("2026-01-15T09:00", "Asia/Kolkata")).toBe("2026-01-15T03:30:00.000Z")
    expect(resolved("2026-07-15T09:00", "Asia/Kolkata")).toBe("2026-07-15T03:30:00.000Z")
    // The European change night means nothing there.
    expect(resolved("2026-03-29T02:30", "Asia/Kolkata")).toBe("2026-03-28T21:00:00.000Z")
  })

  it("Pacific/Chatham: +12:45 standard, +13:45 daylight, changing at 02:45/03:45", () => {
    expect(resolved("2026-07-01T12:00", "Pacific/Chatham")).toBe("2026-06-30T23:15:00.000Z")
    expect(resolved("2026-01-01T12:00", "Pacific/Chatham")).toBe("2025-12-31T22:15:00.000Z")
    // 2026-09-27 02:45 CHAST → 03:45 CHADT.
    expect(resolved("2026-09-27T02:44", "Pacific/Chatham")).toBe("2026-09-26T13:59:00.000Z")
    expect(resolved("2026-09-27T02:45", "Pacific/Chatham")).toBe("2026-09-26T14:00:00.000Z")
    expect(resolved("2026-09-27T03:00", "Pacific/Chatham")).toBe("2026-09-26T14:00:00.000Z")
    expect(resolved("2026-09-27T03:45", "Pacific/Chatham")).toBe("2026-09-26T14:00:00.000Z")
    // 2026-04-05 03:45 CHADT → 02:45 CHAST: 02:45-03:45 happens twice.
    expect(resolved("2026-04-05T03:00", "Pacific/Chatham")).toBe("2026-04-04T13:15:00.000Z")
    expect(resolved("2026-04-05T03:45", "Pacific/Chatham")).toBe("2026-04-04T15:00:00.000Z")
  })

  it("refuses local times that are not YYYY-MM-DDTHH:MM dates in the calendar", () => {
    for (
      const bad of [
        "2026-02-30T09:00",
        "2026-02-29T09:00",
        "2026-13-01T09:00",
        "2026-00-10T09:00",
        "2026-01-01T24:00",
        "2026-01-01T09:60",
        "2026-01-01T9:00",
        "2026-01-01 09:00",
        "2026-01-01T09:00:00",
        "2026-01-01T09:00Z",
        "1969-12-31T23:59",
        ""
      ]
    ) {
      expect(resolved(bad, "Europe/Paris"), bad).toBe("invalid-local-time")
      expect(Either.isLeft(Schema.decodeUnknownEither(LocalDateTime)(bad)), bad).toBe(true)
    }
    expect(resolved("2028-02-29T12:00", "UTC")).toBe("2028-02-29T12:00:00.000Z")
  })
})

// ---------------------------------------------------------------------------
// quietHoursEnd
// ---------------------------------------------------------------------------

describe("quietHoursEnd", () => {
  it("none, or an empty window, is never quiet", () => {
    expect(quietHoursEnd(utc("2026-01-01T03:00:00Z"), zone("UTC"), null)).toBeUndefined()
    expect(endOf("2026-01-01T03:00:00Z", "UTC", "03:00", "03:00")).toBeUndefined()
  })

  it("a window within one day: [start, end)", () => {
    // 12:00-14:00 Paris in July is 10:00Z-12:00Z.
    expect(endOf("2026-07-01T09:59:59.999Z", "Europe/Paris", "12:00", "14:00")).toBeUndefined()
    expect(endOf("2026-07-01T10:00:00Z", "Europe/Paris", "12:00", "14:00")).toBe("2026-07-01T12:00:00.000Z")
    expect(endOf("2026-07-01T11:59:59.999Z", "Europe/Paris", "12:00", "14:00")).toBe("2026-07-01T12:00:00.000Z")
    expect(endOf("2026-07-01T12:00:00Z", "Europe/Paris", "12:00", "14:00")).toBeUndefined()
  })

  it("22:00-07:00 Europe/Paris on the spring-forward night lasts 8 h", () => {
    const start = "2026-03-28T21:00:00.000Z" // 22:00 CET
    const end = "2026-03-29T05:00:00.000Z" // 07:00 CEST
    expect(endOf("2026-03-28T20:59:59.999Z", "Europe/Paris", "22:00", "07:00")).toBeUndefined()
    for (const now of [start, "2026-03-28T23:30:00Z", "2026-03-29T00:59:59Z", "2026-03-29T01:00:00Z", "2026-03-29T04:59:59.999Z"]) {
      expect(endOf(now, "Europe/Paris", "22:00", "07:00"), now).toBe(end)
    }
    expect(endOf(end, "Europe/Paris", "22:00", "07:00")).toBeUndefined()
    expect(hours(utc(end) - utc(start))).toBe(8)
  })

  it("22:00-07:00 Europe/Paris on the fall-back night lasts 10 h, through both passes of 02:30", () => {
    const start = "2026-10-24T20:00:00.000Z" // 22:00 CEST
    const end = "2026-10-25T06:00:00.000Z" // 07:00 CET
    expect(endOf("2026-10-24T19:59:59.999Z", "Europe/Paris", "22:00", "07:00")).toBeUndefined()
    for (const now of [start, "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T05:59:59.999Z"]) {
      expect(endOf(now, "Europe/Paris", "22:00", "07:00"), now).toBe(end)
    }
    expect(endOf(end, "Europe/Paris", "22:00", "07:00")).toBeUndefined()
    expect(hours(utc(end) - utc(start))).toBe(10)
    // The next night is an ordinary 9 h.
    expect(endOf("2026-10-25T21:00:00Z", "Europe/Paris", "22:00", "07:00")).toBe("2026-10-26T06:00:00.000Z")
    expect(endOf("2026-10-25T20:59:59Z", "Europe/Paris", "22:00", "07:00")).toBeUndefined()
  })

  it("22:00-07:00 America/New_York: 8 h on the spring-forward night, 10 h on the fall-back night", () => {
    expect(endOf("2026-03-08T02:59:59Z", "America/New_York", "22:00", "07:00")).toBeUndefined()
    expect(endOf("2026-03-08T03:00:00Z", "America/New_York", "22:00", "07:00")).toBe("2026-03-08T11:00:00.000Z")
    expect(endOf("2026-03-08T07:00:00Z", "America/New_York", "22:00", "07:00")).toBe("2026-03-08T11:00:00.000Z")
    expect(endOf("2026-03-08T11:00:00Z", "America/New_York", "22:00", "07:00")).toBeUndefined()

    expect(endOf("2026-11-01T01:59:59Z", "America/New_York", "22:00", "07:00")).toBeUndefined()
    expect(endOf("2026-11-01T02:00:00Z", "America/New_York", "22:00", "07:00")).toBe("2026-11-01T12:00:00.000Z")
    // 01:30 EDT and 01:30 EST.
    expect(endOf("2026-11-01T05:30:00Z", "America/New_York", "22:00", "07:00")).toBe("2026-11-01T12:00:00.000Z")
    expect(endOf("2026-11-01T06:30:00Z", "America/New_York", "22:00", "07:00")).toBe("2026-11-01T12:00:00.000Z")
    expect(endOf("2026-11-01T12:00:00Z", "America/New_York", "22:00", "07:00")).toBeUndefined()
  })

  it("an end inside the spring-forward gap: quiet hours end when the clock jumps past it", () => {
    // 01:00-02:30 Paris on 2026-03-29: 01:59 CET is followed by 03:00 CEST.
    expect(endOf("2026-03-29T00:15:00Z", "Europe/Paris", "01:00", "02:30")).toBe("2026-03-29T01:00:00.000Z")
    // A start inside the gap: quiet from the jump (03:00 reads past 02:30) to 04:00 CEST.
    expect(endOf("2026-03-29T00:59:59Z", "Europe/Paris", "02:30", "04:00")).toBeUndefined()
    expect(endOf("2026-03-29T01:00:00Z", "Europe/Paris", "02:30", "04:00")).toBe("2026-03-29T02:00:00.000Z")
  })

  it("boundaries inside the fall-back overlap follow the clock, which reads the repeated hour twice", () => {
    // 00:30-01:30 New York on 2026-11-01: quiet until 01:30 EDT, then the clock reads 01:00-01:30
    // again (EST) and it is quiet again until 01:30 EST.
    expect(endOf("2026-11-01T04:45:00Z", "America/New_York", "00:30", "01:30")).toBe("2026-11-01T05:30:00.000Z")
    expect(endOf("2026-11-01T05:45:00Z", "America/New_York", "00:30", "01:30")).toBeUndefined()
    expect(endOf("2026-11-01T06:15:00Z", "America/New_York", "00:30", "01:30")).toBe("2026-11-01T06:30:00.000Z")
    // 01:30-03:00: quiet from 01:30 EDT until the clock goes back to 01:00 EST, then from 01:30 EST.
    expect(endOf("2026-11-01T05:45:00Z", "America/New_York", "01:30", "03:00")).toBe("2026-11-01T06:00:00.000Z")
    expect(endOf("2026-11-01T06:00:00Z", "America/New_York", "01:30", "03:00")).toBeUndefined()
    expect(endOf("2026-11-01T06:30:00Z", "America/New_York", "01:30", "03:00")).toBe("2026-11-01T08:00:00.000Z")
  })

  it("Asia/Kolkata 22:00-07:00 at +05:30", () => {
    expect(endOf("2026-06-01T16:29:59Z", "Asia/Kolkata", "22:00", "07:00")).toBeUndefined()
    expect(endOf("2026-06-01T16:30:00Z", "Asia/Kolkata", "22:00", "07:00")).toBe("2026-06-02T01:30:00.000Z")
    expect(endOf("2026-06-01T18:00:00Z", "Asia/Kolkata", "22:00", "07:00")).toBe("2026-06-02T01:30:00.000Z")
    expect(endOf("2026-06-02T01:30:00Z", "Asia/Kolkata", "22:00", "07:00")).toBeUndefined()
  })

  it("Pacific/Chatham 22:00-07:00: 8 h when DST starts, 10 h when it ends", () => {
    // 2026-09-26 22:00 CHAST (+12:45) = 09:15Z; 2026-09-27 07:00 CHADT (+13:45) = 17:15Z.
    expect(endOf("2026-09-26T09:14:59Z", "Pacific/Chatham", "22:00", "07:00")).toBeUndefined()
    for (const now of ["2026-09-26T09:15:00Z", "2026-09-26T13:59:00Z", "2026-09-26T14:00:00Z"]) {
      expect(endOf(now, "Pacific/Chatham", "22:00", "07:00"), now).toBe("2026-09-26T17:15:00.000Z")
    }
    // 2026-04-04 22:00 CHADT = 08:15Z; 2026-04-05 07:00 CHAST = 18:15Z.
    expect(endOf("2026-04-04T08:15:00Z", "Pacific/Chatham", "22:00", "07:00")).toBe("2026-04-04T18:15:00.000Z")
    expect(endOf("2026-04-04T18:15:00Z", "Pacific/Chatham", "22:00", "07:00")).toBeUndefined()
  })
})

// ---------------------------------------------------------------------------
// deliveryTime
// ---------------------------------------------------------------------------

describe("deliveryTime", () => {
  const paris = zone("Europe/Paris")
  const newYork = zone("America/New_York")
  const night = quiet("22:00", "07:00")

  it("now, when nothing is asked and nobody sleeps", () => {
    expect(deliver("2026-07-01T12:00:00Z", { respectQuietHours: true, timeZone: paris, quietHours: night })).toBe(
      "2026-07-01T12:00:00.000Z"
    )
    expect(deliver("2026-07-01T23:00:00Z", { respectQuietHours: false, timeZone: paris, quietHours: night })).toBe(
      "2026-07-01T23:00:00.000Z"
    )
  })

  it("a UTC instant, or now if it has passed", () => {
    const at = (ms: number): DeliverAt => ({ _tag: "Utc", at: ms })
    const request = (deliverAt: DeliverAt): DeliveryRequest => ({
      deliverAt,
      respectQuietHours: false,
      timeZone: paris,
      quietHours: null
    })
    expect(deliver("2026-07-01T12:00:00Z", request(at(utc("2026-07-02T08:00:00Z"))))).toBe("2026-07-02T08:00:00.000Z")
    expect(deliver("2026-07-01T12:00:00Z", request(at(utc("2026-06-01T08:00:00Z"))))).toBe("2026-07-01T12:00:00.000Z")
    expect(deliver("2026-07-01T12:00:00Z", request(at(Number.NaN)))).toBe("invalid-instant")
    expect(deliver("2026-07-01T12:00:00Z", request(at(1.5)))).toBe("invalid-instant")
    expect(deliver("2026-07-01T12:00:00Z", request(at(Number.MAX_SAFE_INTEGER)))).toBe("invalid-instant")
    expect(Either.isLeft(deliveryTime(Number.NaN, request(at(0))))).toBe(true)
  })

  it("a local time by the rules in force on that day, not today's offset", () => {
    const request: DeliveryRequest = {
      deliverAt: { _tag: "Local", at: "2026-03-29T09:00" },
      respectQuietHours: false,
      timeZone: paris,
      quietHours: null
    }
    expect(deliver("2026-03-28T10:00:00Z", request)).toBe("2026-03-29T07:00:00.000Z")
    expect(deliver("2026-03-28T10:00:00Z", { ...request, deliverAt: { _tag: "Local", at: "2026-03-29T02:30" } })).toBe(
      "2026-03-29T01:00:00.000Z"
    )
    expect(deliver("2026-03-28T10:00:00Z", { ...request, deliverAt: { _tag: "Local", at: "2026-02-30T09:00" } })).toBe(
      "invalid-local-time"
    )
    // A local time already past: now.
    expect(deliver("2026-03-30T10:00:00Z", request)).toBe("2026-03-30T10:00:00.000Z")
  })

  it("a local time inside quiet hours is pushed to their end when asked to respect them", () => {
    const at = (local: string, respectQuietHours: boolean, timeZone = paris): DeliveryRequest => ({
      deliverAt: { _tag: "Local", at: local },
      respectQuietHours,
      timeZone,
      quietHours: night
    })
    // 06:30 on the Paris spring-forward morning: quiet until 07:00 CEST (05:00Z), not 06:00Z.
    expect(deliver("2026-03-28T10:00:00Z", at("2026-03-29T06:30", true))).toBe("2026-03-29T05:00:00.000Z")
    expect(deliver("2026-03-28T10:00:00Z", at("2026-03-29T06:30", false))).toBe("2026-03-29T04:30:00.000Z")
    // 02:30 in the gap is 03:00 CEST, inside quiet hours.
    expect(deliver("2026-03-28T10:00:00Z", at("2026-03-29T02:30", true))).toBe("2026-03-29T05:00:00.000Z")
    // The repeated 01:30 in New York: quiet until 07:00 EST.
    expect(deliver("2026-10-31T12:00:00Z", at("2026-11-01T01:30", true, newYork))).toBe("2026-11-01T12:00:00.000Z")
    // Outside quiet hours: as asked.
    expect(deliver("2026-10-31T12:00:00Z", at("2026-11-01T09:00", true, newYork))).toBe("2026-11-01T14:00:00.000Z")
  })

  it("now inside quiet hours: at their end", () => {
    expect(deliver("2026-11-01T05:30:00Z", { respectQuietHours: true, timeZone: newYork, quietHours: night })).toBe(
      "2026-11-01T12:00:00.000Z"
    )
  })
})

// ---------------------------------------------------------------------------
// Properties, against an oracle that reads the clock through Intl directly
// ---------------------------------------------------------------------------

const dayMs = 86_400_000
const mod = (n: number, m: number) => ((n % m) + m) % m

const formats = new Map<string, Intl.DateTimeFormat>()
const format = (timeZone: string) => {
  let f = formats.get(timeZone)
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      fractionalSecondDigits: 3
    })
    formats.set(timeZone, f)
  }
  return f
}

/** What a clock in `timeZone` reads at `utc`, as ms of a UTC date with those parts. */
const wallOf = (timeZone: string, utcMs: number): number => {
  const parts: Record<string, number> = {}
  for (const part of format(timeZone).formatToParts(utcMs)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value)
  }
  return Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second, parts.fractionalSecond)
}

const isQuietOracle = (timeZone: string, hoursOf: QuietHours, utcMs: number) => {
  const ms = (hhmm: string) => (Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3))) * 60_000
  const start = ms(hoursOf.start)
  const end = ms(hoursOf.end)
  const time = mod(wallOf(timeZone, utcMs), dayMs)
  return start < end ? start <= time && time < end : start > end && (time >= start || time < end)
}

const localString = (wall: number) => new Date(wall).toISOString().slice(0, 16)

const zones = [
  "Europe/Paris",
  "America/New_York",
  "Asia/Kolkata",
  "Pacific/Chatham",
  "Australia/Lord_Howe", // 30-minute DST
  "Antarctica/Troll", // 2-hour DST
  "America/St_Johns",
  "Asia/Kathmandu",
  "Europe/Dublin", // "negative" DST in the tz data
  "America/Santiago",
  "Australia/Sydney",
  "America/Havana", // changes at midnight
  "Africa/Casablanca", // changes around Ramadan
  "Pacific/Apia",
  "UTC"
] as const

const offsetOf = (timeZone: string, utcMs: number) => wallOf(timeZone, utcMs) - utcMs

/** Offset changes of each zone in 2024-2028, found day by day and bisected to the ms. */
const transitions: Record<string, ReadonlyArray<number>> = Object.fromEntries(zones.map((timeZone) => {
  const found: Array<number> = []
  for (let t = Date.UTC(2024, 0, 1); t < Date.UTC(2028, 0, 1); t += dayMs) {
    if (offsetOf(timeZone, t) === offsetOf(timeZone, t + dayMs)) continue
    let lo = t
    let hi = t + dayMs
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2)
      if (offsetOf(timeZone, mid) === offsetOf(timeZone, hi)) hi = mid
      else lo = mid
    }
    found.push(hi)
  }
  return [timeZone, found]
}))

const hourMs = 3_600_000

/** A zone and an instant: anywhere in 1990-2037, or within 36 h of one of the zone's transitions. */
const zoneAndInstant = fc.constantFrom(...zones).chain((timeZone) => {
  const near = transitions[timeZone]
  const anywhere = fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2037, 0, 1) })
  const instant = near.length === 0 ? anywhere : fc.oneof(
    anywhere,
    fc.tuple(fc.constantFrom(...near), fc.integer({ min: -36 * hourMs, max: 36 * hourMs })).map(([t, d]) => t + d),
    // Whole minutes around a transition, where boundaries fall.
    fc.tuple(fc.constantFrom(...near), fc.integer({ min: -36 * 60, max: 36 * 60 })).map(([t, m]) => t + m * 60_000)
  )
  return fc.tuple(fc.constant(timeZone), instant)
})

const clockTimes = fc.oneof(
  fc.constantFrom("00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "02:45", "03:00", "03:30", "03:45", "22:00", "23:00", "23:30", "07:00"),
  fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) =>
    `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`
  )
)

const quietHoursArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 6, arbitrary: fc.tuple(clockTimes, clockTimes).map(([start, end]) => quiet(start, end)) }
)

describe("properties", () => {
  it("deliveryTime is never before now, never quiet when quiet hours are respected, and pushes no further than needed", () => {
    fc.assert(
      fc.property(
        zoneAndInstant,
        quietHoursArb,
        fc.boolean(),
        fc.oneof(
          fc.constant("none" as const),
          fc.integer({ min: -2 * dayMs, max: 2 * dayMs }).map((d) => ({ utc: d })),
          fc.integer({ min: -24 * 60, max: 48 * 60 }).map((m) => ({ localMinutes: m }))
        ),
        ([timeZone, now], quietHours, respectQuietHours, ask) => {
          const deliverAt: DeliverAt | undefined = ask === "none"
            ? undefined
            : "utc" in ask
            ? { _tag: "Utc", at: Math.max(0, now + ask.utc) }
            : { _tag: "Local", at: localString(wallOf(timeZone, now) + ask.localMinutes * 60_000) }
          const result = deliveryTime(now, { deliverAt, respectQuietHours, timeZone: zone(timeZone), quietHours })
          if (Either.isLeft(result)) throw new Error(`unexpected ${result.left.message}`)
          const at = result.right
          expect(at).toBeGreaterThanOrEqual(now)
          let asked = now
          if (deliverAt?._tag === "Utc") asked = Math.max(now, deliverAt.at)
          if (deliverAt?._tag === "Local") {
            asked = Math.max(now, Either.getOrThrow(resolveLocal(deliverAt.at, timeZone)))
          }
          if (!respectQuietHours || quietHours === null) {
            expect(at).toBe(asked)
            return
          }
          expect(isQuietOracle(timeZone, quietHours, at), `${iso(at)} is quiet in ${timeZone}`).toBe(false)
          // Everything between the asked time and the result is quiet: nothing was pushed past an exit.
          expect(at).toBeGreaterThanOrEqual(asked)
          for (let i = 0; i < 8 && at > asked; i++) {
            const probe = i === 7 ? at - 1 : asked + Math.floor(((at - asked) * i) / 7)
            expect(isQuietOracle(timeZone, quietHours, probe), `${iso(probe)} before ${iso(at)}`).toBe(true)
          }
        }
      ),
      { numRuns: 3000 }
    )
  })

  it("resolveLocal gives the earliest instant that reads the wall time, or the end of a gap", () => {
    fc.assert(
      fc.property(zoneAndInstant, ([timeZone, instant]) => {
        const wall = Math.floor(wallOf(timeZone, instant) / 60_000) * 60_000
        const at = Either.getOrThrow(resolveLocal(localString(wall), timeZone))
        const reads = wallOf(timeZone, at)
        if (reads === wall) {
          // Earliest: no instant up to 2 h before (the largest DST step here) reads it too.
          for (const back of [30, 60, 120]) expect(wallOf(timeZone, at - back * 60_000)).not.toBe(wall)
        } else {
          // A gap: the clock jumps from before the wall time to after it at `at`.
          expect(reads).toBeGreaterThan(wall)
          expect(wallOf(timeZone, at - 1)).toBeLessThan(wall)
        }
      }),
      { numRuns: 3000 }
    )
  })

  it("the wall time an instant reads resolves back to it, or to its earlier twin in an overlap", () => {
    fc.assert(
      fc.property(zoneAndInstant, ([timeZone, instant]) => {
        const minute = Math.floor(instant / 60_000) * 60_000
        const wall = wallOf(timeZone, minute)
        const at = Either.getOrThrow(resolveLocal(localString(wall), timeZone))
        expect(wallOf(timeZone, at)).toBe(wall)
        expect(at).toBeLessThanOrEqual(minute)
      }),
      { numRuns: 3000 }
    )
  })
})
