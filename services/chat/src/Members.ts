/**
 * Room membership, kept beside the room so that it outlives the room's
 * activation: when a room's node dies, the room's next activation (on another
 * node) loads who was in it, drops the members of dead nodes (announcing
 * their leave) and keeps the rest. A Directory (Redis hash per room, or memory).
 */
import { Directory } from "@weft/cluster"
import { Context, Effect, Layer, Schema } from "effect"

/** A connection in a room. */
export class Member extends Schema.Class<Member>("Member")({
  /** The connection actor's address, `conn/<node>/<incarnation>-<n>`. */
  conn: Schema.String,
  user: Schema.String,
  device: Schema.optional(Schema.String),
  node: Schema.String
}) {}

export class Members extends Context.Tag("@weft/chat/Members")<Members, Directory.DirectoryService>() {}

const encode = Schema.encodeSync(Schema.parseJson(Member))
const decode = Schema.decodeUnknownEither(Schema.parseJson(Member))

/** The members stored for `room`; values that are not members are skipped, not fatal. */
export const load = (members: Directory.DirectoryService, room: string) =>
  Effect.map(members.load(room), (values) =>
    values.flatMap((value) => {
      const member = decode(value)
      return member._tag === "Right" ? [member.right] : []
    }))

export const add = (members: Directory.DirectoryService, room: string, member: Member) => members.put(room, member.conn, encode(member))

export const layerMemory: Layer.Layer<Members> = Layer.sync(Members, Directory.makeMemory)

/** A room's membership expires `ttlMs` after its last change (the members of a long-dead room). */
export const layerRedis = (options: { readonly cluster: string; readonly ttlMs: number }) =>
  Layer.scoped(Members, Directory.makeRedis({ ...options, namespace: "room", name: "members" }))
