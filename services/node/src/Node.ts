/**
 * A Weft node as one layer: config, logging, the actor system, cluster
 * membership, the roles and the HTTP server. Closing it stops accepting,
 * drains the actors and exits.
 */
import { ActorSystem } from "@weft/actor"
import * as Chat from "@weft/chat"
import { ClusterNode } from "@weft/cluster"
import * as Notification from "@weft/notification"
import { Layer, Logger, LogLevel } from "effect"
import * as Health from "./Health.ts"
import * as HttpServer from "./HttpServer.ts"
import { type NodeConfig, NodeConfigService } from "./NodeConfig.ts"

const logLevels = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
} as const

export const logging = (config: NodeConfig): Layer.Layer<never> =>
  Layer.mergeAll(
    config.logFormat === "json" ? Logger.json : Logger.pretty,
    Logger.minimumLogLevel(logLevels[config.logLevel])
  )

export const clusterConfig = (config: NodeConfig): ClusterNode.Config => ({
  nodeId: config.nodeId,
  cluster: config.cluster,
  redis: config.redisUrl === undefined ? undefined : { url: config.redisUrl },
  runnerHost: config.runnerHost,
  runnerPort: config.runnerPort,
  ...(config.runnerListenHost === undefined ? {} : { runnerListenHost: config.runnerListenHost }),
  lockExpiration: `${config.lockExpirationMs} millis`
})

/** Everything a node runs, for the given configuration. */
export const layer = (config: NodeConfig) => {
  const configLayer = Layer.succeed(NodeConfigService, config)
  const actors = ActorSystem.layer({ name: config.nodeId, shutdownDeadline: `${config.shutdownDeadlineMs} millis` })
  const cluster = ClusterNode.layer(clusterConfig(config))
  const entities = Layer.mergeAll(Chat.RoomLive, Notification.UserLive)
  const routes = Layer.mergeAll(Health.routes, HttpServer.NodeRoutes.use(Chat.routes))
  const server = HttpServer.layer(routes)
  return server.pipe(
    Layer.provideMerge(entities),
    Layer.provideMerge(cluster),
    Layer.provideMerge(actors),
    Layer.provide(configLayer),
    Layer.provide(logging(config))
  )
}
