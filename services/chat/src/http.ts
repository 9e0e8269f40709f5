/**
 * The chat role's HTTP routes. `GET /v1/cluster/rooms/:id` says where a
 * room's single activation lives and its counters, from any node.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Entities } from "@weft/cluster"
import { Effect, Schema } from "effect"
import { Room, RoomId } from "./Room.ts"

type Router = HttpRouter.HttpRouter.Service<unknown, HttpRouter.HttpRouter.DefaultServices>

const Params = Schema.Struct({ id: RoomId })

export const routes = (router: Router) =>
  Effect.gen(function*() {
    const rooms = yield* Room.client
    yield* router.get(
      "/v1/cluster/rooms/:id",
      Effect.gen(function*() {
        const { id } = yield* HttpRouter.schemaPathParams(Params)
        const info = yield* rooms(id).Info().pipe(Entities.withTimeout(`room/${id}`, "5 seconds"))
        return yield* HttpServerResponse.json(info)
      }).pipe(
        Effect.catchTags({
          ParseError: (error) => HttpServerResponse.json({ error: "invalid room id", detail: error.message }, { status: 400 }),
          EntityTimeout: (error) => HttpServerResponse.json({ error: error.message }, { status: 504 })
        }),
        Effect.catchAll((error) => HttpServerResponse.json({ error: error._tag }, { status: 503 }))
      )
    )
  })
