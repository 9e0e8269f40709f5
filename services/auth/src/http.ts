/**
 * The auth role's HTTP surface and the gateway's half of the ticket flow.
 *
 * `POST /v1/tickets` with `Authorization: Bearer <jwt>`:
 * - 200 `{ "ticket": "...", "expiresIn": 30 }`
 * - 401 `{ "error": "unauthorized", "reason": "<AuthReason>", "message": "..." }` with `WWW-Authenticate`
 * - 403 `{ "error": "banned", "until": <ms> }` with `Retry-After` while the user is banned (`Revocations`)
 * - 503 `{ "error": "unavailable" }` when the ticket store, the revocation store or the JWKS cannot be reached
 * Every answer carries `Cache-Control: no-store`: a ticket is a credential.
 *
 * `redeem(ticket)` is what the gateway runs before a WebSocket upgrade, with
 * the `ticket` query parameter: the grant, or a `RedeemError` whose status
 * (`redeemStatus`) is 401 or 503. The `Auth` service offers the same call with
 * its `Tickets` already provided, for a gateway built once at start-up. Unknown, expired and already used tickets are
 * one reason on purpose: telling them apart would only help someone guessing.
 *
 * The `Auth` service also answers the gateway's other credential questions:
 * whether a user is banned (checked once more after the user's connection is
 * registered, see docs/auth.md) and a connection's `refresh` (`Refresh.ts`).
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Context, Effect, Layer, Schema } from "effect"
import type { Grant } from "./Grant.ts"
import { AuthError, AuthReason, JwtVerifier } from "./Jwt.ts"
import { refresh, type RefreshError } from "./Refresh.ts"
import { type Ban, type RevocationError, Revocations } from "./Revocations.ts"
import { isTicket, type TicketError, Tickets } from "./Tickets.ts"

type Router = HttpRouter.HttpRouter.Service<unknown, HttpRouter.HttpRouter.DefaultServices>

// ---------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------

export const IssuedTicket = Schema.Struct({ ticket: Schema.String, expiresIn: Schema.Number })

export const Unauthorized = Schema.Struct({
  error: Schema.Literal("unauthorized"),
  reason: AuthReason,
  message: Schema.String
})

export const Unavailable = Schema.Struct({ error: Schema.Literal("unavailable") })

/** The user is banned until `until` (ms since the epoch). */
export const Banned = Schema.Struct({ error: Schema.Literal("banned"), until: Schema.Number })

/** Only the header we read; a request's other headers are none of our business. */
const AuthHeaders = Schema.Struct({ authorization: Schema.optional(Schema.String) })

const noStore = { "cache-control": "no-store" }

/** The token of `Bearer <token>` (scheme case-insensitive, RFC 7235); "" when there is none. */
const bearerToken = (authorization: string | undefined): string => {
  const match = authorization === undefined ? null : /^Bearer(?:\s+(.*))?$/i.exec(authorization.trim())
  return match?.[1]?.trim() ?? ""
}

// ---------------------------------------------------------------------------
// POST /v1/tickets
// ---------------------------------------------------------------------------

const unauthorized = (error: AuthError) =>
  HttpServerResponse.schemaJson(Unauthorized)(
    { error: "unauthorized", reason: error.reason, message: error.message },
    {
      status: 401,
      headers: {
        ...noStore,
        // RFC 6750 §3: no error code when no credentials were sent; invalid_token when they were refused.
        "www-authenticate": error.reason === "missing" ? "Bearer" : "Bearer error=\"invalid_token\""
      }
    }
  )

const unavailable = HttpServerResponse.schemaJson(Unavailable)({ error: "unavailable" }, {
  status: 503,
  headers: noStore
})

/** 403 while the ban lasts; `Retry-After` says when it ends (whole seconds, rounded up). */
const banned = (ban: Ban, now: number) =>
  HttpServerResponse.schemaJson(Banned)({ error: "banned", until: ban.until }, {
    status: 403,
    headers: { ...noStore, "retry-after": String(Math.max(1, Math.ceil((ban.until - now) / 1000))) }
  })

const issueTicket = Effect.gen(function*() {
  const verifier = yield* JwtVerifier
  const tickets = yield* Tickets
  const revocations = yield* Revocations
  return Effect.gen(function*() {
    const headers = yield* HttpServerRequest.schemaHeaders(AuthHeaders)
    const grant = yield* verifier.verify(bearerToken(headers.authorization))
    const ban = yield* revocations.banned(grant.user)
    if (ban !== undefined) {
      yield* Effect.logDebug("ticket refused: the user is banned").pipe(Effect.annotateLogs({ user: grant.user }))
      return yield* banned(ban, yield* Clock.currentTimeMillis)
    }
    const issued = yield* tickets.issue(grant)
    return yield* HttpServerResponse.schemaJson(IssuedTicket)(issued, { headers: noStore })
  }).pipe(
    Effect.catchTags({
      // Header values are always strings, so this cannot happen; refused as unauthenticated if it ever does.
      ParseError: () => unauthorized(new AuthError({ reason: "malformed", message: "unreadable Authorization header" })),
      AuthError: (error) =>
        error.reason === "unavailable"
          ? Effect.zipRight(Effect.logWarning("ticket refused: the JWKS cannot be fetched"), unavailable)
          : Effect.zipRight(
            Effect.logDebug("ticket refused").pipe(Effect.annotateLogs({ reason: error.reason })),
            unauthorized(error)
          ),
      TicketError: (error) =>
        Effect.zipRight(
          Effect.logWarning("ticket not issued: the store failed").pipe(Effect.annotateLogs({ error: error.message })),
          unavailable
        ),
      // Fail closed: a ban we cannot read must not let the user in.
      RevocationError: (error) =>
        Effect.zipRight(
          Effect.logWarning("ticket not issued: the revocation store failed").pipe(Effect.annotateLogs({ error: error.message })),
          unavailable
        )
    }),
    // Encoding our own fixed-shape bodies does not fail; a 500 without a body if it ever does.
    Effect.catchTag("HttpBodyError", () => Effect.succeed(HttpServerResponse.empty({ status: 500, headers: noStore })))
  )
})

/** Adds `POST /v1/tickets`; mount with `NodeRoutes.use(Auth.routes)`. */
export const routes = (router: Router): Effect.Effect<void, never, JwtVerifier | Tickets | Revocations> =>
  Effect.flatMap(issueTicket, (handler) => router.post("/v1/tickets", handler))

// ---------------------------------------------------------------------------
// Redeeming a ticket (the gateway, before the upgrade)
// ---------------------------------------------------------------------------

/**
 * - `missing`: no `ticket` parameter, or an empty one.
 * - `malformed`: not shaped like a ticket (the store is not asked).
 * - `unknown-or-used`: never issued, expired, already used, or unreadable in the store.
 * - `unavailable`: the store cannot be reached; the client may retry.
 */
export const RedeemReason = Schema.Literal("missing", "malformed", "unknown-or-used", "unavailable")
export type RedeemReason = typeof RedeemReason.Type

export class RedeemError extends Schema.TaggedError<RedeemError>()("RedeemError", {
  reason: RedeemReason,
  message: Schema.String
}) {}

/** The HTTP status to refuse an upgrade with: 503 when the store is down, 401 otherwise. */
export const redeemStatus = (error: RedeemError): 401 | 503 => (error.reason === "unavailable" ? 503 : 401)

const redeemFailure = (error: TicketError): Effect.Effect<never, RedeemError> =>
  error.reason === "unavailable"
    ? Effect.fail(new RedeemError({ reason: "unavailable", message: "the ticket store is unavailable" }))
    // The GETDEL already removed whatever was there: the ticket is spent, and retrying cannot help.
    : Effect.zipRight(
      Effect.logError("a stored ticket could not be read").pipe(Effect.annotateLogs({ error: error.message })),
      Effect.fail(new RedeemError({ reason: "unknown-or-used", message: "unknown, expired or used ticket" }))
    )

/**
 * Takes a ticket from the `ticket` query parameter (`url.searchParams.get("ticket")`)
 * and returns its grant. A ticket works once, on any node.
 */
export const redeem = (ticket: string | null): Effect.Effect<Grant, RedeemError, Tickets> =>
  Effect.gen(function*() {
    if (ticket === null || ticket === "") return yield* new RedeemError({ reason: "missing", message: "no ticket" })
    if (!isTicket(ticket)) return yield* new RedeemError({ reason: "malformed", message: "not a ticket" })
    const tickets = yield* Tickets
    const grant = yield* Effect.catchAll(tickets.take(ticket), redeemFailure)
    if (grant === undefined) {
      return yield* new RedeemError({ reason: "unknown-or-used", message: "unknown, expired or used ticket" })
    }
    return grant
  })

export interface AuthService {
  /** `redeem` with the node's `Tickets` provided. */
  readonly redeem: (ticket: string | null) => Effect.Effect<Grant, RedeemError>
  /** `user`'s ban while it lasts, else `undefined`; fails when the revocation store cannot be reached. */
  readonly banned: (user: string) => Effect.Effect<Ban | undefined, RevocationError>
  /** `Refresh.refresh` with the node's verifier and revocations provided: the connection's new grant. */
  readonly refresh: (current: Grant, token: string) => Effect.Effect<Grant, RefreshError>
}

/** The gateway's view of auth: tickets, bans and refreshes, without knowing where they are stored. */
export class Auth extends Context.Tag("@weft/auth/Auth")<Auth, AuthService>() {}

export const layerAuth: Layer.Layer<Auth, never, Tickets | JwtVerifier | Revocations> = Layer.effect(
  Auth,
  Effect.gen(function*() {
    const tickets = yield* Tickets
    const verifier = yield* JwtVerifier
    const revocations = yield* Revocations
    return {
      redeem: (ticket) => Effect.provideService(redeem(ticket), Tickets, tickets),
      banned: (user) => revocations.banned(user),
      refresh: (current, token) =>
        refresh(current, token).pipe(Effect.provideService(JwtVerifier, verifier), Effect.provideService(Revocations, revocations))
    }
  })
)
