/**
 * The HTTP JSON door of the service API, for services and scripts that do not
 * speak @effect/rpc: `POST /v1/api/<call>` (`/v1/api/notify.toUser`) with the
 * call's payload as a JSON object, answered with the call's reply as JSON, or
 * with `{ "error": { "code", "reason", "message" } }` and the reason's HTTP
 * status (`Errors.ts`).
 *
 * Derived from `WeftApi`, not restated: every call of the group is served,
 * through the `Invoker` (the same Schemas, handlers and credential check as
 * `/rpc`). The credential is `Authorization: Bearer <key>` or `X-Weft-Key`;
 * an `Idempotency-Key` header fills the payload's `idempotencyKey`.
 */
import { Headers, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import { errorKinds, type Refusal, refusal } from "../Errors.ts"
import { Invoker } from "./Invoker.ts"

/** Where the calls are: `POST <prefix>/<call>`. */
export const prefix = "/v1/api"

/** The header that fills a call's `idempotencyKey`. */
export const idempotencyKeyHeader = "idempotency-key"

/** The HTTP response for a refusal. */
export const refusalResponse = (refused: Refusal): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(
    { error: refused },
    {
      status: errorKinds[refused.reason].http,
      ...(refused.reason === "unauthorized" ? { headers: Headers.fromInput({ "www-authenticate": "Bearer" }) } : {})
    }
  )

/** The body as JSON; an empty body is `{}` (a call without fields, such as `cluster.stats`). */
const parseBody = (text: string): Effect.Effect<unknown, Refusal> =>
  text.trim().length === 0
    ? Effect.succeed({})
    : Effect.try({ try: (): unknown => JSON.parse(text), catch: () => refusal("invalid", "the body is not JSON") })

const handle = (call: string) =>
  Effect.gen(function*() {
    const invoker = yield* Invoker
    const request = yield* HttpServerRequest.HttpServerRequest
    const text = yield* Effect.mapError(request.text, () => refusal("invalid", "the body could not be read"))
    const payload = yield* parseBody(text)
    const idempotencyKey = Option.getOrUndefined(Headers.get(request.headers, idempotencyKeyHeader))
    const reply = yield* invoker.invoke(call, payload, request.headers, { idempotencyKey }).pipe(
      Effect.mapError((error) => error.refusal)
    )
    // A call with no reply (`rooms.typing`) answers `{}`, as the gRPC door's empty message does.
    return HttpServerResponse.unsafeJson(reply === undefined ? {} : reply)
  }).pipe(Effect.catchAll((refused) => Effect.succeed(refusalResponse(refused))))

/**
 * Adds `POST /v1/api/:call` to `router`; mount with `NodeRoutes.use(HttpJson.routes)`. Needs the
 * `Invoker` (`Invoker.layer`).
 */
export const routes = <E, R>(router: HttpRouter.HttpRouter.Service<E, R>): Effect.Effect<void, never, Invoker> =>
  Effect.gen(function*() {
    const invoker = yield* Invoker
    yield* router.post(
      `${prefix}/:call`,
      Effect.flatMap(HttpRouter.params, (params) => Effect.provideService(handle(params["call"] ?? ""), Invoker, invoker))
    )
  })
