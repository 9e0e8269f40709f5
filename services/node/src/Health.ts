/**
 * `GET /healthz`: the process is alive and its event loop answers.
 * `GET /readyz`: the node is doing work: 200 when ready, 503 with the reasons
 * otherwise (Redis unreachable, stale registry heartbeat, no shards yet,
 * draining or shutting down). Load balancers route on `/readyz`.
 */
import { HttpServerResponse } from "@effect/platform"
import type { ClusterNode } from "@weft/cluster"
import { Effect } from "effect"
import * as Drain from "./Drain.ts"
import { NodeRoutes } from "./HttpServer.ts"
import { NodeConfigService } from "./NodeConfig.ts"

export const routes = NodeRoutes.use((router) =>
  Effect.gen(function*() {
    const config = yield* NodeConfigService
    const readiness = Effect.provide(Drain.readiness, yield* Effect.context<Drain.Draining | ClusterNode.ClusterStatus>())
    yield* router.get("/healthz", HttpServerResponse.unsafeJson({ status: "ok", node: config.nodeId }))
    yield* router.get(
      "/readyz",
      Effect.flatMap(readiness, (readiness) =>
        HttpServerResponse.json(
          { ...readiness, node: config.nodeId },
          { status: readiness.ready ? 200 : 503 }
        ))
    )
  })
)
