/**
 * Cluster-wide topics: the fan-out spine. A publish carries one encoded payload to every
 * node that has subscribers to the topic, once per node; each node hands that same bytes
 * object to its local subscribers (which call Bun's `ws.publish` or enqueue to actors).
 *
 * Semantics, the same for both adapters (one test suite runs against each):
 * - **Local delivery short-circuits.** Subscribers on the publisher's node are called inside
 *   `publish`, with the caller's own `Uint8Array`, before it returns. Other nodes get the
 *   message through the adapter, after `publish` returns. The Redis echo of a node's own
 *   publish is recognised by the node's id and dropped, so every subscriber gets a publish
 *   exactly once.
 * - **Order per publisher.** Every subscriber sees one node's publishes in the order that
 *   node made them (per topic, and across topics too). Locally, handlers run inside
 *   `publish`. Remotely, a node's PUBLISHes share one connection and each is written in the
 *   same synchronous step as its local delivery, so Redis runs them in the node's order and
 *   every subscriber connection receives them in that order.
 * - **No order between publishers**, not even cause and effect: a node's own publish reaches
 *   its local subscribers without the round trip, so it can overtake a message that another
 *   node published (and saw confirmed) earlier. A topic that needs one order for everyone
 *   needs one publisher, such as the room's actor.
 * - **Subscribe** returns once this node hears the topic from every node: Redis confirmed
 *   the node's SUBSCRIBE, made for the first local subscriber and shared by the others. A node
 *   holds one Redis subscription per topic however many local subscribers it has; the last
 *   one's scope closing unsubscribes. Joining a topic the node already holds needs no Redis.
 * - **Handlers** are synchronous and must be quick; one that throws is logged and the others
 *   still get the message. Payloads are shared by every subscriber and must not be mutated;
 *   over Redis they are views into a socket buffer, so copy one you keep for long.
 * - **At-most-once.** Redis pub/sub keeps nothing. While a node's subscriber connection is
 *   down it misses everything published meanwhile; ioredis reconnects and the node's
 *   subscriptions come back with no action from subscribers, hearing what is published from
 *   then on. `publish` fails with `TopicError` at once, having delivered nothing, while the node
 *   is not connected to Redis. If the connection breaks with a PUBLISH in flight, local
 *   subscribers already have the message and other nodes may or may not get it (ioredis
 *   resends unanswered commands after reconnecting, so rarely they get it twice). Anything
 *   that must not be lost (history) belongs in Redis streams, not here.
 */
import { Context, Layer } from "effect"
import type { Effect, Scope } from "effect"
import type { Redis } from "./Redis.ts"
import * as memory from "./internal/memoryTopics.ts"
import * as redisTopics from "./internal/redisTopics.ts"
import type { TopicError } from "./internal/topicError.ts"

export { TopicError } from "./internal/topicError.ts"
export { makeMemoryBus } from "./internal/memoryTopics.ts"
export type { MemoryBus } from "./internal/memoryTopics.ts"
export type { RedisTopicsOptions } from "./internal/redisTopics.ts"

export interface TopicStats {
  /** Topics with at least one subscriber on this node: its Redis subscriptions. */
  readonly topics: number
  /** Local subscribers over all topics. */
  readonly subscribers: number
}

/** A payload for a topic, as `publishAll` takes them. */
export interface TopicMessage {
  readonly topic: string
  readonly payload: Uint8Array
}

export interface ClusterTopicsService {
  /**
   * Delivers `payload` to every subscriber of `topic` on every node, this one included.
   * Encode once and pass the bytes; they are never copied per subscriber.
   */
  readonly publish: (topic: string, payload: Uint8Array) => Effect.Effect<void, TopicError>
  /**
   * `publish` of each message, in order, all written in one step (one round trip for a batch):
   * every subscriber sees them in this order, after what this node published before. Fails with
   * the first message not confirmed; local subscribers got every message.
   */
  readonly publishAll: (messages: ReadonlyArray<TopicMessage>) => Effect.Effect<void, TopicError>
  /**
   * Calls `onMessage` with each message published to `topic` until the scope closes.
   * Fails if this node could not subscribe in Redis, leaving nothing subscribed.
   */
  readonly subscribe: (
    topic: string,
    onMessage: (payload: Uint8Array) => void
  ) => Effect.Effect<void, TopicError, Scope.Scope>
  /** For metrics. */
  readonly stats: Effect.Effect<TopicStats>
}

export class ClusterTopics extends Context.Tag("@weft/cluster/ClusterTopics")<ClusterTopics, ClusterTopicsService>() {}

/** One node on `bus`. Never fails: the bus is always up. */
export const makeMemory: (bus: memory.MemoryBus) => Effect.Effect<ClusterTopicsService, never, Scope.Scope> =
  memory.makeMemory

/**
 * The in-memory adapter: a node with no Redis, or, given a shared `bus`, one of several
 * nodes in one process (for tests). Each layer built is a node of its own.
 */
export const layerMemory = (bus: memory.MemoryBus = memory.makeMemoryBus()): Layer.Layer<ClusterTopics> =>
  Layer.scoped(ClusterTopics, memory.makeMemory(bus))

/** One node over the `Redis` service: PUBLISH on its command connection, plus one subscriber connection. */
export const makeRedis: (
  options: redisTopics.RedisTopicsOptions
) => Effect.Effect<ClusterTopicsService, never, Redis | Scope.Scope> = redisTopics.make

export const layerRedis = (options: redisTopics.RedisTopicsOptions): Layer.Layer<ClusterTopics, never, Redis> =>
  Layer.scoped(ClusterTopics, redisTopics.make(options))
