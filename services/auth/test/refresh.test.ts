/**
 * `Refresh.refresh`: a live connection's new JWT is checked like one sent to
 * `POST /v1/tickets` (the same verifier), must name the connection's own user
 * and device, and is refused while the user is banned. What it returns is the
 * connection's new grant: new channels, new expiry.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { Grant } from "../src/Grant.ts"
import * as Jwt from "../src/Jwt.ts"
import { refresh } from "../src/Refresh.ts"
import * as Revocations from "../src/Revocations.ts"
import { baseClaims, jwksServer, nowSeconds, otherSecret, rsaKeys, secret, signHs256, signRs256 } from "./fixtures.ts"

const current = new Grant({ user: "alice", device: "phone", subscribe: ["user:{user}", "room:*"], publish: ["room:*"] })

const sign = (claims: Parameters<typeof signHs256>[0], key = secret) => Effect.promise(() => signHs256(claims, key))

const reasonOf = (result: Either.Either<Grant, { readonly reason: string }>): string => Either.isLeft(result) ? result.left.reason : "granted"

describe("Refresh.refresh", () => {
  const revocations = Revocations.makeMemory()
  const deps = Layer.merge(Jwt.layerHs256({ secret }), Layer.succeed(Revocations.Revocations, revocations))

  it.effect("a valid JWT for the same user and device gives the connection's new grant, new expiry and channels", () =>
    Effect.gen(function*() {
      const exp = nowSeconds() + 900
      const token = yield* sign({ sub: "alice", exp, weft: { device: "phone", subscribe: ["room:general"] } })
      const next = yield* refresh(current, token)
      expect(next).toEqual(
        new Grant({ user: "alice", device: "phone", subscribe: ["user:{user}", "room:general"], publish: [], expiresAt: exp * 1000 })
      )
    }).pipe(Effect.provide(deps)))

  it.effect("a JWT without exp gives a grant that never expires", () =>
    Effect.gen(function*() {
      const token = yield* sign({ sub: "alice", weft: { device: "phone" } })
      expect((yield* refresh(current, token)).expiresAt).toBeUndefined()
    }).pipe(Effect.provide(deps)))

  it.effect("another user's JWT, or the same user's for another device (or none), is wrong-user", () =>
    Effect.gen(function*() {
      const cases = [
        { ...baseClaims(), sub: "mallory", weft: { device: "phone" } },
        { ...baseClaims(), weft: { device: "laptop" } },
        baseClaims()
      ]
      for (const claims of cases) {
        const result = yield* Effect.either(refresh(current, yield* sign(claims)))
        expect(reasonOf(result), JSON.stringify(claims.weft ?? {})).toBe("wrong-user")
      }
    }).pipe(Effect.provide(deps)))

  it.effect("a JWT the ticket route would refuse is invalid, with the check that failed", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["not-a-jwt", "the token is not a well-formed JWT"],
        [yield* sign({ sub: "alice", exp: nowSeconds() - 60, weft: { device: "phone" } }), "the token has expired"],
        [yield* sign({ ...baseClaims(), weft: { device: "phone" } }, otherSecret), "the token's signature or algorithm is not accepted"],
        [yield* sign({ ...baseClaims(), weft: { device: "phone", subscribe: "everything" } }), "the token's claims are not accepted"]
      ]
      for (const [token, message] of cases) {
        const result = yield* Effect.either(refresh(current, token))
        expect(reasonOf(result)).toBe("invalid")
        expect(Either.isLeft(result) && result.left.message).toContain(message)
      }
    }).pipe(Effect.provide(deps)))

  it.effect("a banned user's JWT is refused while the ban lasts", () =>
    Effect.gen(function*() {
      const token = yield* sign({ ...baseClaims(), weft: { device: "phone" } })
      yield* revocations.ban("alice", { ttlMs: 60_000 })
      expect(reasonOf(yield* Effect.either(refresh(current, token)))).toBe("banned")
      yield* revocations.unban("alice")
      expect(reasonOf(yield* Effect.either(refresh(current, token)))).toBe("granted")
    }).pipe(Effect.provide(deps)))

  it.scoped("a JWKS or revocation store that cannot be reached is unavailable (the client may retry)", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer({ error: "down" }, 500)
      const keys = yield* Effect.promise(() => rsaKeys("k"))
      const token = yield* Effect.promise(() => signRs256({ ...baseClaims(), weft: { device: "phone" } }, keys))
      const jwks = yield* Effect.orDie(Jwt.makeJwks({ url: server.url }))
      const viaJwks = refresh(current, token).pipe(
        Effect.provideService(Jwt.JwtVerifier, jwks),
        Effect.provideService(Revocations.Revocations, Revocations.makeMemory())
      )
      expect(reasonOf(yield* Effect.either(viaJwks))).toBe("unavailable")

      const down = Revocations.makeEncoded({
        put: () => Effect.fail(new Revocations.RevocationError({ reason: "unavailable", message: "down" })),
        get: () => Effect.fail(new Revocations.RevocationError({ reason: "unavailable", message: "down" })),
        remove: () => Effect.fail(new Revocations.RevocationError({ reason: "unavailable", message: "down" }))
      })
      const hsToken = yield* sign({ ...baseClaims(), weft: { device: "phone" } })
      const viaDownStore = refresh(current, hsToken).pipe(
        Effect.provide(Layer.orDie(Jwt.layerHs256({ secret }))),
        Effect.provideService(Revocations.Revocations, down)
      )
      expect(reasonOf(yield* Effect.either(viaDownStore))).toBe("unavailable")
    }))
})
