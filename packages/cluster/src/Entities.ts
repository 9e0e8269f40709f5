/**
 * Weft's defaults for @effect/cluster entities, and the timeout every call to
 * an entity needs.
 *
 * - `disableFatalDefects`: by default a handler defect restarts the entity
 *   and re-runs the same request forever while the caller hangs and the
 *   node's shutdown blocks (see docs/cluster-upstream.md). With it, the caller
 *   gets the defect once and the entity keeps serving.
 * - A bounded mailbox and passivation, as for local actors.
 * - Entity clients retry `RunnerUnavailable` and `EntityNotAssignedToRunner`
 *   without limit (the call waits for the entity to be placed again), so a
 *   caller must bound every call itself: `withTimeout`.
 */
import type { Entity } from "@effect/cluster"
import type { Rpc } from "@effect/rpc"
import { Duration, Effect, Schema } from "effect"

export interface EntityOptions {
  readonly maxIdleTime?: Duration.DurationInput
  readonly mailboxCapacity?: number
  readonly concurrency?: number
}

/** The options Weft passes to every `Entity.toLayer`. */
export const layerOptions = (options: EntityOptions = {}) => ({
  maxIdleTime: options.maxIdleTime ?? "1 minute",
  mailboxCapacity: options.mailboxCapacity ?? 4096,
  concurrency: options.concurrency ?? 1,
  disableFatalDefects: true
})

/**
 * `entity.toLayer(build)` with Weft's defaults.
 *
 * @example
 * const RoomLive = Entities.toLayer(Room, buildRoom, { maxIdleTime: "5 minutes" })
 */
export const toLayer = <Type extends string, Rpcs extends Rpc.Any, Handlers extends Entity.HandlersFrom<Rpcs>, RX>(
  entity: Entity.Entity<Type, Rpcs>,
  build: Handlers | Effect.Effect<Handlers, never, RX>,
  options?: EntityOptions
) => entity.toLayer(build, layerOptions(options))

/** No reply from an entity within the caller's deadline (its node may be down while the entity moves). */
export class EntityTimeout extends Schema.TaggedError<EntityTimeout>()("EntityTimeout", {
  entity: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `no reply from ${this.entity} within ${this.timeoutMillis} ms`
  }
}

/** Bounds a call to an entity. */
export const withTimeout = (entity: string, timeout: Duration.DurationInput) => {
  const duration = Duration.decode(timeout)
  return <A, E, R>(call: Effect.Effect<A, E, R>): Effect.Effect<A, E | EntityTimeout, R> =>
    Effect.timeoutFail(call, {
      duration,
      onTimeout: () => new EntityTimeout({ entity, timeoutMillis: Duration.toMillis(duration) })
    })
}
