/**
 * Calls from the service side (the service API's handlers, the delivery path)
 * to the entity that owns a subject: bounded by a timeout, every failure turned
 * into an `ApiError`.
 */
import { ApiError } from "@weft/api"
import { RoomRefused } from "@weft/chat"
import { Entities } from "@weft/cluster"
import { Effect } from "effect"
import { UserRefused } from "../User.ts"

const callTimeout = "10 seconds"

/** Bounds a call to an entity and turns whatever it fails with into an `ApiError`. */
export const call = <A, E extends { readonly _tag: string }>(address: string, request: Effect.Effect<A, E>) =>
  request.pipe(
    Entities.withTimeout(address, callTimeout),
    Effect.mapError((error): ApiError =>
      error instanceof UserRefused || error instanceof RoomRefused
        ? new ApiError({ reason: error.reason, message: error.message })
        : new ApiError({ reason: "unavailable", message: `${address} did not answer (${error._tag}); retry with the same idempotency key` })
    )
  )

export const invalid = (message: string) => new ApiError({ reason: "invalid", message })
