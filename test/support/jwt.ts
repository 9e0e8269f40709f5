/**
 * Client JWTs for tests: HS256 with `jwtSecret` (start nodes with `--jwt-secret <jwtSecret>`).
 * Only `jose`, so tests that must not depend on Weft's own packages can use it.
 */
import { SignJWT } from "jose"

export const jwtSecret = "test-secret-that-is-long-enough-for-hs256!"

export interface Claims {
  readonly sub: string
  readonly weft?: {
    readonly device?: string
    readonly subscribe?: ReadonlyArray<string>
    readonly publish?: ReadonlyArray<string>
    readonly moderate?: ReadonlyArray<string>
    readonly tz?: string
  }
  /** A jose duration for `exp`, relative to now: "10m" (the default), "-1h" (already expired); `null`: no `exp` at all. */
  readonly expiresIn?: string | null
}

/** An HS256 JWT signed with `jwtSecret`. */
export const makeJwt = (claims: Claims, secret = jwtSecret): Promise<string> => {
  const { expiresIn, sub, ...rest } = claims
  const jwt = new SignJWT({ ...rest }).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt()
  return (expiresIn === null ? jwt : jwt.setExpirationTime(expiresIn ?? "10m")).sign(new TextEncoder().encode(secret))
}
