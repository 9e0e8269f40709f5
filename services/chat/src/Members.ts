/**
 * Room membership, kept beside the room so that it outlives the room's
 * activation: when a room's node dies, the room's next activation (on another
 * node) loads who was in it, drops the members of dead nodes (announcing
 * their leave) and keeps the rest. Redis in a cluster, memory alone.
 */
import { Redis } from "@weft/cluster"
import { Context, Duration, Effect, Layer, Schema } from "effect"

/** A connection in a room. */
export class Member extends Schema.Class<Member>("Member")({
  /** The connection actor's address, `conn/<node>/<incarnation>-<n>`. */
  conn: Schema.String,
  user: Schema.String,
  device: Schema.optional(Schema.String),
  node: Schema.String
}) {}

export class MembersError extends Schema.TaggedError<MembersError>()("MembersError", { message: Schema.String }) {}

export interface MembersService {
  readonly load: (room: string) => Effect.Effect<ReadonlyArray<Member>, MembersError>
  readonly add: (room: string, member: Member) => Effect.Effect<void, MembersError>
  readonly remove: (room: string, conns: ReadonlyArray<string>) => Effect.Effect<void, MembersError>
}

export class Members extends Context.Tag("@weft/chat/Members")<Members, MembersService>() {}

export const layerMemory: Layer.Layer<Members> = Layer.sync(Members, () => {
  const rooms = new Map<string, Map<string, Member>>()
  return {
    load: (room) => Effect.sync(() => Array.from(rooms.get(room)?.values() ?? [])),
    add: (room, member) =>
      Effect.sync(() => {
        const members = rooms.get(room) ?? new Map<string, Member>()
        members.set(member.conn, member)
        rooms.set(room, members)
      }),
    remove: (room, conns) =>
      Effect.sync(() => {
        const members = rooms.get(room)
        if (members === undefined) return
        for (const conn of conns) members.delete(conn)
        if (members.size === 0) rooms.delete(room)
      })
  }
})

const encode = Schema.encodeSync(Schema.parseJson(Member))
const decode = Schema.decodeUnknownEither(Schema.parseJson(Member))

export interface RedisOptions {
  readonly cluster: string
  /** A room's membership expires this long after its last change (members of a long-dead room). */
  readonly ttl: Duration.DurationInput
}

/** A hash per room, `weft:{<cluster>}:room:<room>:members`: connection → member JSON. */
export const layerRedis = (options: RedisOptions): Layer.Layer<Members, never, Redis.Redis> =>
  Layer.effect(
    Members,
    Effect.gen(function*() {
      const redis = yield* Redis.Redis
      const key = (room: string) => `${Redis.keyPrefix(options.cluster)}room:${room}:members`
      const ttlMs = Duration.toMillis(Duration.decode(options.ttl))
      const failed = (error: { readonly message: string }) => new MembersError({ message: error.message })
      return {
        load: (room) =>
          redis.use((client) => client.hvals(key(room))).pipe(
            Effect.mapError(failed),
            // A value that is not a member (written by something else) is skipped, not fatal.
            Effect.map((values) => values.flatMap((value) => {
              const member = decode(value)
              return member._tag === "Right" ? [member.right] : []
            }))
          ),
        add: (room, member) =>
          redis.use((client) => client.multi().hset(key(room), member.conn, encode(member)).pexpire(key(room), ttlMs).exec())
            .pipe(Effect.asVoid, Effect.mapError(failed)),
        remove: (room, conns) =>
          conns.length === 0
            ? Effect.void
            : redis.use((client) => client.hdel(key(room), ...conns)).pipe(Effect.asVoid, Effect.mapError(failed))
      }
    })
  )
