/**
 * What a verified client may do: its user, its device and the channels it may
 * subscribe to and publish on. A `Grant` is made from a JWT's claims once,
 * when a ticket is issued, and travels with the ticket to whichever node the
 * client connects to.
 *
 * Claims read from the JWT (every other claim is ignored):
 * - `sub` (required): the user id, 1-200 characters.
 * - `exp` (optional): kept as `expiresAt` (ms) so the connection can be ended
 *   when the token would have expired.
 * - `weft` (optional): `{ device?: string, subscribe?: string[], publish?: string[],
 *   moderate?: string[], tz?: string }`; `tz` is the user's IANA time zone, which
 *   notifications use for local delivery times and quiet hours.
 *   Without `subscribe` the client may subscribe to `user:{user}` only; without
 *   `publish` it may publish nowhere. `user:{user}` is always added to
 *   `subscribe`: a client can always hear what is sent to its own user.
 *
 * Permission patterns are channels (see `@weft/protocol` `Channel`) where `*`
 * matches any run of characters and `{user}` stands for the user id; they are
 * compiled with `@weft/protocol`'s `matcher(patterns, user)`.
 */
import { Channel } from "@weft/protocol"
import { Effect, ParseResult, Schema } from "effect"

/** The user id: the JWT `sub`. Bounded because it ends up in channel names, keys and logs. */
export const User = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a user id (sub): at least 1 character" }),
  Schema.maxLength(200, { message: () => "a user id (sub): at most 200 characters" })
)

/** A device id chosen by the token issuer, to tell a user's connections apart. */
export const Device = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a device id: at least 1 character" }),
  Schema.maxLength(200, { message: () => "a device id: at most 200 characters" })
)

/** An IANA time zone name (`Europe/Paris`); fixed offsets have no daylight-saving rules and are refused. */
export const TimeZone = Schema.String.pipe(
  Schema.maxLength(64),
  Schema.filter((zone) => isTimeZone(zone) || `not an IANA time zone: ${JSON.stringify(zone)}`)
)

function isTimeZone(zone: string): boolean {
  if (/^[+-]/.test(zone)) return false
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return true
  } catch {
    return false
  }
}

/** A channel permission pattern (the protocol's syntax: channel characters, `*`, `{user}`). */
export const Pattern = Channel.Pattern

/** Bounded so that a token cannot make the matcher compile an enormous regular expression. */
export const Patterns = Schema.Array(Pattern).pipe(
  Schema.maxItems(100, { message: () => "at most 100 channel patterns" })
)

/** The pattern every grant subscribes to. */
export const ownUserChannel = "user:{user}"

export class Grant extends Schema.Class<Grant>("Grant")({
  /** The JWT `sub`. */
  user: User,
  device: Schema.optionalWith(Device, { exact: true }),
  /** Patterns of channels the client may subscribe to. */
  subscribe: Patterns,
  /** Patterns of channels the client may publish on. */
  publish: Patterns,
  /** Patterns of channels the client moderates (deletes others' messages, configures rooms). */
  moderate: Schema.optionalWith(Patterns, { default: () => [] }),
  /** The JWT `exp` in ms since the epoch, when the token had one. */
  expiresAt: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.nonNegative()), { exact: true }),
  /** The `weft.tz` claim: the user's time zone. */
  timeZone: Schema.optionalWith(TimeZone, { exact: true })
}) {}

/**
 * The `weft` claim. Unknown keys are refused rather than ignored: a misspelt
 * `subscribe` would otherwise silently fall back to the defaults.
 */
export const WeftClaim = Schema.Struct({
  device: Schema.optionalWith(Device, { exact: true }),
  subscribe: Schema.optionalWith(Patterns, { exact: true }),
  publish: Schema.optionalWith(Patterns, { exact: true }),
  /** Channels the user moderates: delete others' messages, configure the room. */
  moderate: Schema.optionalWith(Patterns, { exact: true }),
  tz: Schema.optionalWith(TimeZone, { exact: true })
}).annotations({ parseOptions: { onExcessProperty: "error" } })

/** The claims a grant is made from; a JWT carries many others, which are ignored. */
export const Claims = Schema.Struct({
  sub: User,
  // NumericDate: seconds, possibly fractional (RFC 7519 §2). jose has already checked it against the clock.
  exp: Schema.optionalWith(Schema.Number.pipe(Schema.finite(), Schema.nonNegative()), { exact: true }),
  weft: Schema.optionalWith(WeftClaim, { exact: true })
})

const decodeClaims = Schema.decodeUnknown(Claims)

/** Makes a grant from a verified JWT payload; fails when the claims have the wrong shape. */
export const fromClaims = (payload: unknown): Effect.Effect<Grant, ParseResult.ParseError> =>
  Effect.map(decodeClaims(payload), (claims) => {
    const subscribe = claims.weft?.subscribe ?? []
    return new Grant({
      user: claims.sub,
      ...(claims.weft?.device === undefined ? {} : { device: claims.weft.device }),
      subscribe: subscribe.includes(ownUserChannel) ? subscribe : [ownUserChannel, ...subscribe],
      publish: claims.weft?.publish ?? [],
      moderate: claims.weft?.moderate ?? [],
      ...(claims.exp === undefined ? {} : { expiresAt: Math.floor(claims.exp * 1000) }),
      ...(claims.weft?.tz === undefined ? {} : { timeZone: claims.weft.tz })
    })
  })
