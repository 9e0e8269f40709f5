/**
 * Local actors (connections) addressed from any node. A remotely reachable
 * actor's key starts with the id of the node it lives on (`conn/<node>/<n>`),
 * so a sender knows where to send without a lookup: to the actor system when
 * the node is this one, otherwise over the cluster topic of that node, which
 * every node subscribes to. Delivery to another node is at-most-once (it rides
 * Redis pub/sub); per sender and receiver it keeps the sender's order.
 */
import type { ActorDefinition, Message } from "@weft/actor"
import { ActorSystem, type TellError } from "@weft/actor"
import { Context, Effect, Either, Exit, Layer, Metric, MetricLabel, ParseResult, Schedule, Schema } from "effect"
import type { Scope } from "effect"
import { Packr } from "msgpackr"
import { ClusterTopics, type TopicError } from "./ClusterTopics.ts"

export class NodeId extends Context.Tag("@weft/cluster/NodeId")<NodeId, string>() {}

export interface ActorMailService {
  /** Tells `kind/key` wherever it lives. */
  readonly tell: <Kind extends string, M extends Message>(
    definition: ActorDefinition<Kind, M>,
    key: string,
    message: M
  ) => Effect.Effect<void, TellError | TopicError>
  /** Makes `definition`'s actors on this node reachable from other nodes while the scope is open. */
  readonly accept: <Kind extends string, M extends Message>(definition: ActorDefinition<Kind, M>) => Effect.Effect<void, never, Scope.Scope>
  /**
   * A key for an actor on this node: `<node>/<incarnation>-<local>`. The incarnation is
   * random per process start, so keys of a restarted node never collide with its old ones.
   */
  readonly localKey: (local: string | number) => string
  /** This process's incarnation of the node. */
  readonly incarnation: string
  /** Whether this node's topic is subscribed, i.e. other nodes can reach its actors. */
  readonly isReady: () => boolean
}

export class ActorMail extends Context.Tag("@weft/cluster/ActorMail")<ActorMail, ActorMailService>() {}

/** Messages that reached a node but no actor, by reason (`unknown-kind`, `invalid`, or a TellError tag). */
export const undeliverable = Metric.counter("weft_actor_mail_undeliverable_total", {
  description: "Cross-node actor messages that could not be delivered on arrival",
  incremental: true
})

export const nodeTopic = (node: string): string => `node:${node}`

/** The node a key belongs to, or `undefined` for keys not made by `localKey`. */
export const nodeOfKey = (key: string): string | undefined => {
  const slash = key.indexOf("/")
  return slash <= 0 ? undefined : key.slice(0, slash)
}

// Node-to-node only, so msgpackr's record extension is fine here (clients never see these bytes).
const packr = new Packr({ useRecords: true })

const Envelope = Schema.Tuple(Schema.String, Schema.String, Schema.Unknown)
const decodeEnvelope = Schema.decodeUnknownEither(Envelope)

interface Wire<M> {
  readonly encode: (message: M) => unknown
  readonly decode: (input: unknown) => Either.Either<M, ParseResult.ParseIssue>
}

// Keyed by the definition itself, so an entry always has that definition's message type.
const wires = new WeakMap<object, unknown>()

/** The definition's messages as a Schema union, encoded and decoded both ways (cached per definition). */
const wireOf = <M extends Message>(definition: ActorDefinition<string, M>): Wire<M> => {
  const cached = wires.get(definition) as Wire<M> | undefined
  if (cached !== undefined) return cached
  const union = Schema.Union(...definition.messages)
  const encode = Schema.encodeSync(union)
  const decode = ParseResult.decodeUnknownEither(union)
  const wire: Wire<M> = {
    encode: (message) => encode(message),
    // `definition.is` re-checks the decoded value against the kind's own type-side schema.
    decode: (input) =>
      Either.flatMap(decode(input), (message) =>
        definition.is(message)
          ? Either.right(message)
          : Either.left(new ParseResult.Type(definition.schema.ast, message, "not a message of this kind")))
  }
  wires.set(definition, wire)
  return wire
}

const undeliverableLabels = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
const countUndeliverable = (reason: string): void => {
  let labels = undeliverableLabels.get(reason)
  if (labels === undefined) {
    labels = [MetricLabel.make("reason", reason)]
    undeliverableLabels.set(reason, labels)
  }
  undeliverable.unsafeUpdate(1, labels)
}

export const make = Effect.gen(function*() {
  const node = yield* NodeId
  const incarnation = Date.now().toString(36) + Math.random().toString(36).slice(2, 6)
  const system = yield* ActorSystem
  const topics = yield* ClusterTopics
  /** Per accepted kind: decode the encoded message and tell the local actor; returns the failure reason. */
  const accepted = new Map<string, (key: string, encoded: unknown) => string | undefined>()

  const deliver = (payload: Uint8Array): void => {
    const envelope = decodeEnvelope(packr.unpack(payload))
    if (envelope._tag === "Left") return countUndeliverable("invalid")
    const [kind, key, encoded] = envelope.right
    const tell = accepted.get(kind)
    const failure = tell === undefined ? "unknown-kind" : tell(key, encoded)
    if (failure !== undefined) countUndeliverable(failure)
  }

  // Retried in the background: a node starts (and serves local work) while Redis is down,
  // and reports not-ready until its topic is subscribed.
  let subscribed = false
  yield* topics.subscribe(nodeTopic(node), deliver).pipe(
    Effect.tap(() =>
      Effect.sync(() => {
        subscribed = true
      })
    ),
    Effect.tapError((error) => Effect.logWarning(`node topic not subscribed yet: ${error.message}`)),
    Effect.retry(Schedule.union(Schedule.exponential("100 millis"), Schedule.spaced("2 seconds"))),
    Effect.forkScoped
  )

  const service: ActorMailService = {
    tell: (definition, key, message) => {
      const target = nodeOfKey(key)
      if (target === undefined || target === node) return system.ref(definition, key).tell(message)
      return Effect.suspend(() =>
        topics.publish(nodeTopic(target), packr.pack([definition.kind, key, wireOf(definition).encode(message)]))
      )
    },
    accept: (definition) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const wire = wireOf(definition)
          accepted.set(definition.kind, (key, encoded) => {
            const message = wire.decode(encoded)
            if (message._tag === "Left") return "invalid"
            const exit = Effect.runSyncExit(system.ref(definition, key).tell(message.right))
            if (Exit.isSuccess(exit)) return undefined
            return exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect"
          })
        }),
        () => Effect.sync(() => accepted.delete(definition.kind))
      ),
    localKey: (local) => `${node}/${incarnation}-${local}`,
    incarnation,
    isReady: () => subscribed
  }
  return service
})

/** Requires the node's id, its actor system and the cluster topics. */
export const layer: Layer.Layer<ActorMail, never, NodeId | ActorSystem | ClusterTopics> = Layer.scoped(ActorMail, make)
