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
import { Entity } from "@effect/cluster"
import type { Rpc } from "@effect/rpc"
import { Clock, Duration, Effect, Schema } from "effect"
import * as ClusterMetrics from "./ClusterMetrics.ts"

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
 * `build`, with every log line of the entity (its build and its handlers) annotated
 * `actor=<type>/<id>`, as local actors' are. A handler result that is not an Effect (a stream,
 * an `Rpc.fork` wrapper) is left as it is.
 */
const annotated = <Handlers, RX>(
  build: Handlers | Effect.Effect<Handlers, never, RX>
): Effect.Effect<Handlers, never, RX | Entity.CurrentAddress> =>
  Effect.flatMap(Entity.CurrentAddress, (address) => {
    const actor = `${address.entityType}/${address.entityId}`
    const built = Effect.isEffect(build) ? build : Effect.succeed(build)
    return Effect.map(Effect.annotateLogs(built, "actor", actor), (handlers) => {
      const wrapped: Record<string, unknown> = {}
      for (const [tag, handler] of Object.entries(handlers as Record<string, unknown>)) {
        wrapped[tag] = typeof handler !== "function" ? handler : (...args: ReadonlyArray<unknown>) => {
          const result: unknown = handler(...args)
          return Effect.isEffect(result) ? Effect.annotateLogs(result, "actor", actor) : result
        }
      }
      return wrapped as Handlers
    })
  })

/**
 * `entity.toLayer(build)` with Weft's defaults; the entity's log lines carry `actor=<type>/<id>`.
 *
 * @example
 * const RoomLive = Entities.toLayer(Room, buildRoom, { maxIdleTime: "5 minutes" })
 */
export const toLayer = <Type extends string, Rpcs extends Rpc.Any, Handlers extends Entity.HandlersFrom<Rpcs>, RX>(
  entity: Entity.Entity<Type, Rpcs>,
  build: Handlers | Effect.Effect<Handlers, never, RX>,
  options?: EntityOptions
) => entity.toLayer(annotated(build), layerOptions(options))

/** No reply from an entity within the caller's deadline (its node may be down while the entity moves). */
export class EntityTimeout extends Schema.TaggedError<EntityTimeout>()("EntityTimeout", {
  entity: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `no reply from ${this.entity} within ${this.timeoutMillis} ms`
  }
}

const isEntityTimeout = (error: unknown): boolean => error instanceof EntityTimeout

/**
 * Bounds a call to an entity (`entity` is its address, `<type>/<id>`), and records how long it
 * took in `ClusterMetrics.entityCallDuration`, by entity type and outcome.
 */
export const withTimeout = (entity: string, timeout: Duration.DurationInput) => {
  const duration = Duration.decode(timeout)
  const slash = entity.indexOf("/")
  const entityType = slash === -1 ? entity : entity.slice(0, slash)
  return <A, E, R>(call: Effect.Effect<A, E, R>): Effect.Effect<A, E | EntityTimeout, R> =>
    Effect.flatMap(Clock.currentTimeNanos, (start) =>
      Effect.timeoutFail(call, {
        duration,
        onTimeout: () => new EntityTimeout({ entity, timeoutMillis: Duration.toMillis(duration) })
      }).pipe(
        Effect.onExit((exit) =>
          Effect.flatMap(Clock.currentTimeNanos, (end) =>
            Effect.sync(() =>
              ClusterMetrics.recordEntityCall(
                entityType,
                ClusterMetrics.outcomeOf(exit, isEntityTimeout),
                Number(end - start) / 1e9
              )
            ))
        )
      ))
}
