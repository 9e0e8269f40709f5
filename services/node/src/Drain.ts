/**
 * Whether the node is draining: set once, when it starts stopping (SIGTERM,
 * SIGINT). From then on `/readyz` says 503 with the reason `draining`, so a
 * load balancer stops sending new clients here while the node tells its
 * connected clients to go elsewhere and hands its entities over.
 */
import { ClusterNode } from "@weft/cluster"
import { Context, Effect, Layer, Ref } from "effect"

export class Draining extends Context.Tag("@weft/node/Draining")<Draining, {
  /** Marks the node as draining; idempotent. */
  readonly start: Effect.Effect<void>
  readonly isDraining: Effect.Effect<boolean>
}>() {
  static readonly Live: Layer.Layer<Draining> = Layer.effect(
    Draining,
    Effect.map(Ref.make(false), (ref) => ({ start: Ref.set(ref, true), isDraining: Ref.get(ref) }))
  )
}

/** The cluster's readiness, and not ready while draining. */
export const readiness: Effect.Effect<ClusterNode.Readiness, never, Draining | ClusterNode.ClusterStatus> = Effect.gen(
  function*() {
    const cluster = yield* (yield* ClusterNode.ClusterStatus).readiness
    if (!(yield* (yield* Draining).isDraining)) return cluster
    return { ...cluster, ready: false, reasons: ["draining", ...cluster.reasons] }
  }
)
