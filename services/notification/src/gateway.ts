/**
 * The notification role's part of the client protocol, plugged into the
 * gateway: connection hooks (a connection registers with its user entity, up
 * to the per-user limit, and unregisters when it goes), the `user:<id>`
 * channel (notifications, live and missed, and read-state changes), and the
 * `notifications.*` and `signal.send` methods.
 */
import { Entities } from "@weft/cluster"
import { Extensions } from "@weft/gateway"
import { Effect, Schema } from "effect"
import { channelOf, Connection, User } from "./User.ts"

const callTimeout = "10 seconds"

const unavailable = () => Extensions.refuse("unavailable", "the user service is unavailable right now; retry")

export interface Options {
  /** Live connections per user, cluster-wide. */
  readonly maxConnectionsPerUser: number
}

export const layer = (options: Options) =>
  Extensions.register((extensions) =>
    Effect.gen(function*() {
      const users = yield* User.client
      const call = <A, E>(user: string, request: Effect.Effect<A, E>) =>
        request.pipe(Entities.withTimeout(`user/${user}`, callTimeout), Effect.mapError(unavailable))

      yield* extensions.addHooks({
        admit: ({ conn, node, grant }) =>
          users(grant.user).Attach({
            connection: new Connection({ conn, node, ...(grant.device === undefined ? {} : { device: grant.device }) }),
            max: options.maxConnectionsPerUser,
            ...(grant.timeZone === undefined ? {} : { timeZone: grant.timeZone })
          }).pipe(
            Entities.withTimeout(`user/${grant.user}`, "5 seconds"),
            Effect.map((attached) =>
              attached.accepted ? undefined : { status: 429, message: `at most ${options.maxConnectionsPerUser} connections per user` }
            ),
            Effect.catchAll(() => Effect.succeed({ status: 503, message: "the cluster cannot register the connection right now" }))
          ),
        closed: ({ conn, grant }) =>
          users(grant.user).Detach({ conn }).pipe(
            Entities.withTimeout(`user/${grant.user}`, "5 seconds"),
            Effect.catchAll((error) => Effect.logWarning(`could not detach ${conn} from user ${grant.user}: ${error._tag}`))
          )
      })

      yield* extensions.addChannel({
        prefix: "user:",
        subscribe: (caller, channel, since) =>
          Effect.gen(function*() {
            if (!caller.canSubscribe(channel)) return yield* Effect.fail(Extensions.refuse("forbidden", `not allowed to subscribe to ${channel}`))
            const user = channel.slice("user:".length)
            // Missed notifications: after `since` when resuming, else the unread ones ("waiting when they come back").
            const inbox = yield* call(user, users(user).Inbox({ limit: 1000, ...(since === undefined ? {} : { after: since.offset }) }))
            // Offsets are contiguous: every one after `since` must still be there (not trimmed from
            // the inbox, not past its end, the same epoch), else recovery fails as for a room.
            const resumable = since === undefined ||
              (since.epoch === inbox.position.epoch && inbox.entries.length === inbox.position.offset - since.offset)
            const entries = resumable ? inbox.entries.filter((entry) => since !== undefined || !entry.read) : []
            return {
              position: inbox.position,
              ...(since === undefined ? {} : { recovery: resumable ? "ok" as const : "failed" as const }),
              catchUp: entries.map((entry) => ({
                type: "message" as const,
                channel: channelOf(user),
                data: entry.notification,
                from: entry.notification.sender,
                position: entry.position,
                at: entry.at
              }))
            }
          }),
        unsubscribe: () => Effect.void,
        publish: (_, channel) => Effect.fail(Extensions.refuse("forbidden", `${channel} is written by the server only`))
      })

      yield* extensions.addMethod(Extensions.method(
        "notifications.list",
        Schema.Struct({
          before: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
          limit: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.between(1, 200)))
        }),
        (caller, params) =>
          call(caller.grant.user, users(caller.grant.user).Inbox({ limit: params.limit ?? 50, ...(params.before === undefined ? {} : { before: params.before }) }))
      ))

      yield* extensions.addMethod(Extensions.method(
        "notifications.read",
        Schema.Struct({ ids: Schema.optional(Schema.Array(Schema.String).pipe(Schema.maxItems(1000))), all: Schema.optional(Schema.Boolean) }),
        (caller, params) => call(caller.grant.user, users(caller.grant.user).Read({ ids: params.ids ?? [], all: params.all ?? false }))
      ))

      // A direct message to another user's devices (WebRTC offer/answer/ICE and the like): allowed by
      // the publish permission on `signal:<user>`.
      yield* extensions.addMethod(Extensions.method(
        "signal.send",
        Schema.Struct({ user: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)), device: Schema.optional(Schema.String), data: Schema.Unknown }),
        (caller, params) =>
          caller.canPublish(`signal:${params.user}`)
            ? call(params.user, users(params.user).Signal({
              from: caller.grant.user,
              ...(caller.grant.device === undefined ? {} : { fromDevice: caller.grant.device }),
              ...(params.device === undefined ? {} : { device: params.device }),
              data: params.data
            }))
            : Effect.fail(Extensions.refuse("forbidden", `not allowed to signal ${params.user}`))
      ))
    })
  )
