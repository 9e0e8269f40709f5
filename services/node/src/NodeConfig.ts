/**
 * The node's configuration: environment variables and CLI flags, decoded with
 * Schema at start-up so that a bad value stops the node with a clear message.
 * Flags win over the environment. Every key is listed in the README.
 */
import * as IngestRules from "@weft/ingest/Rules"
import { Context, Data, Either, ParseResult, Schema } from "effect"

const Port = Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 65535))
const Millis = Schema.NumberFromString.pipe(Schema.int(), Schema.positive())
const Count = Schema.NumberFromString.pipe(Schema.int(), Schema.positive())
/** `a, b ,c` → `["a", "b", "c"]`. */
const CommaList = Schema.transform(Schema.String, Schema.Array(Schema.NonEmptyString), {
  strict: true,
  decode: (text) => text.split(",").map((part) => part.trim()).filter((part) => part.length > 0),
  encode: (parts) => parts.join(",")
})
const LogLevel = Schema.Literal("trace", "debug", "info", "warning", "error", "none")
const LogFormat = Schema.Literal("json", "pretty")
/** `true`/`false`, `1`/`0`, `yes`/`no`. */
const Switch = Schema.transform(Schema.Literal("true", "false", "1", "0", "yes", "no"), Schema.Boolean, {
  strict: true,
  decode: (text) => text === "true" || text === "1" || text === "yes",
  encode: (on) => (on ? "true" : "false")
})

/** The roles a node can run. A role is a group of actors, entities and routes. */
export const allRoles = ["gateway", "auth", "chat", "notification", "ingest"] as const
export type Role = (typeof allRoles)[number]
const Role = Schema.Literal(...allRoles)

/** One configuration key: its flag, its environment variable and its description. */
interface Key {
  readonly flag: string
  readonly env: string
  readonly doc: string
  /** A switch: the flag alone (`--dev`) means `true`; `--dev=false` and `WEFT_DEV=0` turn it off. */
  readonly switch?: true
}

const keys = {
  port: { flag: "port", env: "WEFT_PORT", doc: "HTTP and WebSocket port (0 picks a free one)" },
  host: { flag: "host", env: "WEFT_HOST", doc: "interface to bind" },
  tlsCert: { flag: "tls-cert", env: "WEFT_TLS_CERT", doc: "PEM certificate (chain) file: serve https and wss (with --tls-key)" },
  tlsKey: { flag: "tls-key", env: "WEFT_TLS_KEY", doc: "PEM private key file of --tls-cert" },
  nodeId: { flag: "node-id", env: "WEFT_NODE_ID", doc: "this node's name in logs and metrics" },
  logLevel: { flag: "log-level", env: "WEFT_LOG_LEVEL", doc: "trace | debug | info | warning | error | none" },
  logFormat: { flag: "log-format", env: "WEFT_LOG_FORMAT", doc: "json | pretty" },
  shutdownDeadlineMs: {
    flag: "shutdown-deadline-ms",
    env: "WEFT_SHUTDOWN_DEADLINE_MS",
    doc: "how long a stopping node drains before it interrupts what is left"
  },
  drainDelayMs: {
    flag: "drain-delay-ms",
    env: "WEFT_DRAIN_DELAY_MS",
    doc: "on SIGTERM, how long /readyz says 503 before clients are told to leave (give load balancers time to notice)"
  },
  redisUrl: { flag: "redis-url", env: "WEFT_REDIS_URL", doc: "Redis for a cluster (unset: embedded single node)" },
  cluster: { flag: "cluster", env: "WEFT_CLUSTER", doc: "cluster name; namespaces every Redis key" },
  runnerHost: { flag: "runner-host", env: "WEFT_RUNNER_HOST", doc: "address other nodes reach this node's runner at" },
  runnerPort: { flag: "runner-port", env: "WEFT_RUNNER_PORT", doc: "node-to-node port (cluster only)" },
  runnerListenHost: {
    flag: "runner-listen-host",
    env: "WEFT_RUNNER_LISTEN_HOST",
    doc: "interface the runner port binds (default: runner-host)"
  },
  lockExpirationMs: {
    flag: "lock-expiration-ms",
    env: "WEFT_LOCK_EXPIRATION_MS",
    doc: "how long a dead node's shards stay locked (bounds failover)"
  },
  jwtSecret: { flag: "jwt-secret", env: "WEFT_JWT_SECRET", doc: "HS256 shared secret for client JWTs (32+ bytes)" },
  jwtPublicKey: { flag: "jwt-public-key", env: "WEFT_JWT_PUBLIC_KEY", doc: "RS256 public key (SPKI PEM) for client JWTs" },
  jwtJwksUrl: { flag: "jwt-jwks-url", env: "WEFT_JWT_JWKS_URL", doc: "JWKS URL for client JWTs (RS256)" },
  jwtIssuer: { flag: "jwt-issuer", env: "WEFT_JWT_ISSUER", doc: "required `iss` of client JWTs" },
  jwtAudience: { flag: "jwt-audience", env: "WEFT_JWT_AUDIENCE", doc: "required `aud` of client JWTs" },
  ticketTtlSeconds: { flag: "ticket-ttl-s", env: "WEFT_TICKET_TTL_S", doc: "lifetime of a connection ticket (1-60 s; 30-60 advised)" },
  refreshMarginMs: {
    flag: "refresh-margin-ms",
    env: "WEFT_REFRESH_MARGIN_MS",
    doc: "how long before a connection's JWT expires it is sent refresh-required"
  },
  expiryGraceMs: {
    flag: "expiry-grace-ms",
    env: "WEFT_EXPIRY_GRACE_MS",
    doc: "how long after its JWT expired a connection without a refresh is kept; then closed with 4003"
  },
  allowedOrigins: {
    flag: "allowed-origins",
    env: "WEFT_ALLOWED_ORIGINS",
    doc: "comma-separated Origins allowed to open WebSockets (unset: any)"
  },
  maxFrameBytes: { flag: "max-frame-bytes", env: "WEFT_MAX_FRAME_BYTES", doc: "largest client frame; bigger closes with 1009" },
  ratePerSecond: { flag: "rate-per-second", env: "WEFT_RATE_PER_SECOND", doc: "frames per second per connection (token bucket)" },
  rateBurst: { flag: "rate-burst", env: "WEFT_RATE_BURST", doc: "token bucket size per connection" },
  maxSubscriptions: { flag: "max-subscriptions", env: "WEFT_MAX_SUBSCRIPTIONS", doc: "subscriptions per connection" },
  maxConnectionsPerUser: {
    flag: "max-connections-per-user",
    env: "WEFT_MAX_CONNECTIONS_PER_USER",
    doc: "live connections per user, cluster-wide"
  },
  heartbeatMs: { flag: "heartbeat-ms", env: "WEFT_HEARTBEAT_MS", doc: "clients send a frame at least this often; silent for 2x closes 4001" },
  slowConsumerBytes: {
    flag: "slow-consumer-bytes",
    env: "WEFT_SLOW_CONSUMER_BYTES",
    doc: "unsent bytes a connection may buffer before the slow-consumer policy applies"
  },
  slowConsumerPolicy: { flag: "slow-consumer-policy", env: "WEFT_SLOW_CONSUMER_POLICY", doc: "disconnect | drop" },
  historyMaxLength: { flag: "history-max-length", env: "WEFT_HISTORY_MAX_LENGTH", doc: "events kept per room" },
  historyMaxAgeMs: {
    flag: "history-max-age-ms",
    env: "WEFT_HISTORY_MAX_AGE_MS",
    doc: "events older than this are dropped; an idle room's history expires after it"
  },
  inboxMaxLength: { flag: "inbox-max-length", env: "WEFT_INBOX_MAX_LENGTH", doc: "notifications kept per user" },
  inboxMaxAgeMs: {
    flag: "inbox-max-age-ms",
    env: "WEFT_INBOX_MAX_AGE_MS",
    doc: "notifications older than this leave the inbox"
  },
  serviceKeys: {
    flag: "service-keys",
    env: "WEFT_SERVICE_KEYS",
    doc: "service API credentials, `service=key,...` (keys 32+ characters; unset: /rpc refuses every call)"
  },
  grpcPort: {
    flag: "grpc-port",
    env: "WEFT_GRPC_PORT",
    doc: "serve the service API over gRPC on this port too (notification role; 0 picks a free one; TLS with --tls-cert)"
  },
  ingestRules: {
    flag: "ingest-rules",
    env: "WEFT_INGEST_RULES",
    doc: "ingest: JSON array of mapping rules, subject pattern to target (see docs/ingest.md)"
  },
  ingestNatsUrl: { flag: "ingest-nats-url", env: "WEFT_INGEST_NATS_URL", doc: "ingest: NATS servers, comma-separated nats:// URLs" },
  ingestNatsStream: { flag: "ingest-nats-stream", env: "WEFT_INGEST_NATS_STREAM", doc: "ingest: the JetStream stream to consume" },
  ingestNatsDeadLetterSubject: {
    flag: "ingest-nats-dead-letter-subject",
    env: "WEFT_INGEST_NATS_DEAD_LETTER_SUBJECT",
    doc: "ingest: where NATS events that can never be delivered are published (default weft.dead-letter.<stream>)"
  },
  ingestAmqpUrl: { flag: "ingest-amqp-url", env: "WEFT_INGEST_AMQP_URL", doc: "ingest: RabbitMQ URL, amqp:// or amqps://" },
  ingestAmqpQueue: { flag: "ingest-amqp-queue", env: "WEFT_INGEST_AMQP_QUEUE", doc: "ingest: the durable queue to consume (declared by Weft)" },
  ingestAmqpExchange: {
    flag: "ingest-amqp-exchange",
    env: "WEFT_INGEST_AMQP_EXCHANGE",
    doc: "ingest: a topic exchange the queue is bound to for every routing key"
  },
  ingestRedisStream: { flag: "ingest-redis-stream", env: "WEFT_INGEST_REDIS_STREAM", doc: "ingest: a stream key on the node's Redis to consume" },
  ingestDedupeWindowMs: {
    flag: "ingest-dedupe-window-ms",
    env: "WEFT_INGEST_DEDUPE_WINDOW_MS",
    doc: "ingest: how long a delivered event's key is remembered against redeliveries"
  },
  ingestMaxInFlight: {
    flag: "ingest-max-in-flight",
    env: "WEFT_INGEST_MAX_IN_FLIGHT",
    doc: "ingest: events taken from one source and not yet settled, per node (backpressure)"
  },
  ingestRedeliveryMs: {
    flag: "ingest-redelivery-ms",
    env: "WEFT_INGEST_REDELIVERY_MS",
    doc: "ingest: how long an event taken by a node stays unacked before the bus gives it to another"
  },
  roles: {
    flag: "roles",
    env: "WEFT_ROLES",
    doc: "comma-separated roles this node runs: gateway, auth, chat, notification, ingest (default: all)"
  },
  dev: {
    flag: "dev",
    env: "WEFT_DEV",
    doc: "dev mode, never in production: anyone gets a JWT for any name (POST /v1/dev/token), the dashboard is open",
    switch: true
  },
  dashboard: {
    flag: "dashboard",
    env: "WEFT_DASHBOARD",
    doc: "serve the live dashboard (/dashboard) to anyone who reaches the port (always on in dev mode)",
    switch: true
  }
} as const satisfies Record<string, Key>

type Name = keyof typeof keys

/** Every key, for docs and the README check. */
export const allKeys: ReadonlyArray<Key> = Object.values(keys)

export const NodeConfigSchema = Schema.Struct({
  port: Schema.optionalWith(Port, { default: () => 8080 }),
  host: Schema.optionalWith(Schema.NonEmptyString, { default: () => "0.0.0.0" }),
  tlsCert: Schema.optional(Schema.NonEmptyString),
  tlsKey: Schema.optional(Schema.NonEmptyString),
  nodeId: Schema.optional(Schema.NonEmptyString.pipe(Schema.pattern(/^[A-Za-z0-9._-]{1,64}$/))),
  logLevel: Schema.optionalWith(LogLevel, { default: () => "info" as const }),
  logFormat: Schema.optionalWith(LogFormat, { default: () => "json" as const }),
  shutdownDeadlineMs: Schema.optionalWith(Millis, { default: () => 10_000 }),
  drainDelayMs: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 600_000)), { default: () => 0 }),
  redisUrl: Schema.optional(Schema.String.pipe(Schema.pattern(/^rediss?:\/\//, { message: () => "a redis:// or rediss:// URL" }))),
  cluster: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]{1,64}$/)), { default: () => "weft" }),
  runnerHost: Schema.optionalWith(Schema.NonEmptyString, { default: () => "127.0.0.1" }),
  runnerPort: Schema.optionalWith(Port, { default: () => 7700 }),
  runnerListenHost: Schema.optional(Schema.NonEmptyString),
  lockExpirationMs: Schema.optionalWith(Millis.pipe(Schema.greaterThanOrEqualTo(1000)), { default: () => 3000 }),
  jwtSecret: Schema.optional(Schema.Redacted(Schema.String.pipe(Schema.minLength(32, { message: () => "at least 32 bytes" })))),
  jwtPublicKey: Schema.optional(Schema.String.pipe(Schema.includes("BEGIN PUBLIC KEY", { message: () => "an SPKI PEM public key" }))),
  jwtJwksUrl: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\//, { message: () => "an http(s) URL" }))),
  jwtIssuer: Schema.optional(Schema.NonEmptyString),
  jwtAudience: Schema.optional(Schema.NonEmptyString),
  ticketTtlSeconds: Schema.optionalWith(Count.pipe(Schema.between(1, 60)), { default: () => 30 }),
  refreshMarginMs: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 86_400_000)), { default: () => 60_000 }),
  expiryGraceMs: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 3_600_000)), { default: () => 10_000 }),
  allowedOrigins: Schema.optional(CommaList),
  maxFrameBytes: Schema.optionalWith(Count.pipe(Schema.between(256, 16 * 1024 * 1024)), { default: () => 65_536 }),
  ratePerSecond: Schema.optionalWith(Count, { default: () => 100 }),
  rateBurst: Schema.optionalWith(Count, { default: () => 200 }),
  maxSubscriptions: Schema.optionalWith(Count, { default: () => 100 }),
  maxConnectionsPerUser: Schema.optionalWith(Count, { default: () => 10 }),
  heartbeatMs: Schema.optionalWith(Millis.pipe(Schema.greaterThanOrEqualTo(1000)), { default: () => 25_000 }),
  slowConsumerBytes: Schema.optionalWith(Count, { default: () => 1_048_576 }),
  slowConsumerPolicy: Schema.optionalWith(Schema.Literal("disconnect", "drop"), { default: () => "disconnect" as const }),
  historyMaxLength: Schema.optionalWith(Count.pipe(Schema.lessThanOrEqualTo(1_000_000)), { default: () => 1000 }),
  historyMaxAgeMs: Schema.optionalWith(Millis, { default: () => 86_400_000 }),
  inboxMaxLength: Schema.optionalWith(Count.pipe(Schema.lessThanOrEqualTo(10_000)), { default: () => 200 }),
  inboxMaxAgeMs: Schema.optionalWith(Millis, { default: () => 30 * 86_400_000 }),
  serviceKeys: Schema.optional(Schema.Redacted(Schema.String)),
  grpcPort: Schema.optional(Port),
  ingestRules: Schema.optional(IngestRules.RulesFromJson),
  ingestNatsUrl: Schema.optional(Schema.Redacted(Schema.String.pipe(
    Schema.pattern(/^(nats|tls):\/\/[^,\s]+(,(nats|tls):\/\/[^,\s]+)*$/, { message: () => "comma-separated nats:// or tls:// URLs" })
  ))),
  ingestNatsStream: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,255}$/, { message: () => "a stream name (A-Z a-z 0-9 _ -)" }))),
  ingestNatsDeadLetterSubject: Schema.optional(Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { message: () => "a subject without wildcards" })
  )),
  ingestAmqpUrl: Schema.optional(Schema.Redacted(Schema.String.pipe(Schema.pattern(/^amqps?:\/\//, { message: () => "an amqp:// or amqps:// URL" })))),
  ingestAmqpQueue: Schema.optional(Schema.String.pipe(Schema.pattern(/^(?!amq\.)\S{1,200}$/, { message: () => "a queue name (no spaces, not amq.*)" }))),
  ingestAmqpExchange: Schema.optional(Schema.String.pipe(Schema.pattern(/^(?!amq\.)\S{1,255}$/, { message: () => "an exchange name (no spaces, not amq.*)" }))),
  ingestRedisStream: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(512))),
  ingestDedupeWindowMs: Schema.optionalWith(Millis.pipe(Schema.greaterThanOrEqualTo(1000)), { default: () => 3_600_000 }),
  ingestMaxInFlight: Schema.optionalWith(Count.pipe(Schema.lessThanOrEqualTo(10_000)), { default: () => 64 }),
  ingestRedeliveryMs: Schema.optionalWith(Millis.pipe(Schema.greaterThanOrEqualTo(1000)), { default: () => 30_000 }),
  roles: Schema.optionalWith(
    CommaList.pipe(Schema.compose(Schema.NonEmptyArray(Role)), Schema.filter((roles) => new Set(roles).size === roles.length || "a role is listed twice")),
    { default: () => [...allRoles] }
  ),
  dev: Schema.optionalWith(Switch, { default: () => false }),
  dashboard: Schema.optionalWith(Switch, { default: () => false })
})

/** The decoded configuration; `nodeId` is always set (a default is derived from the host). */
export type NodeConfig = Omit<typeof NodeConfigSchema.Type, "nodeId"> & { readonly nodeId: string }

export class NodeConfigService extends Context.Tag("@weft/node/NodeConfig")<NodeConfigService, NodeConfig>() {}

export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly message: string }> {}

export class HelpRequested extends Data.TaggedError("HelpRequested")<{ readonly text: string }> {}

const flagToName = new Map<string, Name>(Object.entries(keys).map(([name, key]) => [key.flag, name as Name]))

/** Reads `--flag value`, `--flag=value` and the `WEFT_*` environment into raw strings by key name. */
const collect = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): Either.Either<Record<string, string>, ConfigError | HelpRequested> => {
  const raw: Record<string, string> = {}
  for (const [name, key] of Object.entries(keys)) {
    const value = env[key.env]
    if (value !== undefined && value !== "") raw[name] = value
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--help" || arg === "-h") return Either.left(new HelpRequested({ text: help() }))
    if (!arg.startsWith("--")) return Either.left(new ConfigError({ message: `unexpected argument ${JSON.stringify(arg)}` }))
    const eq = arg.indexOf("=")
    const flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    const name = flagToName.get(flag)
    if (name === undefined) return Either.left(new ConfigError({ message: `unknown flag --${flag} (see --help)` }))
    const value = eq === -1 ? ("switch" in keys[name] ? "true" : argv[++i]) : arg.slice(eq + 1)
    if (value === undefined) return Either.left(new ConfigError({ message: `flag --${flag} needs a value` }))
    raw[name] = value
  }
  return Either.right(raw)
}

/** Keys that only make sense together. */
const keyPairs = (decoded: typeof NodeConfigSchema.Type): string | undefined => {
  if ((decoded.tlsCert === undefined) !== (decoded.tlsKey === undefined)) return "--tls-cert and --tls-key go together"
  if ((decoded.ingestNatsUrl === undefined) !== (decoded.ingestNatsStream === undefined)) {
    return "--ingest-nats-url and --ingest-nats-stream go together"
  }
  if ((decoded.ingestAmqpUrl === undefined) !== (decoded.ingestAmqpQueue === undefined)) {
    return "--ingest-amqp-url and --ingest-amqp-queue go together"
  }
  if (decoded.ingestRedisStream !== undefined && decoded.redisUrl === undefined) return "--ingest-redis-stream needs --redis-url"
  return undefined
}

/**
 * Keys whose values are (or may hold) credentials. Schema's messages quote the value they refused
 * (`Expected ..., actual "..."`), so these values are cut out of every configuration error.
 */
const secretKeys: ReadonlyArray<Name> = ["jwtSecret", "serviceKeys", "redisUrl", "ingestNatsUrl", "ingestAmqpUrl"]

const redactSecrets = (message: string, raw: Readonly<Record<string, string>>): string =>
  secretKeys.reduce((text, name) => {
    const value = raw[name]
    return value === undefined || value === "" ? text : text.replaceAll(JSON.stringify(value), "<redacted>").replaceAll(value, "<redacted>")
  }, message)

/** Decodes the configuration from CLI arguments (without the program name) and the environment. */
export const load = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>,
  defaultNodeId: string
): Either.Either<NodeConfig, ConfigError | HelpRequested> =>
  Either.flatMap(collect(argv, env), (raw) =>
    Schema.decodeUnknownEither(NodeConfigSchema, { onExcessProperty: "error" })(raw).pipe(
      Either.mapLeft((error) =>
        new ConfigError({
          message: `invalid configuration:\n${redactSecrets(ParseResult.TreeFormatter.formatErrorSync(error), raw)}\n(keys: ${
            Object.values(keys).map((key) => `--${key.flag} / ${key.env}`).join(", ")
          })`
        })
      ),
      Either.flatMap((decoded) => {
        const verifiers = [decoded.jwtSecret, decoded.jwtPublicKey, decoded.jwtJwksUrl].filter((v) => v !== undefined)
        if (verifiers.length > 1) {
          return Either.left(
            new ConfigError({ message: "invalid configuration: set only one of --jwt-secret, --jwt-public-key, --jwt-jwks-url" })
          )
        }
        const pairProblem = keyPairs(decoded)
        if (pairProblem !== undefined) return Either.left(new ConfigError({ message: `invalid configuration: ${pairProblem}` }))
        return Either.right<NodeConfig>({ ...decoded, nodeId: decoded.nodeId ?? defaultNodeId })
      })
    ))

/** The `--help` text: every key with its flag, variable and meaning. */
export const help = (): string =>
  [
    "weft node: every key can be given as a flag or an environment variable (flags win).",
    "",
    ...Object.values(keys).map((key) => `  --${key.flag.padEnd(26)} ${key.env.padEnd(32)} ${key.doc}`)
  ].join("\n")
