/**
 * Keys, token signing, a throwaway JWKS server and Redis helpers for the auth tests.
 * Servers bind 127.0.0.1 only and close with their scope.
 */
import { Redis } from "@weft/cluster"
import { Effect, Redacted } from "effect"
import type { Scope } from "effect"
import type IORedis from "ioredis"
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from "jose"
import type { CryptoKey, JWK, JWTPayload } from "jose"
import { createServer } from "node:http"

export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** A cluster name no other test (or run) uses, so tests never see each other's keys. */
export const uniqueCluster = (): string => `auth-${process.pid}-${Math.random().toString(36).slice(2, 10)}`

// ---------------------------------------------------------------------------
// Keys and tokens
// ---------------------------------------------------------------------------

export const secret = Redacted.make("a-test-secret-that-is-at-least-32-bytes-long")
export const otherSecret = Redacted.make("another-test-secret-also-32-bytes-or-more!!")

export interface RsaKeys {
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  readonly spki: string
  readonly jwk: JWK
}

export const rsaKeys = async (kid: string): Promise<RsaKeys> => {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true })
  const spki = await exportSPKI(publicKey)
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }
  return { privateKey, publicKey, spki, jwk }
}

/** Seconds since the epoch, as JWT NumericDates are. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** Claims a test token gets unless it says otherwise: a user and an hour of validity. */
export const baseClaims = (): JWTPayload => ({ sub: "alice", iat: nowSeconds(), exp: nowSeconds() + 3600 })

export const signHs256 = (claims: JWTPayload, key: Redacted.Redacted<string> | string = secret): Promise<string> =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(typeof key === "string" ? key : Redacted.value(key)))

export const signRs256 = (claims: JWTPayload, keys: RsaKeys, kid: string | undefined = keys.jwk.kid): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "JWT", ...(kid === undefined ? {} : { kid }) }).sign(
    keys.privateKey
  )

/** `alg: none`: no signature at all. */
export const unsigned = (claims: JWTPayload): string => new UnsecuredJWT(claims).encode()

// ---------------------------------------------------------------------------
// JWKS server
// ---------------------------------------------------------------------------

export interface JwksServer {
  readonly url: string
  /** How many times the key set was fetched. */
  readonly hits: () => number
}

/** Serves `body` with `status` at `/jwks.json` on 127.0.0.1 until the scope closes. */
export const jwksServer = (body: unknown, status = 200): Effect.Effect<JwksServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    let hits = 0
    const server = yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createServer>>((resume) => {
        const server = createServer((request, response) => {
          hits++
          if (request.url !== "/jwks.json") {
            response.writeHead(404).end()
            return
          }
          response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return { url: `http://127.0.0.1:${port}/jwks.json`, hits: () => hits }
  })

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

/** Every key matching `pattern`, SCAN by SCAN. */
export const scan = (client: IORedis, pattern: string): Effect.Effect<Array<string>> =>
  Effect.promise(async () => {
    const found = new Set<string>()
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      for (const key of keys) found.add(key)
      cursor = next
    } while (cursor !== "0")
    return [...found].sort()
  })

/** A Redis connection whose cluster's keys are deleted when the scope closes. */
export const redisFor = (cluster: string): Effect.Effect<Redis.RedisService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.make({ url: redisUrl, name: "auth-test" })
    yield* Effect.addFinalizer(() =>
      scan(redis.client, `${Redis.keyPrefix(cluster)}*`).pipe(
        Effect.flatMap((keys) => (keys.length === 0 ? Effect.void : redis.use((client) => client.del(...keys)))),
        Effect.ignore
      )
    )
    return redis
  })
