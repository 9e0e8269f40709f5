/**
 * Verifies client JWTs and turns them into `Grant`s, with `jose`.
 *
 * One algorithm per node, fixed by configuration: HS256 with a shared secret,
 * RS256 with an SPKI public key, or RS256 with keys from a JWKS URL. jose is
 * given exactly that algorithm, so `alg: none` and the HS/RS confusion attack
 * (an HS256 token "signed" with the RSA public key as the secret) are refused
 * before any key is touched. `exp` and `nbf` are checked with a 5 s clock
 * tolerance; `iss` and `aud` when configured.
 *
 * Refusals are `AuthError`s with a stable `reason` and a fixed message per
 * reason: nothing about the key or jose's internals reaches a client.
 */
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import type { Scope } from "effect"
import { createRemoteJWKSet, errors, importSPKI, jwtVerify } from "jose"
import type { JWTVerifyGetKey, JWTVerifyOptions, KeyInput } from "jose"
import { fromClaims, type Grant } from "./Grant.ts"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * Why a token was refused.
 * - `missing`: no token at all.
 * - `malformed`: not a compact JWS / JWT.
 * - `expired`: `exp` is past.
 * - `not-yet-valid`: `nbf` is in the future.
 * - `bad-signature`: wrong key, unknown `kid`, or an algorithm other than the configured one (`none` included).
 * - `claims`: wrong `iss` or `aud`, or `sub` / `weft` of the wrong shape.
 * - `unavailable`: the JWKS could not be fetched; the token may be fine (the HTTP route answers 503).
 * - `not-configured`: the node has no verifier configured and refuses every token.
 */
export const AuthReason = Schema.Literal(
  "missing",
  "malformed",
  "expired",
  "not-yet-valid",
  "bad-signature",
  "claims",
  "unavailable",
  "not-configured"
)
export type AuthReason = typeof AuthReason.Type

export class AuthError extends Schema.TaggedError<AuthError>()("AuthError", {
  reason: AuthReason,
  message: Schema.String
}) {}

/** Fixed texts, safe to show a client: they name the check that failed and never the key. */
const messages: Record<AuthReason, string> = {
  missing: "no bearer token",
  malformed: "the token is not a well-formed JWT",
  expired: "the token has expired",
  "not-yet-valid": "the token is not valid yet (nbf)",
  "bad-signature": "the token's signature or algorithm is not accepted",
  claims: "the token's claims are not accepted",
  unavailable: "the keys to verify the token cannot be fetched right now",
  "not-configured": "no JWT verifier is configured on this node (set --jwt-secret, --jwt-public-key or --jwt-jwks-url)"
}

const refuse = (reason: AuthReason, detail?: string): AuthError =>
  new AuthError({ reason, message: detail === undefined ? messages[reason] : `${messages[reason]}: ${detail}` })

/** A verifier's configuration is unusable (bad PEM, bad URL, short secret). Start-up fails with it. */
export class JwtConfigError extends Schema.TaggedError<JwtConfigError>()("JwtConfigError", {
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

export type Mode = "hs256" | "rs256" | "jwks" | "disabled"

export interface JwtVerifierService {
  /** Which kind of verifier this is, for start-up logs. */
  readonly mode: Mode
  /** Verifies a compact JWT and makes its grant. */
  readonly verify: (token: string) => Effect.Effect<Grant, AuthError>
}

export class JwtVerifier extends Context.Tag("@weft/auth/JwtVerifier")<JwtVerifier, JwtVerifierService>() {}

/** Checks shared by every mode. */
export interface ClaimOptions {
  /** Required `iss`, when set. */
  readonly issuer?: string | undefined
  /** Required `aud` (one of the token's audiences), when set. */
  readonly audience?: string | undefined
}

/** Seconds of clock skew tolerated on `exp` and `nbf` between the token issuer and this node. */
export const clockToleranceSeconds = 5

/**
 * Tokens are headers: bounded so that a huge header cannot make us base64-decode
 * and JSON-parse megabytes. Real JWTs are well under 4 KiB.
 */
const maxTokenLength = 8192

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/**
 * Thrown by our JWKS key resolver when the key set could not be fetched, so that
 * `classify` can tell "the IdP is down" from "the token is bad".
 */
class JwksUnavailable extends Error {}

/** Maps whatever jose threw to a reason. Unknown failures refuse the token. */
const classify = (cause: unknown): AuthError => {
  if (cause instanceof JwksUnavailable) return refuse("unavailable")
  if (cause instanceof errors.JWTExpired) return refuse("expired")
  if (cause instanceof errors.JWTClaimValidationFailed) {
    if (cause.claim === "nbf" && cause.reason === "check_failed") return refuse("not-yet-valid")
    // The claim's name only (iss, aud, exp...): it is the client's own token, and says what to fix.
    return refuse("claims", cause.claim)
  }
  if (
    cause instanceof errors.JWSSignatureVerificationFailed ||
    cause instanceof errors.JOSEAlgNotAllowed ||
    cause instanceof errors.JWKSNoMatchingKey ||
    cause instanceof errors.JWKSMultipleMatchingKeys
  ) return refuse("bad-signature")
  return refuse("malformed")
}

type Key = KeyInput | JWTVerifyGetKey

const makeVerifier = (
  mode: Exclude<Mode, "disabled">,
  key: Key,
  algorithm: "HS256" | "RS256",
  claims: ClaimOptions
): JwtVerifierService => {
  const options: JWTVerifyOptions = {
    algorithms: [algorithm],
    clockTolerance: clockToleranceSeconds,
    ...(claims.issuer === undefined ? {} : { issuer: claims.issuer }),
    ...(claims.audience === undefined ? {} : { audience: claims.audience })
  }
  return {
    mode,
    verify: (token) => {
      if (token.length === 0) return Effect.fail(refuse("missing"))
      if (token.length > maxTokenLength) return Effect.fail(refuse("malformed"))
      return Effect.tryPromise({ try: () => jwtVerify(token, key, options), catch: classify }).pipe(
        // jose checked the signature and the registered claims; the shape of ours is checked here.
        Effect.flatMap((result) => fromClaims(result.payload)),
        Effect.catchTag("ParseError", () => Effect.fail(refuse("claims", "sub or weft")))
      )
    }
  }
}

/** HS256 secrets shorter than the hash output are weak (RFC 7518 §3.2); the node's config asks for the same. */
const minSecretBytes = 32

export interface Hs256Options extends ClaimOptions {
  readonly secret: Redacted.Redacted<string>
}

export const makeHs256 = (options: Hs256Options): Effect.Effect<JwtVerifierService, JwtConfigError> =>
  Effect.suspend(() => {
    const secret = new TextEncoder().encode(Redacted.value(options.secret))
    if (secret.length < minSecretBytes) {
      return Effect.fail(new JwtConfigError({ message: `the HS256 secret must be at least ${minSecretBytes} bytes` }))
    }
    return Effect.succeed(makeVerifier("hs256", secret, "HS256", options))
  })

export interface Rs256Options extends ClaimOptions {
  /** SPKI PEM (`-----BEGIN PUBLIC KEY-----`). */
  readonly publicKey: string
}

export const makeRs256 = (options: Rs256Options): Effect.Effect<JwtVerifierService, JwtConfigError> =>
  Effect.tryPromise({
    try: () => importSPKI(options.publicKey, "RS256"),
    // jose's message may quote the input; ours does not.
    catch: () => new JwtConfigError({ message: "the RS256 public key is not a valid SPKI PEM RSA key" })
  }).pipe(Effect.map((key) => makeVerifier("rs256", key, "RS256", options)))

export interface JwksOptions extends ClaimOptions {
  /** http(s) URL of the JSON Web Key Set. */
  readonly url: string
  /** Abort a JWKS fetch after this long (default 5 s). */
  readonly timeoutMs?: number
  /** Minimum time between two fetches caused by an unknown `kid` (default 30 s: a flood of forged kids cannot hammer the IdP). */
  readonly cooldownMs?: number
  /** Refetch the set when it is older than this (default 10 min), so rotated keys are picked up. */
  readonly cacheMaxAgeMs?: number
}

/**
 * RS256 with keys from a JWKS URL. jose caches the set and refetches it when
 * it is stale or a token names an unknown `kid` (at most once per cooldown).
 * The set is fetched once in the background at start-up so the first client
 * does not wait for it; failing to reach it does not stop the node, it makes
 * verification answer `unavailable` until the IdP is back.
 */
export const makeJwks = (options: JwksOptions): Effect.Effect<JwtVerifierService, JwtConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const url = yield* Effect.try({
      try: () => new URL(options.url),
      catch: () => new JwtConfigError({ message: "the JWKS URL is not a valid URL" })
    }).pipe(
      Effect.filterOrFail(
        (url) => url.protocol === "https:" || url.protocol === "http:",
        () => new JwtConfigError({ message: "the JWKS URL must be http(s)" })
      )
    )
    const jwks = createRemoteJWKSet(url, {
      timeoutDuration: options.timeoutMs ?? 5000,
      cooldownDuration: options.cooldownMs ?? 30_000,
      cacheMaxAge: options.cacheMaxAgeMs ?? 600_000
    })
    // A key the set does not have is the token's fault; anything else (network, HTTP status,
    // a body that is not a key set, a timeout) is the IdP's, and must not read as a bad token.
    const getKey: JWTVerifyGetKey = (header, token) =>
      jwks(header, token).catch((cause: unknown) => {
        if (cause instanceof errors.JWKSNoMatchingKey || cause instanceof errors.JWKSMultipleMatchingKeys) throw cause
        throw new JwksUnavailable("JWKS unavailable", { cause })
      })
    yield* Effect.tryPromise(() => jwks.reload()).pipe(
      Effect.catchAll(() =>
        Effect.logWarning("the JWKS cannot be fetched yet; tokens are refused as unavailable until it can").pipe(
          Effect.annotateLogs({ jwks: url.origin + url.pathname })
        )
      ),
      Effect.forkScoped
    )
    return makeVerifier("jwks", getKey, "RS256", options)
  })

/** Refuses every token with `not-configured`: a node without JWT config still starts. */
export const disabled: JwtVerifierService = {
  mode: "disabled",
  verify: () => Effect.fail(refuse("not-configured"))
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

export const layerHs256 = (options: Hs256Options): Layer.Layer<JwtVerifier, JwtConfigError> =>
  Layer.effect(JwtVerifier, makeHs256(options))

export const layerRs256 = (options: Rs256Options): Layer.Layer<JwtVerifier, JwtConfigError> =>
  Layer.effect(JwtVerifier, makeRs256(options))

export const layerJwks = (options: JwksOptions): Layer.Layer<JwtVerifier, JwtConfigError> =>
  Layer.scoped(JwtVerifier, makeJwks(options))

export const layerDisabled: Layer.Layer<JwtVerifier> = Layer.succeed(JwtVerifier, disabled)

/** The node's JWT keys, as named in its configuration (`NodeConfig`). */
export interface Config {
  readonly jwtSecret?: Redacted.Redacted<string> | undefined
  readonly jwtPublicKey?: string | undefined
  readonly jwtJwksUrl?: string | undefined
  readonly jwtIssuer?: string | undefined
  readonly jwtAudience?: string | undefined
}

/**
 * The verifier the configuration asks for: the one key given, or `layerDisabled`
 * (with a warning) when none is. More than one key is a configuration error.
 */
export const layerConfig = (config: Config): Layer.Layer<JwtVerifier, JwtConfigError> => {
  const claims: ClaimOptions = { issuer: config.jwtIssuer, audience: config.jwtAudience }
  const given = [config.jwtSecret, config.jwtPublicKey, config.jwtJwksUrl].filter((key) => key !== undefined)
  if (given.length > 1) {
    return Layer.fail(new JwtConfigError({ message: "set only one of jwtSecret, jwtPublicKey, jwtJwksUrl" }))
  }
  if (config.jwtSecret !== undefined) return layerHs256({ ...claims, secret: config.jwtSecret })
  if (config.jwtPublicKey !== undefined) return layerRs256({ ...claims, publicKey: config.jwtPublicKey })
  if (config.jwtJwksUrl !== undefined) return layerJwks({ ...claims, url: config.jwtJwksUrl })
  return Layer.effect(
    JwtVerifier,
    Effect.as(
      Effect.logWarning("no JWT verifier is configured: every ticket request is refused with 401"),
      disabled
    )
  )
}

/** For callers that want the refusal reasons as data (docs, tests). */
export const reasons: ReadonlyArray<AuthReason> = AuthReason.literals
