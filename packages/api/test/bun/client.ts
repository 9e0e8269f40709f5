/**
 * `bun packages/api/test/bun/client.ts <url>`: `makeWeftClient` from Bun,
 * over both transports, against a running service API. Prints one JSON line:
 * per transport, an answer, a typed error, and what a missing credential gives.
 */
import { Effect, Either } from "effect"
import { makeWeftClient } from "../../src/Client.ts"
import { ordersKey } from "../fixtures.ts"

const url = process.argv[2] ?? "http://127.0.0.1:8080"
const notification = { kind: "order.completed", data: { orderId: 7 } }

const tagOf = (either: Either.Either<unknown, { readonly _tag: string }>): string =>
  Either.match(either, { onLeft: (error) => error._tag, onRight: () => "success" })

const probe = (transport: "http" | "websocket") =>
  Effect.gen(function*() {
    const weft = yield* makeWeftClient({ url, credential: ordersKey, transport })
    const delivery = yield* weft.notify.toUser({ userId: "42", notification })
    const notFound = yield* Effect.flip(weft.notify.toUser({ userId: "missing", notification }))
    const anonymous = yield* makeWeftClient({ url, credential: undefined, transport })
    const refused = yield* Effect.either(anonymous.cluster.stats())
    return {
      notificationId: delivery.notificationId,
      notFound: notFound._tag === "ApiError" ? notFound.reason : notFound._tag,
      anonymous: Either.isLeft(refused) && refused.left._tag === "ApiError" ? `ApiError:${refused.left.reason}` : tagOf(refused)
    }
  }).pipe(Effect.scoped, Effect.timeout("10 seconds"))

const main = Effect.all({ http: probe("http"), websocket: probe("websocket") })

Effect.runPromise(main).then(
  (result) => {
    console.log(JSON.stringify(result))
    process.exit(0)
  },
  (error: unknown) => {
    console.error(String(error))
    process.exit(1)
  }
)
