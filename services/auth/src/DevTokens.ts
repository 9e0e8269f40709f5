/**
 * Dev tokens: short-lived HS256 JWTs for any user name, signed with the
 * node's own secret, so that the demo page can sign in without an identity
 * provider. Only a node started in dev mode issues them (the node's
 * `POST /v1/dev/token`); anyone who can reach it can be anyone, which is the
 * point of a demo and the reason it is never on in production.
 *
 * A dev token allows what a chat demo needs: subscribing to and publishing
 * on every `room:*` channel (and so the rooms' presence, pins and typing),
 * and the user's own `user:<name>` channel (always granted). It carries the
 * node's configured `iss` / `aud`, so the node's own verifier accepts it.
 */
import { Effect, Redacted, Schema } from "effect"
import { SignJWT } from "jose"
import { Device, TimeZone } from "./Grant.ts"

/** A dev user name: channel-safe, so that `user:<name>` is a channel. */
export const DevUser = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9._-]{1,64}$/, { message: () => "a name: 1-64 letters, digits, '.', '_' or '-'" })
)

/** What `POST /v1/dev/token` takes: the user, and optionally a device id and the user's time zone. */
export const DevTokenRequest = Schema.Struct({
  user: DevUser,
  device: Schema.optional(Device),
  tz: Schema.optional(TimeZone)
})
export type DevTokenRequest = typeof DevTokenRequest.Type

export const DevToken = Schema.Struct({ token: Schema.String, expiresIn: Schema.Number })

/** The channel permissions of a dev token. */
export const devPermissions = { subscribe: ["room:*"], publish: ["room:*"] } as const

/** How long a dev token lives: clients ask for a fresh one for every ticket, so this can be short. */
export const defaultTtlSeconds = 15 * 60

export interface Options {
  readonly secret: Redacted.Redacted<string>
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
  readonly ttlSeconds?: number
}

export class DevTokenError extends Schema.TaggedError<DevTokenError>()("DevTokenError", { message: Schema.String }) {}

/** Signs a dev token for `request.user`. */
export const issue = (options: Options, request: DevTokenRequest): Effect.Effect<typeof DevToken.Type, DevTokenError> => {
  const ttlSeconds = options.ttlSeconds ?? defaultTtlSeconds
  return Effect.tryPromise({
    try: () => {
      const weft = {
        ...devPermissions,
        ...(request.device === undefined ? {} : { device: request.device }),
        ...(request.tz === undefined ? {} : { tz: request.tz })
      }
      let jwt = new SignJWT({ weft })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(request.user)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
      if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer)
      if (options.audience !== undefined) jwt = jwt.setAudience(options.audience)
      return jwt.sign(new TextEncoder().encode(Redacted.value(options.secret)))
    },
    catch: (cause) => new DevTokenError({ message: `could not sign a dev token: ${String(cause)}` })
  }).pipe(Effect.map((token) => ({ token, expiresIn: ttlSeconds })))
}
