/**
 * A small directory per id (who is in a room, which connections a user has):
 * field → value strings, kept beside the entity that owns them so that they
 * outlive its activation. A Redis hash per id (`weft:{<cluster>}:<namespace>:<id>:<name>`,
 * expiring `ttl` after its last change) or memory. Entities define their own
 * Tag with this service type, one per directory they keep.
 */
import { Effect, Schema } from "effect"
import type { Scope } from "effect"
import { keyPrefix, Redis } from "./Redis.ts"

export class DirectoryError extends Schema.TaggedError<DirectoryError>()("DirectoryError", { message: Schema.String }) {}

export interface DirectoryService {
  /** Every value of the id's directory. */
  readonly load: (id: string) => Effect.Effect<ReadonlyArray<string>, DirectoryError>
  readonly put: (id: string, field: string, value: string) => Effect.Effect<void, DirectoryError>
  readonly remove: (id: string, fields: ReadonlyArray<string>) => Effect.Effect<void, DirectoryError>
}

export const makeMemory = (): DirectoryService => {
  const directories = new Map<string, Map<string, string>>()
  return {
    load: (id) => Effect.sync(() => Array.from(directories.get(id)?.values() ?? [])),
    put: (id, field, value) =>
      Effect.sync(() => {
        const directory = directories.get(id) ?? new Map<string, string>()
        directory.set(field, value)
        directories.set(id, directory)
      }),
    remove: (id, fields) =>
      Effect.sync(() => {
        const directory = directories.get(id)
        if (directory === undefined) return
        for (const field of fields) directory.delete(field)
        if (directory.size === 0) directories.delete(id)
      })
  }
}

export interface RedisOptions {
  readonly cluster: string
  /** `room`, `user`: what the ids are. */
  readonly namespace: string
  /** What the directory holds: `members`, `connections`. */
  readonly name: string
  /** A directory expires this long after its last change. */
  readonly ttlMs: number
}

export const makeRedis = (options: RedisOptions): Effect.Effect<DirectoryService, never, Redis | Scope.Scope> =>
  Effect.map(Redis, (redis) => {
    const key = (id: string) => `${keyPrefix(options.cluster)}${options.namespace}:${id}:${options.name}`
    const failed = (error: { readonly message: string }) => new DirectoryError({ message: error.message })
    return {
      load: (id) => redis.use((client) => client.hvals(key(id))).pipe(Effect.mapError(failed)),
      put: (id, field, value) =>
        redis.use((client) => client.multi().hset(key(id), field, value).pexpire(key(id), options.ttlMs).exec()).pipe(
          Effect.asVoid,
          Effect.mapError(failed)
        ),
      remove: (id, fields) =>
        fields.length === 0
          ? Effect.void
          : redis.use((client) => client.hdel(key(id), ...fields)).pipe(Effect.asVoid, Effect.mapError(failed))
    }
  })
