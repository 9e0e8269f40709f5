/**
 * `POST /v1/tickets` through the router as the node mounts it, as a web
 * handler (no socket), and `redeem` / `Auth` as the gateway calls them.
 */
import { HttpApp, HttpRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, LogLevel, Schema, TestClock } from "effect"
import type { Scope } from "effect"
import { Grant } from "../src/Grant.ts"
import { Auth, Banned, IssuedTicket, layerAuth, redeem, redeemStatus, routes, Unauthorized, Unavailable } from "../src/http.ts"
import * as Jwt from "../src/Jwt.ts"
import * as Revocations from "../src/Revocations.ts"
import * as Tickets from "../src/Tickets.ts"
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

class TestRoutes extends HttpRouter.Tag("@weft/auth/test/TestRoutes")<TestRoutes>() {}

type Handler = (request: Request) => Promise<Response>

/** The routes on a router of their own, as a fetch-style handler, with the given verifier, tickets and revocations. */
const handlerWith = <E>(
  deps: Layer.Layer<Jwt.JwtVerifier | Tickets.Tickets, E>,
  revocations: Revocations.RevocationsService = Revocations.makeMemory()
): Effect.Effect<{ readonly handle: Handler; readonly tickets: Tickets.TicketsService }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const router = yield* TestRoutes.router
    const app = yield* HttpRouter.toHttpApp(router)
    const runtime = yield* Effect.runtime<HttpRouter.HttpRouter.DefaultServices>()
    const tickets = yield* Tickets.Tickets
    return { handle: HttpApp.toWebHandlerRuntime(runtime)(app), tickets }
  }).pipe(
    Effect.provide(
      TestRoutes.use(routes).pipe(
        Layer.provideMerge(TestRoutes.Live),
        Layer.provideMerge(deps),
        Layer.provideMerge(Layer.succeed(Revocations.Revocations, revocations)),
        Layer.provideMerge(NodeHttpServer.layerContext)
      )
    ),
    Effect.orDie
  )

const memoryTickets = Tickets.layerMemory({ ttlSeconds: 30 })
const hs256 = Jwt.layerHs256({ secret })

/** A store that is down: every call fails the way the Redis store does while Redis is unreachable. */
const downStore: Tickets.Encoded = {
  put: () => Effect.fail(new Tickets.TicketError({ reason: "unavailable", message: "down" })),
  take: () => Effect.fail(new Tickets.TicketError({ reason: "unavailable", message: "down" }))
}
const downTickets = Layer.effect(Tickets.Tickets, Tickets.makeEncoded(downStore, { ttlSeconds: 30 }))

const post = (authorization?: string): Request =>
  new Request("http://weft.test/v1/tickets", {
    method: "POST",
    headers: authorization === undefined ? {} : { authorization }
  })

const body = <A, I>(schema: Schema.Schema<A, I>, response: Response) =>
  Effect.flatMap(Effect.promise(() => response.json()), Schema.decodeUnknown(schema)).pipe(Effect.orDie)

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

describe("POST /v1/tickets", () => {
  it.scoped("a valid JWT gets a ticket: 200, { ticket, expiresIn }, Cache-Control: no-store", () =>
    Effect.gen(function*() {
      const { handle, tickets } = yield* handlerWith(Layer.merge(hs256, memoryTickets))
      const token = yield* Effect.promise(() => signHs256({ sub: "alice", weft: { publish: ["room:*"] } }))
      const response = yield* Effect.promise(() => handle(post(`Bearer ${token}`)))
      expect(response.status).toBe(200)
      expect(response.headers.get("cache-control")).toBe("no-store")
      expect(response.headers.get("content-type")).toContain("application/json")
      const raw: unknown = yield* Effect.promise(() => response.clone().json())
      expect(Object.keys(raw ?? {}).sort()).toEqual(["expiresIn", "ticket"])
      const issued = yield* body(IssuedTicket, response)
      expect(issued.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(issued.expiresIn).toBe(30)
      expect(yield* tickets.take(issued.ticket)).toEqual(
        new Grant({ user: "alice", subscribe: ["user:{user}"], publish: ["room:*"] })
      )
    }))

  it.scoped("the Bearer scheme is case-insensitive and surrounding spaces are ignored", () =>
    Effect.gen(function*() {
      const { handle } = yield* handlerWith(Layer.merge(hs256, memoryTickets))
      const token = yield* Effect.promise(() => signHs256(baseClaims()))
      for (const header of [`bearer ${token}`, `BEARER   ${token}  `]) {
        expect((yield* Effect.promise(() => handle(post(header)))).status, header.slice(0, 12)).toBe(200)
      }
    }))

  it.scoped("refusals are 401 { error: unauthorized, reason } with WWW-Authenticate: Bearer", () =>
    Effect.gen(function*() {
      const { handle } = yield* handlerWith(Layer.merge(hs256, memoryTickets))
      const sign = (claims: Parameters<typeof signHs256>[0], key = secret) => Effect.promise(() => signHs256(claims, key))
      const cases: ReadonlyArray<readonly [string | undefined, Jwt.AuthReason]> = [
        [undefined, "missing"],
        ["", "missing"],
        ["Bearer", "missing"],
        ["Bearer   ", "missing"],
        ["Basic YWxpY2U6c2VjcmV0", "missing"],
        ["Bearer not-a-jwt", "malformed"],
        ["Bearer a b c", "malformed"],
        [`Bearer ${yield* sign({ sub: "alice", exp: nowSeconds() - 60 })}`, "expired"],
        [`Bearer ${yield* sign({ ...baseClaims(), nbf: nowSeconds() + 60 })}`, "not-yet-valid"],
        [`Bearer ${yield* sign(baseClaims(), otherSecret)}`, "bad-signature"],
        [`Bearer ${unsigned(baseClaims())}`, "bad-signature"],
        [`Bearer ${yield* sign({ ...baseClaims(), weft: { subscribe: "everything" } })}`, "claims"]
      ]
      for (const [header, reason] of cases) {
        const response = yield* Effect.promise(() => handle(post(header)))
        expect(response.status, String(header).slice(0, 30)).toBe(401)
        expect(response.headers.get("www-authenticate"), String(header).slice(0, 30)).toBe(
          reason === "missing" ? "Bearer" : "Bearer error=\"invalid_token\""
        )
        expect(response.headers.get("cache-control")).toBe("no-store")
        const refused = yield* body(Unauthorized, response)
        expect(refused.error).toBe("unauthorized")
        expect(refused.reason, String(header).slice(0, 30)).toBe(reason)
      }
    }))

  it.scoped("a node without JWT config answers 401 saying no verifier is configured", () =>
    Effect.gen(function*() {
      const { handle } = yield* handlerWith(Layer.merge(Jwt.layerDisabled, memoryTickets))
      const token = yield* Effect.promise(() => signHs256(baseClaims()))
      const response = yield* Effect.promise(() => handle(post(`Bearer ${token}`)))
      expect(response.status).toBe(401)
      const refused = yield* body(Unauthorized, response)
      expect(refused.reason).toBe("not-configured")
      expect(refused.message).toContain("no JWT verifier is configured")
    }))

  it.scoped("503 { error: unavailable } when the ticket store fails", () =>
    Effect.gen(function*() {
      const { handle } = yield* handlerWith(Layer.merge(hs256, downTickets))
      const token = yield* Effect.promise(() => signHs256(baseClaims()))
      const response = yield* Effect.promise(() => handle(post(`Bearer ${token}`)))
      expect(response.status).toBe(503)
      expect(response.headers.get("cache-control")).toBe("no-store")
      expect(yield* body(Unavailable, response)).toEqual({ error: "unavailable" })
      // A bad token is still a 401, store or no store: the token is checked first.
      const refused = yield* Effect.promise(() => handle(post("Bearer nope")))
      expect(refused.status).toBe(401)
    }).pipe(quiet))

  it.scoped("503 when the JWKS cannot be fetched: the token may be fine", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer({ error: "down" }, 500)
      const { handle } = yield* handlerWith(Layer.merge(Jwt.layerJwks({ url: server.url }), memoryTickets))
      const response = yield* Effect.promise(() => handle(post("Bearer aaa.bbb.ccc")))
      // A token that is not even well-formed is refused without the keys...
      expect(response.status).toBe(401)
      const keys = yield* Effect.promise(() => rsaKeys("k"))
      const token = yield* Effect.promise(() => signRs256(baseClaims(), keys))
      const unavailable = yield* Effect.promise(() => handle(post(`Bearer ${token}`)))
      // ...a well-formed one cannot be judged, and is not blamed for it.
      expect(unavailable.status).toBe(503)
      expect(yield* body(Unavailable, unavailable)).toEqual({ error: "unavailable" })
    }).pipe(quiet))

  it.scoped("a banned user gets 403 { error: banned, until } with Retry-After, and a ticket again once the ban ends", () =>
    Effect.gen(function*() {
      const revocations = Revocations.makeMemory()
      const { handle } = yield* handlerWith(Layer.merge(hs256, memoryTickets), revocations)
      const token = yield* Effect.promise(() => signHs256(baseClaims()))
      const ban = yield* revocations.ban("alice", { ttlMs: 90_500 })
      const refused = yield* Effect.promise(() => handle(post(`Bearer ${token}`)))
      expect(refused.status).toBe(403)
      expect(refused.headers.get("retry-after")).toBe("91")
      expect(refused.headers.get("cache-control")).toBe("no-store")
      expect(yield* body(Banned, refused)).toEqual({ error: "banned", until: ban.until })
      // Another user is not concerned; a bad token is still a 401 (the token is checked first).
      const bob = yield* Effect.promise(() => signHs256({ ...baseClaims(), sub: "bob" }))
      expect((yield* Effect.promise(() => handle(post(`Bearer ${bob}`)))).status).toBe(200)
      expect((yield* Effect.promise(() => handle(post("Bearer nope")))).status).toBe(401)
      yield* TestClock.adjust("91 seconds")
      expect((yield* Effect.promise(() => handle(post(`Bearer ${token}`)))).status).toBe(200)
    }))

  it.scoped("503 when the revocation store fails: a ban that cannot be read does not let the user in", () =>
    Effect.gen(function*() {
      const down: Revocations.Encoded = {
        put: () => Effect.fail(new Revocations.RevocationError({ reason: "unavailable", message: "down" })),
        get: () => Effect.fail(new Revocations.RevocationError({ reason: "unavailable", message: "down" })),
        remove: () => Effect.fail(new Revocations.RevocationError({ reason: "unavailable", message: "down" }))
      }
      const { handle } = yield* handlerWith(Layer.merge(hs256, memoryTickets), Revocations.makeEncoded(down))
      const token = yield* Effect.promise(() => signHs256(baseClaims()))
      const response = yield* Effect.promise(() => handle(post(`Bearer ${token}`)))
      expect(response.status).toBe(503)
      expect(yield* body(Unavailable, response)).toEqual({ error: "unavailable" })
    }).pipe(quiet))

  it.scoped("other methods on the path are not routed", () =>
    Effect.gen(function*() {
      const { handle } = yield* handlerWith(Layer.merge(hs256, memoryTickets))
      const response = yield* Effect.promise(() => handle(new Request("http://weft.test/v1/tickets")))
      expect(response.status).toBe(404)
    }))
})

describe("redeem (the gateway, before the upgrade)", () => {
  const reasonOf = (result: Either.Either<unknown, { readonly reason: string }>) =>
    Either.isLeft(result) ? result.left.reason : "granted"

  it.scoped("a ticket from the route redeems once to its grant; then it is unknown-or-used (401)", () =>
    Effect.gen(function*() {
      const { handle, tickets } = yield* handlerWith(Layer.merge(hs256, memoryTickets))
      const token = yield* Effect.promise(() => signHs256({ sub: "alice", weft: { device: "phone" } }))
      const issued = yield* body(IssuedTicket, yield* Effect.promise(() => handle(post(`Bearer ${token}`))))
      const redeemOnce = Effect.provideService(redeem(issued.ticket), Tickets.Tickets, tickets)
      const grant = yield* redeemOnce
      expect(grant).toEqual(new Grant({ user: "alice", device: "phone", subscribe: ["user:{user}"], publish: [] }))
      const again = yield* Effect.either(redeemOnce)
      expect(reasonOf(again)).toBe("unknown-or-used")
      expect(Either.isLeft(again) && redeemStatus(again.left)).toBe(401)
    }))

  it.scoped("missing, malformed and unknown tickets are refused with 401, without telling which", () =>
    Effect.gen(function*() {
      const tickets = yield* Tickets.makeMemory({ ttlSeconds: 30 })
      const cases: ReadonlyArray<readonly [string | null, string]> = [
        [null, "missing"],
        ["", "missing"],
        ["abc", "malformed"],
        ["A".repeat(44), "malformed"],
        ["A".repeat(43), "unknown-or-used"]
      ]
      for (const [ticket, expected] of cases) {
        const result = yield* Effect.either(Effect.provideService(redeem(ticket), Tickets.Tickets, tickets))
        expect(reasonOf(result), String(ticket)).toBe(expected)
        expect(Either.isLeft(result) && redeemStatus(result.left)).toBe(401)
      }
    }))

  it.scoped("a store that is down is unavailable (503); a corrupt entry is unknown-or-used (401)", () =>
    Effect.gen(function*() {
      const down = yield* Effect.orDie(Tickets.makeEncoded(downStore, { ttlSeconds: 30 }))
      const result = yield* Effect.either(Effect.provideService(redeem("A".repeat(43)), Tickets.Tickets, down))
      expect(reasonOf(result)).toBe("unavailable")
      expect(Either.isLeft(result) && redeemStatus(result.left)).toBe(503)

      const store = Tickets.makeMemoryEncoded({ sweepEveryMs: 1000 })
      const tickets = yield* Effect.orDie(Tickets.makeEncoded(store, { ttlSeconds: 30 }))
      yield* store.put(Tickets.hash("C".repeat(43)), "{not json", 10_000)
      const corrupt = yield* Effect.either(Effect.provideService(redeem("C".repeat(43)), Tickets.Tickets, tickets))
      expect(reasonOf(corrupt)).toBe("unknown-or-used")
    }).pipe(quiet))

  it.scoped("the Auth service redeems with the node's Tickets already provided", () =>
    Effect.gen(function*() {
      const tickets = yield* Tickets.makeMemory({ ttlSeconds: 30 })
      const auth = yield* Effect.provide(
        Auth,
        Layer.provide(layerAuth, Layer.mergeAll(Layer.succeed(Tickets.Tickets, tickets), hs256, Revocations.layerMemory))
      )
      const grant = new Grant({ user: "dave", subscribe: ["user:{user}"], publish: [] })
      const { ticket } = yield* tickets.issue(grant)
      expect(yield* auth.redeem(ticket)).toEqual(grant)
      expect(reasonOf(yield* Effect.either(auth.redeem(ticket)))).toBe("unknown-or-used")
    }))
})
