/**
 * The service API's revocations: `users.disconnect` (close a user's
 * connections, a device's or one, on every node; optionally ban the user for
 * a time) and `users.unban`.
 *
 * The disconnect goes through the user entity: it already knows every live
 * connection of the user on every node (the gateway registers each one with
 * it before the upgrade, and a ban is checked again after that registration),
 * so one call finds exactly the connections to close, and answers how many.
 * The entity tells each connection actor directly over that node's topic
 * (`ActorMail`: Redis pub/sub, which every node listens to), a hop of about a
 * millisecond; no broadcast to nodes that have none of the user's
 * connections. The ban is stored first (`Revocations`, with a TTL), so a
 * connection attempt racing the disconnect is refused.
 */
import { ApiError } from "@weft/api"
import { Revocations } from "@weft/auth"
import { Entities } from "@weft/cluster"
import { Effect } from "effect"
import { User } from "./User.ts"

const callTimeout = "10 seconds"

export interface DisconnectRequest {
  readonly userId: string
  readonly device?: string | undefined
  readonly conn?: string | undefined
  readonly banForSeconds?: number | undefined
  readonly reason?: string | undefined
}

export interface RevocationService {
  /** `users.disconnect`, on behalf of `service`. */
  readonly disconnect: (
    request: DisconnectRequest,
    service: string
  ) => Effect.Effect<{ readonly disconnected: number; readonly bannedUntil?: number }, ApiError>
  /** `users.unban`, on behalf of `service`. */
  readonly unban: (userId: string, service: string) => Effect.Effect<{ readonly unbanned: boolean }, ApiError>
}

const storeDown = (error: Revocations.RevocationError) =>
  error.reason === "invalid"
    ? new ApiError({ reason: "invalid", message: error.message })
    : new ApiError({ reason: "unavailable", message: `the ban store is unavailable; retry: ${error.message}` })

export const make = Effect.gen(function*() {
  const users = yield* User.client
  const revocations = yield* Revocations.Revocations

  const disconnect: RevocationService["disconnect"] = (request, service) =>
    Effect.gen(function*() {
      const { banForSeconds, conn, device, reason, userId } = request
      if (banForSeconds !== undefined && (device !== undefined || conn !== undefined)) {
        return yield* new ApiError({ reason: "invalid", message: "a ban is for the whole user: give banForSeconds without device or conn" })
      }
      const ban = banForSeconds === undefined
        ? undefined
        : yield* Effect.mapError(revocations.ban(userId, { ttlMs: banForSeconds * 1000, reason, by: service }), storeDown)
      const { disconnected } = yield* users(userId).Disconnect({
        ...(device === undefined ? {} : { device }),
        ...(conn === undefined ? {} : { conn }),
        reason: ban === undefined ? "revoked" : "banned"
      }).pipe(
        Entities.withTimeout(`user/${userId}`, callTimeout),
        Effect.mapError((error) =>
          new ApiError({ reason: "unavailable", message: `user/${userId} did not answer (${error._tag}); retry` })
        )
      )
      yield* Effect.logInfo(ban === undefined ? "user disconnected" : "user banned and disconnected").pipe(
        Effect.annotateLogs({
          user: userId,
          by: service,
          disconnected,
          ...(device === undefined ? {} : { device }),
          ...(conn === undefined ? {} : { conn }),
          ...(reason === undefined ? {} : { reason }),
          ...(ban === undefined ? {} : { bannedUntil: new Date(ban.until).toISOString() })
        })
      )
      return ban === undefined ? { disconnected } : { disconnected, bannedUntil: ban.until }
    })

  const unban: RevocationService["unban"] = (userId, service) =>
    revocations.unban(userId).pipe(
      Effect.mapError(storeDown),
      Effect.tap((unbanned) => Effect.logInfo("user unbanned").pipe(Effect.annotateLogs({ user: userId, by: service, unbanned }))),
      Effect.map((unbanned) => ({ unbanned }))
    )

  return { disconnect, unban } satisfies RevocationService
})
