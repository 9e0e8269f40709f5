/**
 * Channel names and permission patterns.
 *
 * A channel is 1-200 characters of `A-Z a-z 0-9 . _ - : @ / | + =`, conventionally
 * `kind:name` (`room:general`, `user:alice`). A permission pattern is a
 * channel where `*` matches any run of characters and `{user}` stands for the
 * connection's user id: `room:*`, `user:{user}`, `*`.
 */
import { Schema } from "effect"

export const Channel = Schema.String.pipe(
  // `|`, `+` and `=` admit identity-provider user ids such as `auth0|123` in `user:<id>` channels.
  Schema.pattern(/^[A-Za-z0-9._\-:@/|+=]{1,200}$/, { message: () => "a channel: 1-200 of A-Z a-z 0-9 . _ - : @ / | + =" })
)

export const isChannel = Schema.is(Channel)

/**
 * A permission pattern: channel characters, `*` and the literal `{user}`. Any
 * other character (including a lone `{` or `}`) is refused, so a pattern can
 * never inject regular-expression syntax into `matcher`.
 */
export const Pattern = Schema.String.pipe(
  Schema.pattern(/^(?:[A-Za-z0-9._\-:@/|+=*]|\{user\})+$/, {
    message: () => "a channel pattern: channel characters, * and {user}"
  }),
  Schema.maxLength(200, { message: () => "a channel pattern: at most 200 characters" })
)

/** Escapes every regex metacharacter, `*` included: a user id such as `a*b` is literal. */
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Compiles patterns for one user into a matcher. */
export const matcher = (patterns: ReadonlyArray<string>, user: string): ((channel: string) => boolean) => {
  if (patterns.length === 0) return () => false
  if (patterns.includes("*")) return () => true
  const sources = patterns.map((pattern) =>
    pattern.split("*").map((part) => escape(part.replaceAll("{user}", user))).join(".*")
  )
  const regex = new RegExp(`^(?:${sources.join("|")})$`)
  return (channel) => regex.test(channel)
}
