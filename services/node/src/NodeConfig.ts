/**
 * The node's configuration: environment variables and CLI flags, decoded with
 * Schema at start-up so that a bad value stops the node with a clear message.
 * Flags win over the environment. Every key is listed in the README.
 */
import { Context, Data, Either, ParseResult, Schema } from "effect"

const Port = Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 65535))
const Millis = Schema.NumberFromString.pipe(Schema.int(), Schema.positive())
const LogLevel = Schema.Literal("trace", "debug", "info", "warning", "error", "none")
const LogFormat = Schema.Literal("json", "pretty")

/** One configuration key: its flag, its environment variable and its description. */
interface Key {
  readonly flag: string
  readonly env: string
  readonly doc: string
}

const keys = {
  port: { flag: "port", env: "WEFT_PORT", doc: "HTTP and WebSocket port (0 picks a free one)" },
  host: { flag: "host", env: "WEFT_HOST", doc: "interface to bind" },
  nodeId: { flag: "node-id", env: "WEFT_NODE_ID", doc: "this node's name in logs and metrics" },
  logLevel: { flag: "log-level", env: "WEFT_LOG_LEVEL", doc: "trace | debug | info | warning | error | none" },
  logFormat: { flag: "log-format", env: "WEFT_LOG_FORMAT", doc: "json | pretty" },
  shutdownDeadlineMs: {
    flag: "shutdown-deadline-ms",
    env: "WEFT_SHUTDOWN_DEADLINE_MS",
    doc: "how long a stopping node drains before it interrupts what is left"
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
  }
} as const satisfies Record<string, Key>

type Name = keyof typeof keys

export const NodeConfigSchema = Schema.Struct({
  port: Schema.optionalWith(Port, { default: () => 8080 }),
  host: Schema.optionalWith(Schema.NonEmptyString, { default: () => "0.0.0.0" }),
  nodeId: Schema.optional(Schema.NonEmptyString.pipe(Schema.pattern(/^[A-Za-z0-9._-]{1,64}$/))),
  logLevel: Schema.optionalWith(LogLevel, { default: () => "info" as const }),
  logFormat: Schema.optionalWith(LogFormat, { default: () => "json" as const }),
  shutdownDeadlineMs: Schema.optionalWith(Millis, { default: () => 10_000 }),
  redisUrl: Schema.optional(Schema.String.pipe(Schema.pattern(/^rediss?:\/\//, { message: () => "a redis:// or rediss:// URL" }))),
  cluster: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]{1,64}$/)), { default: () => "weft" }),
  runnerHost: Schema.optionalWith(Schema.NonEmptyString, { default: () => "127.0.0.1" }),
  runnerPort: Schema.optionalWith(Port, { default: () => 7700 }),
  runnerListenHost: Schema.optional(Schema.NonEmptyString),
  lockExpirationMs: Schema.optionalWith(Millis.pipe(Schema.greaterThanOrEqualTo(1000)), { default: () => 3000 })
})

export interface NodeConfig {
  readonly port: number
  readonly host: string
  readonly nodeId: string
  readonly logLevel: typeof LogLevel.Type
  readonly logFormat: typeof LogFormat.Type
  readonly shutdownDeadlineMs: number
  readonly redisUrl: string | undefined
  readonly cluster: string
  readonly runnerHost: string
  readonly runnerPort: number
  readonly runnerListenHost: string | undefined
  readonly lockExpirationMs: number
}

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
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (value === undefined) return Either.left(new ConfigError({ message: `flag --${flag} needs a value` }))
    raw[name] = value
  }
  return Either.right(raw)
}

/** Decodes the configuration from CLI arguments (without the program name) and the environment. */
export const load = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>,
  defaultNodeId: string
): Either.Either<NodeConfig, ConfigError | HelpRequested> =>
  Either.flatMap(collect(argv, env), (raw) =>
    Schema.decodeUnknownEither(NodeConfigSchema, { onExcessProperty: "error" })(raw).pipe(
      Either.map((decoded): NodeConfig => ({
        ...decoded,
        nodeId: decoded.nodeId ?? defaultNodeId,
        redisUrl: decoded.redisUrl,
        runnerListenHost: decoded.runnerListenHost
      })),
      Either.mapLeft((error) =>
        new ConfigError({
          message: `invalid configuration:\n${ParseResult.TreeFormatter.formatErrorSync(error)}\n(keys: ${
            Object.values(keys).map((key) => `--${key.flag} / ${key.env}`).join(", ")
          })`
        })
      )
    ))

/** The `--help` text: every key with its flag, variable and meaning. */
export const help = (): string =>
  [
    "weft node: every key can be given as a flag or an environment variable (flags win).",
    "",
    ...Object.values(keys).map((key) => `  --${key.flag.padEnd(22)} ${key.env.padEnd(28)} ${key.doc}`)
  ].join("\n")
