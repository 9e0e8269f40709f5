/**
 * Refreshing a live connection's credentials: the gateway's half of the
 * `refresh` frame. The new JWT is checked by the same rules as one sent to
 * `POST /v1/tickets` (the node's verifier: signature, `exp`, `nbf`, issuer,
 * audience, the claims' shape; then the user's ban), and must be for the
 * connection's own user and device: a connection never changes identity. Its
 * grant then replaces the connection's, with whatever channels and expiry
 * it carries.
 */
import { Effect, Schema } from "effect"
import type { Grant } from "./Grant.ts"
import { JwtVerifier } from "./Jwt.ts"
import { Revocations } from "./Revocations.ts"

/**
 * - `invalid`: the JWT is refused (malformed, bad signature, expired, not yet valid, wrong
 *   claims, no verifier configured); the message says which check failed.
 * - `wrong-user`: a valid JWT for another user, or another device, than the connection's.
 * - `banned`: the user is banned.
 * - `unavailable`: the JWKS or the revocation store cannot be reached; the client may retry.
 */
export const RefreshReason = Schema.Literal("invalid", "wrong-user", "banned", "unavailable")
export type RefreshReason = typeof RefreshReason.Type

export class RefreshError extends Schema.TaggedError<RefreshError>()("RefreshError", {
  reason: RefreshReason,
  message: Schema.String
}) {}

/** Checks `token` for the connection holding `current` and gives the connection's new grant. */
export const refresh = (current: Grant, token: string): Effect.Effect<Grant, RefreshError, JwtVerifier | Revocations> =>
  Effect.gen(function*() {
    const verifier = yield* JwtVerifier
    const revocations = yield* Revocations
    const next = yield* verifier.verify(token).pipe(
      Effect.mapError((error) =>
        new RefreshError({ reason: error.reason === "unavailable" ? "unavailable" : "invalid", message: error.message })
      )
    )
    if (next.user !== current.user) {
      return yield* new RefreshError({ reason: "wrong-user", message: "the token is for another user than the connection's" })
    }
    if (next.device !== current.device) {
      return yield* new RefreshError({ reason: "wrong-user", message: "the token is for another device than the connection's" })
    }
    const ban = yield* revocations.banned(next.user).pipe(
      Effect.mapError(() => new RefreshError({ reason: "unavailable", message: "the revocation store is unavailable; retry" }))
    )
    if (ban !== undefined) return yield* new RefreshError({ reason: "banned", message: "the user is banned" })
    return next
  })
