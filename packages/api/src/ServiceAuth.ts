/**
 * The server side of `ServiceAuth`: who may call the service API.
 *
 * A service credential is a random string (32+ characters, e.g.
 * `openssl rand -base64 32`) configured per calling service on the node. A
 * call presents it as `X-Weft-Key: <key>` or `Authorization: Bearer <key>`
 * (`X-Weft-Key` wins when both are sent). It is never a user's JWT: JWTs
 * identify users to the gateway, are issued by someone else and expire; a
 * JWT-shaped string is refused both as a configured key and when presented.
 *
 * Comparison is constant-time: the presented key and every configured key are
 * hashed with SHA-256 (web crypto) and the 32-byte digests are compared with
 * a loop that never exits early, against every configured key, so timing
 * reveals neither how much of a key matched nor which one did.
 *
 * A service may have several keys at once (rotation: add the new key, move the
 * caller, remove the old one). With no key configured the node still starts,
 * and every call is refused with a message saying so.
 */
import { Headers } from "@effect/platform"
import { Context, Data, Effect, Layer, Option, Redacted } from "effect"
import { ApiError, Caller, ServiceAuth } from "./Api.ts"
import { sha256 } from "./internal/digest.ts"

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/** One accepted key and the service it identifies (`Caller.service`). */
export interface ServiceCredential {
  readonly service: string
  readonly key: Redacted.Redacted<string>
}

/** A configured credential that cannot be used; the message names the service, never the key. */
export class ServiceAuthConfigError extends Data.TaggedError("ServiceAuthConfigError")<{ readonly message: string }> {}

/** Shortest key accepted: 32 characters of base64 carry 192 bits, beyond guessing. */
export const minKeyLength = 32

const servicePattern = /^[A-Za-z0-9._-]{1,64}$/

/** Three base64url segments, the first a JSON object (`eyJ` is `{"` in base64url): a JWT. */
const jwtShape = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/
export const looksLikeJwt = (value: string): boolean => jwtShape.test(value)

/**
 * Parses `orders=<key>,billing=<key>` (the form an environment variable can
 * carry; whitespace around entries is ignored). Keys cannot contain `,`.
 */
export const parseCredentials = (text: string): Effect.Effect<ReadonlyArray<ServiceCredential>, ServiceAuthConfigError> =>
  Effect.forEach(
    text.split(",").map((entry) => entry.trim()).filter((entry) => entry.length > 0),
    (entry, index) => {
      const at = entry.indexOf("=")
      return at <= 0
        ? Effect.fail(new ServiceAuthConfigError({ message: `service credential #${index + 1}: expected <service>=<key>` }))
        : Effect.succeed({ service: entry.slice(0, at).trim(), key: Redacted.make(entry.slice(at + 1).trim()) })
    }
  )

const validate = (credentials: ReadonlyArray<ServiceCredential>): Effect.Effect<void, ServiceAuthConfigError> =>
  Effect.gen(function*() {
    const owners = new Map<string, string>()
    for (const { key, service } of credentials) {
      const value = Redacted.value(key)
      if (!servicePattern.test(service)) {
        return yield* new ServiceAuthConfigError({ message: `service name ${JSON.stringify(service)}: use 1-64 of A-Z a-z 0-9 . _ -` })
      }
      if (looksLikeJwt(value)) {
        return yield* new ServiceAuthConfigError({
          message: `the key of service ${service} is a JWT; a service credential is a random string of ${minKeyLength}+ characters`
        })
      }
      if (value.length < minKeyLength) {
        return yield* new ServiceAuthConfigError({
          message: `the key of service ${service} is shorter than ${minKeyLength} characters`
        })
      }
      const owner = owners.get(value)
      // One key for two services would make `Caller` depend on configuration order.
      if (owner !== undefined && owner !== service) {
        return yield* new ServiceAuthConfigError({ message: `services ${owner} and ${service} share a key` })
      }
      owners.set(value, service)
    }
  })

// ---------------------------------------------------------------------------
// Constant-time comparison
// ---------------------------------------------------------------------------

/**
 * Whether `a` and `b` hold the same bytes, in time that depends only on their
 * length (which is public: we only compare SHA-256 digests, always 32 bytes).
 */
export const constantTimeEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return difference === 0
}

// ---------------------------------------------------------------------------
// Reading a credential from headers
// ---------------------------------------------------------------------------

/** The token of `Bearer <token>` (scheme case-insensitive, RFC 7235); `undefined` when absent or another scheme. */
const bearerToken = (authorization: string): string | undefined => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization.trim())
  return match?.[1]
}

/** The presented credential: `X-Weft-Key`, else `Authorization: Bearer`; `undefined` when neither. */
export const credentialFrom = (headers: Headers.Headers): string | undefined => {
  const key = Option.getOrUndefined(Headers.get(headers, "x-weft-key"))?.trim()
  if (key !== undefined && key.length > 0) return key
  const authorization = Option.getOrUndefined(Headers.get(headers, "authorization"))
  return authorization === undefined ? undefined : bearerToken(authorization)
}

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

export interface ServiceCredentialsService {
  /** The calling service for these request headers, or `ApiError({ reason: "unauthorized" })`. */
  readonly authenticate: (headers: Headers.Headers) => Effect.Effect<Caller["Type"], ApiError>
  /** How many keys are configured (0: every call is refused). */
  readonly size: number
}

/** Checks service credentials; the `ServiceAuth` middleware and the WebSocket upgrade both use it. */
export class ServiceCredentials
  extends Context.Tag("@weft/api/ServiceCredentials")<ServiceCredentials, ServiceCredentialsService>()
{}

const unauthorized = (message: string) => new ApiError({ reason: "unauthorized", message })

const noneConfigured = unauthorized(
  "this node has no service credentials configured, so it refuses every service API call; configure a key for the calling service"
)
const missing = unauthorized("no service credential: send `X-Weft-Key: <key>` or `Authorization: Bearer <key>`")
const jwtRefused = unauthorized("a user's JWT is not a service credential; send the key configured for the calling service")
const wrong = unauthorized("unknown service credential")

export const make = (
  credentials: ReadonlyArray<ServiceCredential>
): Effect.Effect<ServiceCredentialsService, ServiceAuthConfigError> =>
  Effect.gen(function*() {
    yield* validate(credentials)
    const digests = yield* Effect.forEach(credentials, ({ key, service }) =>
      Effect.map(sha256(Redacted.value(key)), (digest) => ({ service, digest })))
    if (digests.length === 0) {
      yield* Effect.logWarning("no service credentials configured: every service API call (/rpc) is refused")
    }
    const authenticate = (headers: Headers.Headers): Effect.Effect<Caller["Type"], ApiError> =>
      Effect.gen(function*() {
        if (digests.length === 0) return yield* noneConfigured
        const presented = credentialFrom(headers)
        if (presented === undefined) return yield* missing
        const digest = yield* sha256(presented)
        let match: string | undefined
        // Every configured key is compared, whatever matched before: the time taken does not tell which.
        for (const candidate of digests) {
          if (constantTimeEqual(candidate.digest, digest) && match === undefined) match = candidate.service
        }
        if (match !== undefined) return { service: match }
        return yield* looksLikeJwt(presented) ? jwtRefused : wrong
      })
    return { authenticate, size: digests.length }
  })

/** `ServiceAuth` on the server: each call's headers name a configured service, which becomes its `Caller`. */
export const middleware: Layer.Layer<ServiceAuth, never, ServiceCredentials> = Layer.effect(
  ServiceAuth,
  Effect.map(ServiceCredentials, (credentials) =>
    ServiceAuth.of(({ headers }) =>
      credentials.authenticate(headers).pipe(
        Effect.tapError((error) => Effect.logDebug("service API call refused").pipe(Effect.annotateLogs({ why: error.message })))
      )))
)

/** The credentials and the `ServiceAuth` middleware over them, for a node's service API. */
export const layer = (
  credentials: ReadonlyArray<ServiceCredential>
): Layer.Layer<ServiceAuth | ServiceCredentials, ServiceAuthConfigError> =>
  middleware.pipe(Layer.provideMerge(Layer.effect(ServiceCredentials, make(credentials))))
