/**
 * A Weft node as one layer: config, logging, the actor system, cluster
 * membership, the roles and the HTTP server. Closing it stops accepting,
 * drains the actors and exits.
 */
import { ActorSystem } from "@weft/actor"
import { Grpc, HttpJson, Idempotency, Invoker, Server as ApiServer, ServiceAuth } from "@weft/api/server"
import * as Auth from "@weft/auth"
import * as Chat from "@weft/chat"
import { ClusterNode, Directory, MemoryHistory, NodeStats, RedisHistory } from "@weft/cluster"
import * as Gateway from "@weft/gateway"
import * as Ingest from "@weft/ingest"
import * as Notification from "@weft/notification"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, Schedule } from "effect"
import * as Drain from "./Drain.ts"
import * as Health from "./Health.ts"
import * as HttpServer from "./HttpServer.ts"
import * as Tls from "./Tls.ts"
import * as Metrics from "./Metrics.ts"
import * as Stats from "./Stats.ts"
import * as DevMode from "./dev/DevMode.ts"
import * as DevRoutes from "./dev/DevRoutes.ts"
import * as DashboardFeed from "./web/DashboardFeed.ts"
import * as Pages from "./web/Pages.ts"
import { type NodeConfig, NodeConfigService, type Role } from "./NodeConfig.ts"

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

/** Shard groups of the entity roles: a node hosts the groups of the roles it runs. */
const shardGroups: Partial<Record<Role, string>> = { chat: Chat.shardGroup, notification: Notification.shardGroup }

export const clusterConfig = (config: NodeConfig): ClusterNode.Config => ({
  shardGroups: {
    available: Object.values(shardGroups),
    assigned: config.roles.flatMap((role) => shardGroups[role] ?? [])
  },
  nodeId: config.nodeId,
  cluster: config.cluster,
  redis: config.redisUrl === undefined ? undefined : { url: config.redisUrl },
  runnerHost: config.runnerHost,
  runnerPort: config.runnerPort,
  ...(config.runnerListenHost === undefined ? {} : { runnerListenHost: config.runnerListenHost }),
  lockExpiration: `${config.lockExpirationMs} millis`
})

export const gatewayConfig = (config: NodeConfig): Gateway.GatewayConfig => ({
  nodeId: config.nodeId,
  allowedOrigins: config.allowedOrigins,
  maxFrameBytes: config.maxFrameBytes,
  ratePerSecond: config.ratePerSecond,
  rateBurst: config.rateBurst,
  maxSubscriptions: config.maxSubscriptions,
  heartbeatMs: config.heartbeatMs,
  slowConsumerBytes: config.slowConsumerBytes,
  slowConsumerPolicy: config.slowConsumerPolicy,
  refreshMarginMs: config.refreshMarginMs,
  expiryGraceMs: config.expiryGraceMs
})

/** The ingest role's sources, rules and limits; a source runs only where it is configured. */
export const ingestConfig = (config: NodeConfig): Ingest.Config => ({
  nodeId: config.nodeId,
  cluster: config.cluster,
  rules: config.ingestRules ?? [],
  dedupeWindowMs: config.ingestDedupeWindowMs,
  maxInFlight: config.ingestMaxInFlight,
  redeliveryMs: config.ingestRedeliveryMs,
  ...(config.ingestNatsUrl === undefined || config.ingestNatsStream === undefined ? {} : {
    nats: {
      servers: Redacted.value(config.ingestNatsUrl).split(","),
      stream: config.ingestNatsStream,
      ...(config.ingestNatsDeadLetterSubject === undefined ? {} : { deadLetterSubject: config.ingestNatsDeadLetterSubject })
    }
  }),
  ...(config.ingestAmqpUrl === undefined || config.ingestAmqpQueue === undefined ? {} : {
    amqp: {
      url: config.ingestAmqpUrl,
      queue: config.ingestAmqpQueue,
      ...(config.ingestAmqpExchange === undefined ? {} : { exchange: config.ingestAmqpExchange })
    }
  }),
  ...(config.ingestRedisStream === undefined ? {} : { redisStream: config.ingestRedisStream })
})

/**
 * Cluster membership and the stores: with Redis, tickets, bans, room history, inboxes, scheduled
 * notifications and idempotency keys live there (any node redeems any node's ticket; a room's
 * history survives its node; a scheduled notification survives the node that accepted it) on the
 * node's one Redis connection; alone, everything is in memory.
 */
const membership = (config: NodeConfig) => {
  const cluster = clusterConfig(config)
  const limits = { maxLength: config.historyMaxLength, maxAgeMs: config.historyMaxAgeMs }
  const inboxLimits = { maxLength: config.inboxMaxLength, maxAgeMs: config.inboxMaxAgeMs }
  const ttlSeconds = config.ticketTtlSeconds
  if (cluster.redis === undefined) {
    const directory = <I>(tag: Context.Tag<I, Directory.DirectoryService>) => Layer.sync(tag, Directory.makeMemory)
    return Layer.mergeAll(
      Auth.Tickets.layerMemory({ ttlSeconds }),
      Auth.Revocations.layerMemory,
      NodeStats.layerMemory(Stats.staleAfterMs),
      Idempotency.layerMemory(),
      Notification.MemoryScheduler.layer(),
      MemoryHistory.layer(limits),
      Layer.effect(Notification.Inbox, MemoryHistory.make(inboxLimits)),
      Chat.Members.layerMemory,
      directory(Notification.Connections),
      directory(Notification.ReadMarks),
      directory(Notification.UserSettings)
    ).pipe(Layer.provideMerge(ClusterNode.embedded(cluster)))
  }
  const userDirectory = <I>(tag: Context.Tag<I, Directory.DirectoryService>, name: string, ttlMs: number) =>
    Layer.scoped(tag, Directory.makeRedis({ cluster: config.cluster, namespace: "user", name, ttlMs }))
  return Layer.mergeAll(
    Auth.Tickets.layerRedis({ cluster: config.cluster, ttlSeconds }),
    Auth.Revocations.layerRedis({ cluster: config.cluster }),
    NodeStats.layerRedis({ cluster: config.cluster, staleAfterMs: Stats.staleAfterMs }),
    Idempotency.layerRedis({ cluster: config.cluster }),
    Notification.RedisScheduler.layer({ cluster: config.cluster }),
    RedisHistory.layer({ cluster: config.cluster, ...limits }),
    Layer.effect(Notification.Inbox, RedisHistory.make({ cluster: config.cluster, namespace: "inbox", ...inboxLimits })),
    Chat.Members.layerRedis({ cluster: config.cluster, ttlMs: config.historyMaxAgeMs }),
    userDirectory(Notification.Connections, "connections", config.inboxMaxAgeMs),
    userDirectory(Notification.ReadMarks, "read", config.inboxMaxAgeMs),
    // Settings are the user's: they live a year past their last change.
    userDirectory(Notification.UserSettings, "settings", 365 * 86_400_000)
  ).pipe(Layer.provideMerge(ClusterNode.overRedis(cluster, cluster.redis)))
}

const has = (config: NodeConfig, role: Role): boolean => config.roles.includes(role)

/**
 * The gRPC door on `--grpc-port` (none when unset), with the node's TLS certificate when it has
 * one. It stops accepting connections as soon as the node starts draining (checked every 100 ms:
 * `Draining` is a flag) and closes with the node's routes.
 */
const grpcDoor = (config: NodeConfig) => {
  const port = config.grpcPort
  if (port === undefined) return Layer.empty
  return Layer.scopedDiscard(Effect.gen(function*() {
    const draining = yield* Drain.Draining
    const files = yield* Tls.read(config)
    const tls = files === undefined ? undefined : { certificateChain: Buffer.from(files.cert), privateKey: Buffer.from(files.key) }
    yield* Grpc.make({
      host: config.host,
      port,
      tls,
      draining: Effect.asVoid(Effect.repeat(draining.isDraining, { until: (on) => on, schedule: Schedule.spaced("100 millis") }))
    })
  }))
}

/**
 * The service API for the services named in `--service-keys`: typed at `/rpc` (HTTP and
 * WebSocket), and for other languages as HTTP JSON (`POST /v1/api/<call>`) and gRPC
 * (`--grpc-port`), the last two sharing one `Invoker` over the same handlers.
 */
const serviceApi = (config: NodeConfig) =>
  Layer.mergeAll(
    HttpServer.NodeRoutes.use(ApiServer.routes),
    HttpServer.webSocketEndpoint(ApiServer.makeWebSocketEndpoint()),
    Layer.merge(HttpServer.NodeRoutes.use(HttpJson.routes), grpcDoor(config)).pipe(Layer.provide(Invoker.layer))
  ).pipe(
    Layer.provide(Notification.serviceApi),
    Layer.provide(Layer.unwrapEffect(
      Effect.map(
        config.serviceKeys === undefined ? Effect.succeed([]) : ServiceAuth.parseCredentials(Redacted.value(config.serviceKeys)),
        ServiceAuth.layer
      )
    ))
  )

/** The entities, routes and services of the roles this node runs. */
const roles = (config: NodeConfig) => {
  const when = <A, E, R>(role: Role, layer: Layer.Layer<A, E, R>) => (has(config, role) ? [layer] : [])
  const entities = [
    ...when("chat", Chat.layer()),
    ...when("notification", Notification.layer())
  ]
  // The gateway redeems tickets (the store) and checks refreshed JWTs; issuing tickets (the auth role)
  // checks JWTs too: one verifier for both. The gateway's protocol extensions call the entities wherever they live.
  const verifier = Auth.Jwt.layerConfig(config)
  const gateway = Layer.mergeAll(
    Chat.gatewayExtension,
    Notification.gatewayExtension({ maxConnectionsPerUser: config.maxConnectionsPerUser })
  ).pipe(
    Layer.provideMerge(Gateway.layer),
    Layer.provide(Layer.succeed(Gateway.GatewayConfigService, gatewayConfig(config))),
    Layer.provide(Auth.layerAuth.pipe(Layer.provide(verifier)))
  )
  // Scheduled notifications are delivered by every notification node (each item by one of them).
  const services = [
    ...when("gateway", gateway),
    ...when("notification", Notification.ScheduledDelivery.runner),
    // Bus consumers, only for the sources configured; delivering wherever the users' entities live.
    ...when("ingest", Ingest.layer(ingestConfig(config)).pipe(Layer.provide(Notification.DeliveryPath.layer)))
  ]
  const routes = [
    Health.routes,
    Metrics.routes,
    HttpServer.NodeRoutes.use(Chat.routes),
    ...when("auth", HttpServer.NodeRoutes.use(Auth.routes).pipe(Layer.provide(verifier))),
    ...when("notification", serviceApi(config)),
    // The demo page, the dashboard and its feed, the dev-mode routes: each only where the config asks.
    Pages.routes,
    DashboardFeed.layer(config),
    DevRoutes.layer(config)
  ]
  return {
    entities: Layer.mergeAll(Layer.empty, ...entities),
    services: Layer.mergeAll(Layer.empty, ...services),
    routes: Layer.mergeAll(Layer.empty, ...routes)
  }
}

/** Everything a node runs, for the given configuration. */
export const layer = (given: NodeConfig) => {
  const config = DevMode.prepare(given)
  const configLayer = Layer.succeed(NodeConfigService, config)
  const actors = ActorSystem.layer({ name: config.nodeId, shutdownDeadline: `${config.shutdownDeadlineMs} millis` })
  const { entities, services, routes } = roles(config)
  return Layer.merge(HttpServer.layer(routes), Stats.reporter).pipe(
    Layer.provideMerge(services),
    Layer.provideMerge(entities),
    Layer.provideMerge(membership(config)),
    Layer.provideMerge(Chat.ActiveRooms.layer),
    Layer.provideMerge(actors),
    Layer.provideMerge(Drain.Draining.Live),
    Layer.provide(configLayer),
    Layer.provide(logging(config)),
    Layer.tap((context) => announce(config, Context.get(context, HttpServer.HttpServer))),
    Layer.provideMerge(DevMode.warn(given))
  )
}

/** The URLs to open, as a log line; in dev mode also as a plain banner on stdout, for the person who ran `npm start`. */
const announce = (config: NodeConfig, server: HttpServer.HttpServerInfo) =>
  Effect.suspend(() => {
    const links = DevMode.urls(config, server)
    if (config.dev) console.log(DevMode.banner(links))
    return Effect.logInfo("urls").pipe(Effect.annotateLogs(links))
  })
