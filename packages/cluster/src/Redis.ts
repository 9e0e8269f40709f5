/**
 * The node's Redis connection (ioredis), set to fail fast: while Redis is
 * unreachable every command fails within `commandTimeoutMs` instead of
 * queueing, because @effect/cluster's single activation relies on storage
 * calls failing before a shard lock could expire. The client reconnects by
 * itself with capped, jittered backoff; `isReady` says whether it is up now.
 */
import { Context, Data, Effect, Layer, Redacted, Schema } from "effect"
import type { Scope } from "effect"
import IORedis from "ioredis"
import type { Command } from "ioredis"
import * as ClusterMetrics from "./ClusterMetrics.ts"

export class RedisError extends Data.TaggedError("RedisError")<{ readonly message: string; readonly cause?: unknown }> {}

export interface RedisOptions {
  readonly url: Redacted.Redacted<string> | string
  /** Names the connections (`weft-<name>-commands`) so operators can tell nodes apart in CLIENT LIST. */
  readonly name?: string
  /** Upper bound of one command's round trip; keep it below the shard lock refresh interval. */
  readonly commandTimeoutMs?: number
  /** How long start-up waits for a first connection before going on not-ready. */
  readonly connectTimeoutMs?: number
}

export interface RedisService {
  /** Commands. Fails fast while disconnected. */
  readonly client: IORedis
  /** A new connection for SUBSCRIBE (a subscribed connection can run nothing else); closed with the scope. */
  readonly subscriber: Effect.Effect<IORedis, never, Scope.Scope>
  /** Whether the command connection is up. */
  readonly isReady: () => boolean
  /** The last connection error, for readiness reports; cleared when the connection is ready again. */
  readonly lastError: () => string | undefined
  /** Runs a command with a typed error. */
  readonly use: <A>(f: (client: IORedis) => Promise<A>) => Effect.Effect<A, RedisError>
}

export class Redis extends Context.Tag("@weft/cluster/Redis")<Redis, RedisService>() {}

/** `weft:{<cluster>}:` — the `{...}` hash tag keeps a cluster's keys in one Redis Cluster slot. */
export const keyPrefix = (cluster: string): string => `weft:{${cluster}}:`

const ClusterName = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]{1,64}$/))
export const validateClusterName = Schema.decodeUnknownSync(ClusterName)

/** The longest wait between two reconnect attempts (jitter makes it 50-100% of this). */
export const reconnectBackoffCapMs = 2000

const clientOptions = (options: RedisOptions) => ({
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  // A command in flight when the connection broke has already failed for its caller; resending it
  // after the reconnect would deliver a PUBLISH twice or run a storage script the caller gave up on.
  autoResendUnfulfilledCommands: false,
  commandTimeout: options.commandTimeoutMs ?? 1000,
  connectTimeout: options.connectTimeoutMs ?? 2000,
  // Reconnect forever, backing off to 2 s with jitter so a restarted Redis is not stampeded.
  retryStrategy: (attempt: number) => Math.min(reconnectBackoffCapMs, 50 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2)
})

const connect = (client: IORedis): Effect.Effect<void> =>
  Effect.tryPromise(() => client.connect()).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning("redis is not reachable yet; serving local work and retrying in the background").pipe(
        Effect.annotateLogs({ error: String(error) })
      )
    )
  )

const errors = new WeakMap<IORedis, string>()

const counted = new WeakSet<Command>()

/**
 * Counts every failed command of `client` in `ClusterMetrics.redisErrors` (an error reply, a
 * timeout, a command refused while disconnected), whoever sent it: ioredis has no hook for
 * that, so its `sendCommand` is wrapped to observe each command's `reject`. Observing there,
 * rather than catching the command's promise, leaves unhandled rejections as they were.
 * NOSCRIPT is not counted: ioredis answers it by sending the script and retrying.
 */
const countFailedCommands = (client: IORedis, role: string): void => {
  const send = client.sendCommand.bind(client)
  client.sendCommand = (command: Command, stream?: Parameters<IORedis["sendCommand"]>[1]) => {
    if (!counted.has(command)) {
      counted.add(command)
      const reject = command.reject
      command.reject = (error: Error) => {
        if (!String(error?.message).startsWith("NOSCRIPT")) ClusterMetrics.recordRedisError(role, "command")
        reject(error)
      }
    }
    return send(command, stream)
  }
}

const open = (options: RedisOptions, role: string): Effect.Effect<IORedis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const url = typeof options.url === "string" ? options.url : Redacted.value(options.url)
      const name = options.name === undefined ? `weft-${role}` : `weft-${options.name}-${role}`
      const client = new IORedis(url, { ...clientOptions(options), connectionName: name })
      // ioredis emits "error" on every failed reconnect attempt; without a listener Node treats it
      // as unhandled. The latest one is kept for readiness reports (`lastError`).
      client.on("error", (error: Error) => {
        errors.set(client, error.message)
        ClusterMetrics.recordRedisError(role, "connection")
      })
      countFailedCommands(client, role)
      client.on("ready", () => errors.delete(client))
      return client
    }).pipe(Effect.tap(connect)),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

export const make = (options: RedisOptions): Effect.Effect<RedisService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* open(options, "commands")
    return {
      client,
      subscriber: open(options, "subscriber"),
      isReady: () => client.status === "ready",
      lastError: () => errors.get(client),
      use: (f) =>
        Effect.tryPromise({
          try: () => f(client),
          catch: (cause) => new RedisError({ message: cause instanceof Error ? cause.message : String(cause), cause })
        })
    }
  })

export const layer = (options: RedisOptions): Layer.Layer<Redis> => Layer.scoped(Redis, make(options))
