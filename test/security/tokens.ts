/**
 * Hostile JWTs for the security tests, each made the way an attacker would: unsigned (`alg:
 * none`), signed with another key or another algorithm, expired, not yet valid, for another
 * issuer or audience. Only `jose` and node:crypto, so nothing here trusts Weft's own code.
 */
import { SignJWT } from "jose"
import { generateKeyPairSync } from "node:crypto"
import { jwtSecret } from "../support/jwt.ts"

const secretKey = (secret: string) => new TextEncoder().encode(secret)
const now = () => Math.floor(Date.now() / 1000)

export interface TokenClaims {
  readonly sub: string
  readonly weft?: Record<string, unknown>
  readonly iss?: string
  readonly aud?: string
  readonly exp?: number
  readonly nbf?: number
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

/** A token with `alg: none` and no signature (and one with a made-up signature glued on). */
export const unsigned = (claims: TokenClaims, signature = ""): string =>
  `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ exp: now() + 600, ...claims })}.${signature}`

/** HS256 with `secret` (the node's own by default), `exp` ten minutes ahead unless given. */
export const hs = (claims: TokenClaims, options: { readonly secret?: string; readonly alg?: "HS256" | "HS384" | "HS512" } = {}): Promise<string> =>
  new SignJWT({ exp: now() + 600, ...claims }).setProtectedHeader({ alg: options.alg ?? "HS256" }).sign(secretKey(options.secret ?? jwtSecret))

/** RS256 with a key pair made for the occasion: a valid signature the node has no key for. */
export const rs256 = (claims: TokenClaims): Promise<string> => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
  return new SignJWT({ exp: now() + 600, ...claims }).setProtectedHeader({ alg: "RS256" }).sign(privateKey)
}

/** A token whose payload was swapped after signing (the signature is the original's). */
export const tampered = async (claims: TokenClaims, swapped: TokenClaims): Promise<string> => {
  const [header, , signature] = (await hs(claims)).split(".")
  return `${header}.${base64url({ exp: now() + 600, ...swapped })}.${signature}`
}

export const secondsFromNow = (seconds: number): number => now() + seconds
