/**
 * This node's report in the cluster's stats (NodeStats), every two seconds:
 * roles, readiness, live connections and actors by kind; the totals of its
 * gateway and actor metrics (MetricTotals); its active rooms, the largest
 * `roomsInReport` by members (when it runs the chat role).
 */
import { ActorSystem } from "@weft/actor"
import { ActiveRooms } from "@weft/chat"
import { ClusterNode, NodeStats } from "@weft/cluster"
import { WebSocketGateway } from "@weft/gateway"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import * as Drain from "./Drain.ts"
import * as MetricTotals from "./MetricTotals.ts"
import { NodeConfigService } from "./NodeConfig.ts"

export const reportEvery = Duration.seconds(2)
/** A report older than this is a node that stopped reporting. */
export const staleAfterMs = 3 * Duration.toMillis(reportEvery)
/** Rooms a report lists at most: the report stays small whatever the number of rooms. */
export const roomsInReport = 50

export const reporter = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* NodeConfigService
    const stats = yield* NodeStats.NodeStats
    const readinessNow = Effect.provide(Drain.readiness, yield* Effect.context<Drain.Draining | ClusterNode.ClusterStatus>())
    const system = yield* ActorSystem
    const gateway = yield* Effect.serviceOption(WebSocketGateway)
    const rooms = yield* Effect.serviceOption(ActiveRooms.ActiveRooms)
    const report = Effect.gen(function*() {
      const readiness = yield* readinessNow
      const actors = yield* system.stats
      const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      yield* stats.report({
        node: config.nodeId,
        roles: config.roles,
        ready: readiness.ready,
        connections: Option.match(gateway, { onNone: () => 0, onSome: (ws) => ws.connections() }),
        actors: actors.map((kind) => ({ kind: kind.kind, alive: kind.alive, mailboxDepth: kind.mailboxDepth })),
        at,
        ...(yield* MetricTotals.read),
        ...(Option.isSome(rooms) ? { rooms: yield* rooms.value.top(roomsInReport) } : {})
      })
    }).pipe(Effect.catchAll((error) => Effect.logDebug(`stats not reported: ${error.message}`)))
    yield* Effect.forkScoped(Effect.repeat(report, Schedule.spaced(reportEvery)))
  })
)
