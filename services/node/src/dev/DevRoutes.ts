/**
 * The dev-mode routes, for the demo page; a node not in dev mode does not
 * have them (404).
 *
 * - `POST /v1/dev/token` `{ "user", "device"?, "tz"? }` → `{ "token", "expiresIn" }`: a
 *   short-lived JWT for that user, signed with the node's HS256 secret (`Auth.DevTokens`), which
 *   `POST /v1/tickets` accepts like any other. Needs the auth role.
 * - `POST /v1/dev/notify` `{ "user", "type", "data"? }` → the service API's `Delivery`: the
 *   service API's own `notify.toUser` handler, called in process as the service `dev-demo`
 *   (inbox, delivery to every device, idempotency: the same path as `/rpc`). Needs the
 *   notification role.
 *
 * Both read JSON bodies only (`content-type: application/json`): a cross-site form cannot post
 * one without a CORS preflight, which the node does not grant.
 */
import { Headers, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpRouter } from "@effect/platform"
import { Caller, Errors, WeftApi } from "@weft/api"
import { DevTokens } from "@weft/auth"
import * as Notification from "@weft/notification"
import { Effect, Layer, Schema } from "effect"
import { NodeRoutes } from "../HttpServer.ts"
import { type NodeConfig, NodeConfigService } from "../NodeConfig.ts"

type Router = HttpRouter.HttpRouter.Service<unknown, HttpRouter.HttpRouter.DefaultServices>

/** The service name dev notifications are sent as (their `sender`). */
export const devService = "dev-demo"

export const NotifyRequest = Schema.Struct({
  user: DevTokens.DevUser,
  type: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)),
  data: Schema.optional(Schema.Unknown)
})

const noStore = { "cache-control": "no-store" }

const badRequest = (message: string) => HttpServerResponse.unsafeJson({ error: "invalid", message }, { status: 400, headers: noStore })

const isJson = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => (request.headers["content-type"] ?? "").toLowerCase().startsWith("application/json")
)

/** Reads a JSON body of `schema`, or answers 400/415. */
const body = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.flatMap(isJson, (json) =>
    json
      ? HttpServerRequest.schemaBodyJson(schema).pipe(
        Effect.mapError((error) => badRequest(error._tag === "ParseError" ? error.message : "the body is not JSON"))
      )
      : Effect.fail(HttpServerResponse.unsafeJson({ error: "unsupported", message: "send application/json" }, { status: 415, headers: noStore })))


/** `POST /v1/dev/token`. */
export const token = (router: Router) =>
  Effect.gen(function*() {
    const config = yield* NodeConfigService
    yield* router.post(
      "/v1/dev/token",
      Effect.gen(function*() {
        const request = yield* body(DevTokens.DevTokenRequest)
        // The node verifies with an RS256 key or a JWKS: it has no key to sign with.
        if (config.jwtSecret === undefined) {
          return HttpServerResponse.unsafeJson(
            { error: "unavailable", message: "dev tokens need an HS256 secret: start without --jwt-public-key / --jwt-jwks-url" },
            { status: 501, headers: noStore }
          )
        }
        const issued = yield* DevTokens.issue(
          { secret: config.jwtSecret, issuer: config.jwtIssuer, audience: config.jwtAudience },
          request
        ).pipe(Effect.orDie)
        return HttpServerResponse.unsafeJson(issued, { headers: noStore })
      }).pipe(Effect.merge)
    )
  })

/** `POST /v1/dev/notify`: needs the service API's handlers (`Notification.serviceApi`). */
export const notify = (router: Router) =>
  Effect.gen(function*() {
    const notifyUser = yield* WeftApi.accessHandler("notify.toUser")
    yield* router.post(
      "/v1/dev/notify",
      Effect.gen(function*() {
        const request = yield* body(NotifyRequest)
        const delivery = yield* notifyUser(
          { userId: request.user, notification: { kind: request.type, data: request.data ?? null } },
          Headers.empty
        ).pipe(
          Effect.provideService(Caller, { service: devService }),
          Effect.mapError((error) =>
            HttpServerResponse.unsafeJson({ error: error.reason, message: error.message }, { status: Errors.errorKinds[error.reason].http, headers: noStore })
          )
        )
        return HttpServerResponse.unsafeJson(delivery, { headers: noStore })
      }).pipe(Effect.merge)
    )
  })

/** The dev routes this node serves: none outside dev mode; in dev mode, each with the role it needs. */
export const layer = (config: NodeConfig) => {
  if (!config.dev) return Layer.empty
  return Layer.mergeAll(
    config.roles.includes("auth") ? NodeRoutes.use(token) : Layer.empty,
    // The same handlers as `/rpc` (one instance: layers are shared by reference).
    config.roles.includes("notification") ? NodeRoutes.use(notify).pipe(Layer.provide(Notification.serviceApi)) : Layer.empty
  )
}
