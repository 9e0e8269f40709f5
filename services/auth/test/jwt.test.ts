/**
 * JwtVerifier in its three modes (HS256 secret, RS256 SPKI key, RS256 JWKS
 * served from a throwaway 127.0.0.1 server), every refusal in each, the grant
 * made from the claims, and the disabled verifier.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, LogLevel, Redacted } from "effect"
import type { Scope } from "effect"
import type { JWTPayload } from "jose"
import { Grant } from "../src/Grant.ts"
import * as Jwt from "../src/Jwt.ts"
import {
  baseClaims,
  jwksServer,
  nowSeconds,
  otherSecret,
  rsaKeys,
  secret,
  signHs256,
  signRs256,
  unsigned
} from "./fixtures.ts"

const keys = await rsaKeys("key-1")
const otherKeys = await rsaKeys("key-1")

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

const reason = (result: Either.Either<unknown, Jwt.AuthError>) => (Either.isLeft(result) ? result.left.reason : "accepted")

// ---------------------------------------------------------------------------
// The same properties in every mode
// ---------------------------------------------------------------------------

interface ModeCase {
  readonly name: string
  readonly make: (claims: Jwt.ClaimOptions) => Effect.Effect<Jwt.JwtVerifierService, Jwt.JwtConfigError, Scope.Scope>
  /** Signs with the key the verifier trusts. */
  readonly sign: (claims: JWTPayload) => Promise<string>
  /** Signs with a key of the right kind that the verifier does not trust. */
  readonly signWrongKey: (claims: JWTPayload) => Promise<string>
  /** Signs with the other algorithm family. */
  readonly signOtherAlgorithm: (claims: JWTPayload) => Promise<string>
}

const modes: ReadonlyArray<ModeCase> = [
  {
    name: "HS256 secret",
    make: (claims) => Jwt.makeHs256({ ...claims, secret }),
    sign: (claims) => signHs256(claims),
    signWrongKey: (claims) => signHs256(claims, otherSecret),
    signOtherAlgorithm: (claims) => signRs256(claims, keys)
  },
  {
    name: "RS256 SPKI public key",
    make: (claims) => Jwt.makeRs256({ ...claims, publicKey: keys.spki }),
    sign: (claims) => signRs256(claims, keys),
    signWrongKey: (claims) => signRs256(claims, otherKeys),
    // The key-confusion attack: an HS256 MAC keyed with the public key everyone can read.
    signOtherAlgorithm: (claims) => signHs256(claims, keys.spki)
  },
  {
    name: "RS256 JWKS",
    make: (claims) =>
      Effect.flatMap(jwksServer({ keys: [keys.jwk] }), (server) => Jwt.makeJwks({ ...claims, url: server.url })),
    sign: (claims) => signRs256(claims, keys),
    // Same kid, different key: the set's key must not verify it.
    signWrongKey: (claims) => signRs256(claims, otherKeys),
    signOtherAlgorithm: (claims) => signHs256(claims, JSON.stringify(keys.jwk))
  }
]

for (const mode of modes) {
  describe(`JwtVerifier, ${mode.name}`, () => {
    const verifier = (claims: Jwt.ClaimOptions = {}) => Effect.orDie(mode.make(claims))
    const verify = (token: string, claims: Jwt.ClaimOptions = {}) =>
      Effect.flatMap(verifier(claims), (v) => Effect.either(v.verify(token)))

    it.scoped("accepts a valid token and grants the defaults: subscribe user:{user}, publish nothing", () =>
      Effect.gen(function*() {
        const exp = nowSeconds() + 600
        const grant = yield* Effect.flatMap(verifier(), (v) =>
          Effect.flatMap(Effect.promise(() => mode.sign({ sub: "alice", exp })), v.verify))
        expect(grant).toBeInstanceOf(Grant)
        expect(grant).toEqual(new Grant({ user: "alice", subscribe: ["user:{user}"], publish: [], expiresAt: exp * 1000 }))
      }))

    it.scoped("refuses a missing token", () =>
      Effect.gen(function*() {
        expect(reason(yield* verify(""))).toBe("missing")
      }))

    it.scoped("refuses malformed tokens", () =>
      Effect.gen(function*() {
        for (const token of ["abc", "a.b", "a.b.c", "a.b.c.d", "....", "x".repeat(9000), "Bearer abc.def.ghi"]) {
          expect(reason(yield* verify(token)), token.slice(0, 40)).toBe("malformed")
        }
        // A real signed token with a corrupted payload: the signature no longer matches.
        const good = yield* Effect.promise(() => mode.sign(baseClaims()))
        const [header, , signature] = good.split(".")
        const payload = Buffer.from(JSON.stringify({ sub: "mallory", exp: nowSeconds() + 60 })).toString("base64url")
        expect(reason(yield* verify(`${header}.${payload}.${signature}`))).toBe("bad-signature")
      }))

    it.scoped("refuses an expired token, allowing 5 s of clock skew", () =>
      Effect.gen(function*() {
        const expired = yield* Effect.promise(() => mode.sign({ sub: "alice", exp: nowSeconds() - 60 }))
        expect(reason(yield* verify(expired))).toBe("expired")
        const justExpired = yield* Effect.promise(() => mode.sign({ sub: "alice", exp: nowSeconds() - 2 }))
        expect(reason(yield* verify(justExpired))).toBe("accepted")
      }))

    it.scoped("refuses a token whose nbf is in the future, allowing 5 s of clock skew", () =>
      Effect.gen(function*() {
        const later = yield* Effect.promise(() => mode.sign({ ...baseClaims(), nbf: nowSeconds() + 60 }))
        expect(reason(yield* verify(later))).toBe("not-yet-valid")
        const almost = yield* Effect.promise(() => mode.sign({ ...baseClaims(), nbf: nowSeconds() + 2 }))
        expect(reason(yield* verify(almost))).toBe("accepted")
      }))

    it.scoped("checks the issuer when one is configured", () =>
      Effect.gen(function*() {
        const issuer = "https://idp.example"
        const right = yield* Effect.promise(() => mode.sign({ ...baseClaims(), iss: issuer }))
        const wrong = yield* Effect.promise(() => mode.sign({ ...baseClaims(), iss: "https://evil.example" }))
        const none = yield* Effect.promise(() => mode.sign(baseClaims()))
        expect(reason(yield* verify(right, { issuer }))).toBe("accepted")
        expect(reason(yield* verify(wrong, { issuer }))).toBe("claims")
        expect(reason(yield* verify(none, { issuer }))).toBe("claims")
        // Without a configured issuer any iss is fine.
        expect(reason(yield* verify(wrong))).toBe("accepted")
      }))

    it.scoped("checks the audience when one is configured", () =>
      Effect.gen(function*() {
        const audience = "weft"
        const right = yield* Effect.promise(() => mode.sign({ ...baseClaims(), aud: audience }))
        const among = yield* Effect.promise(() => mode.sign({ ...baseClaims(), aud: ["billing", audience] }))
        const wrong = yield* Effect.promise(() => mode.sign({ ...baseClaims(), aud: "billing" }))
        const none = yield* Effect.promise(() => mode.sign(baseClaims()))
        expect(reason(yield* verify(right, { audience }))).toBe("accepted")
        expect(reason(yield* verify(among, { audience }))).toBe("accepted")
        expect(reason(yield* verify(wrong, { audience }))).toBe("claims")
        expect(reason(yield* verify(none, { audience }))).toBe("claims")
      }))

    it.scoped("refuses a token signed with another key", () =>
      Effect.gen(function*() {
        const token = yield* Effect.promise(() => mode.signWrongKey(baseClaims()))
        expect(reason(yield* verify(token))).toBe("bad-signature")
      }))

    it.scoped("refuses alg none", () =>
      Effect.gen(function*() {
        expect(reason(yield* verify(unsigned(baseClaims())))).toBe("bad-signature")
        // Even with a signature part glued on.
        const [header, payload] = unsigned(baseClaims()).split(".")
        expect(reason(yield* verify(`${header}.${payload}.c2lnbmF0dXJl`))).toBe("bad-signature")
      }))

    it.scoped("refuses the other algorithm family (HS/RS mix-up)", () =>
      Effect.gen(function*() {
        const token = yield* Effect.promise(() => mode.signOtherAlgorithm(baseClaims()))
        expect(reason(yield* verify(token))).toBe("bad-signature")
      }))

    it.scoped("refuses bad sub and weft claims", () =>
      Effect.gen(function*() {
        const bad: ReadonlyArray<JWTPayload> = [
          { exp: nowSeconds() + 60 },
          { sub: "", exp: nowSeconds() + 60 },
          { sub: "a".repeat(201), exp: nowSeconds() + 60 },
          { ...baseClaims(), weft: null },
          { ...baseClaims(), weft: "everything" },
          { ...baseClaims(), weft: { subscribe: "room:*" } },
          { ...baseClaims(), weft: { subscribe: [1] } },
          { ...baseClaims(), weft: { publish: ["room general"] } },
          { ...baseClaims(), weft: { publish: ["room:(.*)"] } },
          { ...baseClaims(), weft: { subscribe: ["{admin}"] } },
          { ...baseClaims(), weft: { subscribe: ["user:{user"] } },
          { ...baseClaims(), weft: { subscribe: [""] } },
          { ...baseClaims(), weft: { subscribe: ["x".repeat(201)] } },
          { ...baseClaims(), weft: { subscribe: Array.from({ length: 101 }, (_, i) => `room:${i}`) } },
          { ...baseClaims(), weft: { device: "" } },
          { ...baseClaims(), weft: { device: 7 } },
          // A typo must not silently fall back to the defaults.
          { ...baseClaims(), weft: { subcribe: ["room:*"] } }
        ]
        for (const claims of bad) {
          const token = yield* Effect.promise(() => mode.sign(claims))
          expect(reason(yield* verify(token)), JSON.stringify(claims).slice(0, 120)).toBe("claims")
        }
      }))

    it.scoped("never puts key material in an error", () =>
      Effect.gen(function*() {
        const tokens = yield* Effect.promise(() =>
          Promise.all([mode.signWrongKey(baseClaims()), mode.signOtherAlgorithm(baseClaims())])
        )
        for (const token of [...tokens, unsigned(baseClaims()), "a.b.c"]) {
          const result = yield* verify(token)
          expect(Either.isLeft(result)).toBe(true)
          const text = JSON.stringify(result) + String(Either.isLeft(result) ? result.left.message : "")
          expect(text).not.toContain(Redacted.value(secret))
          expect(text).not.toContain("BEGIN PUBLIC KEY")
          expect(text).not.toContain(String(keys.jwk.n).slice(0, 32))
        }
      }))
  })
}

// ---------------------------------------------------------------------------
// Grants from claims
// ---------------------------------------------------------------------------

describe("grants from the weft claim", () => {
  const verify = (claims: JWTPayload) =>
    Effect.flatMap(Effect.orDie(Jwt.makeHs256({ secret })), (v) =>
      Effect.flatMap(Effect.promise(() => signHs256(claims)), v.verify))

  it.effect("takes device, subscribe and publish, and always adds user:{user} to subscribe", () =>
    Effect.gen(function*() {
      const grant = yield* verify({
        sub: "bob",
        weft: { device: "phone-1", subscribe: ["room:*", "presence:{user}"], publish: ["room:general"] }
      })
      expect(grant).toEqual(
        new Grant({
          user: "bob",
          device: "phone-1",
          subscribe: ["user:{user}", "room:*", "presence:{user}"],
          publish: ["room:general"]
        })
      )
      // No exp in the token: no expiry carried.
      expect(grant.expiresAt).toBeUndefined()
    }))

  it.effect("does not repeat user:{user} and defaults what the weft claim leaves out", () =>
    Effect.gen(function*() {
      const grant = yield* verify({ sub: "bob", weft: { subscribe: ["*", "user:{user}"] } })
      expect(grant.subscribe).toEqual(["*", "user:{user}"])
      expect(grant.publish).toEqual([])
      const onlyPublish = yield* verify({ sub: "bob", weft: { publish: ["chat:*"] } })
      expect(onlyPublish.subscribe).toEqual(["user:{user}"])
      expect(onlyPublish.publish).toEqual(["chat:*"])
    }))

  it.effect("takes the user's time zone from weft.tz, refusing fixed offsets and unknown zones", () =>
    Effect.gen(function*() {
      const grant = yield* verify({ sub: "dan", weft: { tz: "Europe/Paris" } })
      expect(grant.timeZone).toBe("Europe/Paris")
      expect((yield* verify({ sub: "dan" })).timeZone).toBeUndefined()
      for (const tz of ["+02:00", "Mars/Base", "", 5]) {
        const refused = yield* Effect.flip(verify({ sub: "dan", weft: { tz } }))
        expect(refused.reason).toBe("claims")
      }
    }))

  it.effect("ignores claims it does not know outside weft, and keeps a fractional exp in whole ms", () =>
    Effect.gen(function*() {
      const exp = nowSeconds() + 100.5
      const grant = yield* verify({ sub: "carol", exp, scope: "openid", roles: ["admin"] })
      expect(grant.user).toBe("carol")
      expect(grant.expiresAt).toBe(Math.floor(exp * 1000))
    }))
})

// ---------------------------------------------------------------------------
// Mode specifics
// ---------------------------------------------------------------------------

describe("JwtVerifier, JWKS specifics", () => {
  it.scoped("fetches the key set once and serves later tokens from jose's cache", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer({ keys: [keys.jwk] })
      const verifier = yield* Effect.orDie(Jwt.makeJwks({ url: server.url }))
      for (let i = 0; i < 5; i++) {
        const token = yield* Effect.promise(() => signRs256({ ...baseClaims(), sub: `user-${i}` }, keys))
        expect((yield* verifier.verify(token)).user).toBe(`user-${i}`)
      }
      expect(server.hits()).toBe(1)
    }))

  it.scoped("refuses a token whose kid is not in the set, without refetching inside the cooldown", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer({ keys: [keys.jwk] })
      const verifier = yield* Effect.orDie(Jwt.makeJwks({ url: server.url }))
      const good = yield* Effect.promise(() => signRs256(baseClaims(), keys))
      yield* verifier.verify(good)
      for (let i = 0; i < 5; i++) {
        const forged = yield* Effect.promise(() => signRs256(baseClaims(), otherKeys, `forged-${i}`))
        expect(reason(yield* Effect.either(verifier.verify(forged)))).toBe("bad-signature")
      }
      expect(server.hits()).toBe(1)
    }))

  it.scoped("answers unavailable (not a token refusal) when the key set cannot be fetched, and the node still starts", () =>
    Effect.gen(function*() {
      const token = yield* Effect.promise(() => signRs256(baseClaims(), keys))
      const failing = yield* jwksServer({ error: "down" }, 500)
      const notASet = yield* jwksServer({ nope: true })
      for (const url of [failing.url, notASet.url, "http://127.0.0.1:1/jwks.json"]) {
        const verifier = yield* Effect.orDie(Jwt.makeJwks({ url, timeoutMs: 2000 }))
        expect(reason(yield* Effect.either(verifier.verify(token))), url).toBe("unavailable")
      }
    }).pipe(quiet))

  it.effect("refuses a JWKS URL that is not http(s)", () =>
    Effect.gen(function*() {
      for (const url of ["not a url", "file:///etc/passwd"]) {
        const result = yield* Effect.either(Effect.scoped(Jwt.makeJwks({ url })))
        expect(Either.isLeft(result) && result.left._tag, url).toBe("JwtConfigError")
      }
    }))
})

describe("JwtVerifier configuration", () => {
  it.effect("refuses an HS256 secret shorter than 32 bytes, without echoing it", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(Jwt.makeHs256({ secret: Redacted.make("short-secret-xyz") }))
      expect(Either.isLeft(result) && result.left._tag).toBe("JwtConfigError")
      expect(JSON.stringify(result)).not.toContain("short-secret-xyz")
    }))

  it.effect("refuses an RS256 key that is not an SPKI PEM, without echoing it", () =>
    Effect.gen(function*() {
      const garbage = "-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZS1rZXktbWF0ZXJpYWw=\n-----END PUBLIC KEY-----"
      const result = yield* Effect.either(Jwt.makeRs256({ publicKey: garbage }))
      expect(Either.isLeft(result) && result.left._tag).toBe("JwtConfigError")
      expect(JSON.stringify(result)).not.toContain("Z2FyYmFnZS1rZXktbWF0ZXJpYWw")
    }))

  it.scoped("layerConfig picks the one configured mode, or the disabled verifier", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer({ keys: [keys.jwk] })
      const modeOf = (config: Jwt.Config) =>
        Effect.map(Effect.provide(Jwt.JwtVerifier, Jwt.layerConfig(config)), (v) => v.mode).pipe(Effect.orDie)
      expect(yield* modeOf({ jwtSecret: secret })).toBe("hs256")
      expect(yield* modeOf({ jwtPublicKey: keys.spki })).toBe("rs256")
      expect(yield* modeOf({ jwtJwksUrl: server.url })).toBe("jwks")
      expect(yield* modeOf({})).toBe("disabled")
      const both = yield* Effect.either(Effect.provide(Jwt.JwtVerifier, Jwt.layerConfig({ jwtSecret: secret, jwtPublicKey: keys.spki })))
      expect(Either.isLeft(both) && both.left._tag).toBe("JwtConfigError")
    }).pipe(quiet))

  it.effect("layerConfig passes the issuer and audience on", () =>
    Effect.gen(function*() {
      const verifier = yield* Effect.provide(
        Jwt.JwtVerifier,
        Jwt.layerConfig({ jwtSecret: secret, jwtIssuer: "https://idp.example", jwtAudience: "weft" })
      ).pipe(Effect.orDie)
      const wrong = yield* Effect.promise(() => signHs256({ ...baseClaims(), iss: "https://idp.example", aud: "other" }))
      const right = yield* Effect.promise(() => signHs256({ ...baseClaims(), iss: "https://idp.example", aud: "weft" }))
      expect(reason(yield* Effect.either(verifier.verify(wrong)))).toBe("claims")
      expect(reason(yield* Effect.either(verifier.verify(right)))).toBe("accepted")
    }))

  it.effect("the disabled verifier refuses every token, saying no verifier is configured", () =>
    Effect.gen(function*() {
      const verifier = yield* Effect.provide(Jwt.JwtVerifier, Jwt.layerDisabled)
      const token = yield* Effect.promise(() => signHs256(baseClaims()))
      for (const candidate of [token, "", unsigned(baseClaims())]) {
        const result = yield* Effect.either(verifier.verify(candidate))
        expect(reason(result)).toBe("not-configured")
        expect(Either.isLeft(result) && result.left.message).toContain("no JWT verifier is configured")
      }
      expect(verifier.mode).toBe("disabled")
    }))

  it.effect("layers build from their options", () =>
    Effect.gen(function*() {
      const layers = Layer.mergeAll(Jwt.layerHs256({ secret }))
      expect((yield* Effect.provide(Jwt.JwtVerifier, layers)).mode).toBe("hs256")
      expect((yield* Effect.provide(Jwt.JwtVerifier, Jwt.layerRs256({ publicKey: keys.spki }))).mode).toBe("rs256")
    }).pipe(Effect.orDie))
})
