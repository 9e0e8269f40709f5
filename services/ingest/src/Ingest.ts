/**
 * The ingest role: consumes events from the configured buses and delivers
 * them through the notification delivery path. A source runs only when it is
 * configured, so a node with the role and no source does nothing.
 */
import type { DeliveryPath } from "@weft/notification"
import { Data, Effect, Either, Layer, Redacted } from "effect"
import * as Consumer from "./Consumer.ts"
import * as Dedupe from "./Dedupe.ts"
import * as Pipeline from "./Pipeline.ts"
import * as Rules from "./Rules.ts"
import type { Source } from "./Source.ts"
import * as Amqp from "./sources/Amqp.ts"
import * as Nats from "./sources/Nats.ts"
import * as RedisStream from "./sources/RedisStream.ts"

export interface Config {
  readonly nodeId: string
  /** The cluster name: names the shared consumer (`weft-<cluster>`) and the dedupe keys. */
  readonly cluster: string
  /** The mapping rules (checked with `Rules.RulesFromJson`); none: every subject, target from the envelope. */
  readonly rules: ReadonlyArray<Rules.Rule>
  /** How long a delivered event's key is remembered against redeliveries. */
  readonly dedupeWindowMs: number
  /** Events taken from one source and not yet settled, per node. */
  readonly maxInFlight: number
  /** How long an event taken by a node stays with it unacked before the bus gives it to another. */
  readonly redeliveryMs: number
  readonly nats?: {
    readonly servers: ReadonlyArray<string>
    readonly stream: string
    /** Default `weft.dead-letter.<stream>`. */
    readonly deadLetterSubject?: string
  }
  readonly amqp?: {
    readonly url: Redacted.Redacted<string>
    readonly queue: string
    readonly exchange?: string
  }
  /** A stream key on the node's Redis. */
  readonly redisStream?: string
}

/** The name shared by the cluster's nodes: NATS durable consumer, Redis consumer group. */
export const consumerName = (cluster: string): string => `weft-${cluster.replace(/\./g, "_")}`

/** `amqp://user:secret@host/vhost` → `amqp://user@host/vhost`. */
export const publicUrl = (url: string): string => url.replace(/^(\w+:\/\/[^:@/]+):[^@/]*@/, "$1@")

/** The configured sources. */
export const sources = (config: Config): ReadonlyArray<Source> => {
  const consumer = consumerName(config.cluster)
  const connectionName = `weft-${config.nodeId}`
  const list: Array<Source> = []
  if (config.nats !== undefined) {
    list.push(Nats.make({
      servers: config.nats.servers,
      stream: config.nats.stream,
      durable: consumer,
      deadLetterSubject: config.nats.deadLetterSubject ?? `weft.dead-letter.${config.nats.stream}`,
      holdMs: config.redeliveryMs,
      connectionName
    }))
  }
  if (config.amqp !== undefined) {
    const url = Redacted.value(config.amqp.url)
    list.push(Amqp.make({
      url,
      publicUrl: publicUrl(url),
      queue: config.amqp.queue,
      exchange: config.amqp.exchange,
      prefetch: config.maxInFlight,
      connectionName
    }))
  }
  if (config.redisStream !== undefined) {
    list.push(RedisStream.make({
      key: config.redisStream,
      group: consumer,
      consumer: config.nodeId,
      holdMs: config.redeliveryMs,
      connectionName: `${connectionName}-ingest`
    }))
  }
  return list
}

/** The ingest configuration cannot be used (rules that `Rules.RulesFromJson` would have refused). */
export class IngestConfigError extends Data.TaggedError("IngestConfigError")<{ readonly message: string }> {}

/** Runs a consumer for each configured source until the layer's scope closes. */
export const layer = (config: Config): Layer.Layer<never, IngestConfigError, DeliveryPath.DeliveryPath> => {
  const list = sources(config)
  if (list.length === 0) return Layer.empty
  return Either.match(Rules.make(config.rules), {
    onLeft: (problem) => Layer.fail(new IngestConfigError({ message: `invalid ingest rules: ${problem}` })),
    onRight: (rules) =>
      Layer.scopedDiscard(Effect.gen(function*() {
        for (const source of list) yield* Consumer.start(source, { maxInFlight: config.maxInFlight, holdMs: config.redeliveryMs })
      })).pipe(
        Layer.provide(Pipeline.layer(rules)),
        Layer.provide(Dedupe.layer({ cluster: config.cluster, windowMs: config.dedupeWindowMs, holdMs: config.redeliveryMs }))
      )
  })
}
