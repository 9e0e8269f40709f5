/**
 * ClusterTopics over Redis pub/sub. One node = one ClusterTopics = one command connection
 * (PUBLISH, shared with the rest of the node) + one subscriber connection of its own.
 *
 * Invariant that makes the reference counting and the ordering hold: every change to the
 * node's local state and the Redis command that mirrors it (SUBSCRIBE, UNSUBSCRIBE, PUBLISH)
 * happen in one synchronous step. ioredis writes commands in call order and Redis runs one
 * connection's commands in order, so the last command Redis sees for a channel always
 * matches the node's current state, with no lock and no queue of our own.
 */
import { Buffer } from "node:buffer"
import { Effect, Exit, Runtime } from "effect"
import type { Scope } from "effect"
import type { ClusterTopicsService, TopicMessage } from "../ClusterTopics.ts"
import { keyPrefix, Redis, validateClusterName } from "../Redis.ts"
import * as Envelope from "./envelope.ts"
import { type Handler, makeLoggedLocalTopics, type Subscriber } from "./localTopics.ts"
import { TopicError } from "./topicError.ts"

export interface RedisTopicsOptions {
  /** Namespaces the channels, `weft:{<cluster>}:topic:<topic>`, so clusters sharing a Redis never hear each other. */
  readonly cluster: string
}

/** This node's Redis subscription to one topic; exists exactly while the topic has local subscribers. */
interface RemoteState {
  /** Redis confirmed the SUBSCRIBE once; ioredis and our "ready" handler restore it after reconnects. */
  confirmed: boolean
  /** The SUBSCRIBE in flight, shared by every local subscriber waiting for it; never rejects. */
  pending: Promise<TopicError | undefined> | undefined
}

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

export const make = (options: RedisTopicsOptions): Effect.Effect<ClusterTopicsService, never, Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const cluster = yield* Effect.try({
      try: () => validateClusterName(options.cluster),
      catch: () => new Error(`invalid cluster name ${JSON.stringify(options.cluster)}: use 1-64 of [A-Za-z0-9._-]`)
    }).pipe(Effect.orDie)
    const redis = yield* Redis
    const prefix = `${keyPrefix(cluster)}topic:`
    const prefixBytes = Buffer.byteLength(prefix)
    const channelOf = (topic: string): string => prefix + topic
    const origin = Envelope.makeOrigin()
    const local = yield* makeLoggedLocalTopics
    const remote = new Map<string, RemoteState>()
    const connection = yield* redis.subscriber

    // Socket events run outside any fiber; log through the runtime that built the layer.
    const runSync = Runtime.runSync(yield* Effect.runtime<never>())
    const log = (effect: Effect.Effect<void>, annotations: Record<string, string>) =>
      runSync(effect.pipe(Effect.annotateLogs({ ...annotations, cluster })))

    const sendSubscribe = (topic: string, state: RemoteState): Promise<TopicError | undefined> => {
      const pending: Promise<TopicError | undefined> = connection.subscribe(channelOf(topic)).then(
        () => {
          state.confirmed = true
          if (state.pending === pending) state.pending = undefined
          return undefined
        },
        (cause: unknown) => {
          if (state.pending === pending) state.pending = undefined
          return new TopicError({ topic, message: `could not subscribe in redis: ${messageOf(cause)}`, cause })
        }
      )
      state.pending = pending
      return pending
    }

    const sendUnsubscribe = (topic: string): Promise<unknown> =>
      connection.unsubscribe(channelOf(topic)).then(() => undefined, (cause: unknown) => cause)

    const attach = (topic: string, handler: Handler): Subscriber => {
      const subscriber: Subscriber = { topic, handler }
      if (local.add(subscriber)) {
        const state: RemoteState = { confirmed: false, pending: undefined }
        remote.set(topic, state)
        void sendSubscribe(topic, state)
      }
      return subscriber
    }

    const detach = (subscriber: Subscriber): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (!local.remove(subscriber)) return Effect.void
        remote.delete(subscriber.topic)
        const unsubscribed = sendUnsubscribe(subscriber.topic)
        return Effect.promise(() => unsubscribed).pipe(
          Effect.flatMap((cause) =>
            cause === undefined
              ? Effect.void
              // Harmless: if ioredis restores the channel on reconnect, its first stray message unsubscribes it.
              : Effect.logDebug("UNSUBSCRIBE failed; the channel is dropped when it next delivers").pipe(
                Effect.annotateLogs({ topic: subscriber.topic, cluster, error: messageOf(cause) })
              )
          )
        )
      })

    // A local subscriber is live once Redis confirmed the node's SUBSCRIBE: from then on it
    // hears every publish that Redis runs, from any node.
    const awaitRemote = (topic: string): Effect.Effect<void, TopicError> =>
      Effect.suspend(() => {
        const state = remote.get(topic)
        if (state === undefined || state.confirmed) return Effect.void
        // A failed SUBSCRIBE leaves no promise behind, so a later subscriber tries again.
        const pending = state.pending ?? sendSubscribe(topic, state)
        return Effect.flatMap(Effect.promise(() => pending), (error) => error === undefined ? Effect.void : Effect.fail(error))
      })

    // Unsubscribes channels nobody here wants any more but Redis still sends: a SUBSCRIBE
    // whose caller gave up, or an UNSUBSCRIBE lost to a disconnect and undone by ioredis's
    // automatic resubscribe.
    const unsubscribingStrays = new Set<string>()
    const dropStray = (topic: string) => {
      if (unsubscribingStrays.has(topic)) return
      unsubscribingStrays.add(topic)
      void sendUnsubscribe(topic).then(() => unsubscribingStrays.delete(topic))
    }

    connection.on("messageBuffer", (channel: Buffer, frame: Buffer) => {
      const topic = channel.toString("utf8", prefixBytes)
      if (!local.has(topic)) {
        dropStray(topic)
        return
      }
      const payload = Envelope.decode(origin, frame)
      if (payload === "malformed") {
        log(Effect.logWarning("dropped a message that is not a weft topic frame"), { topic })
      } else if (payload !== "own") {
        local.dispatch(topic, payload)
      }
    })

    // ioredis resubscribes on reconnect from its own record of confirmed channels, but loses
    // that record if the connection drops again before the resubscribe is confirmed. SUBSCRIBE
    // is idempotent, so the node also restores everything it wants each time it is ready.
    connection.on("ready", () => {
      const topics = local.topics()
      if (topics.length === 0) return
      const states = topics.map((topic) => remote.get(topic))
      connection.subscribe(...topics.map(channelOf)).then(
        () => {
          for (const state of states) if (state !== undefined) state.confirmed = true
        },
        (cause: unknown) =>
          log(Effect.logWarning("resubscribe after reconnect failed; retrying at the next reconnect"), {
            error: messageOf(cause)
          })
      )
    })

    const publishAll = (messages: ReadonlyArray<TopicMessage>) =>
      Effect.async<void, TopicError>((resume) => {
        const first = messages[0]
        if (first === undefined) return resume(Effect.void)
        // Not connected: fail before delivering anywhere, so "failed" means "nobody got it".
        if (!redis.isReady()) {
          resume(Effect.fail(new TopicError({ topic: first.topic, message: "redis is not connected; nothing was published" })))
          return
        }
        const confirmed = messages.map(({ payload, topic }) => {
          const sent = redis.client.publish(channelOf(topic), Envelope.encode(origin, payload)).then(
            () => undefined,
            (cause: unknown) =>
              new TopicError({
                topic,
                message: `publish to other nodes not confirmed (local subscribers got it): ${messageOf(cause)}`,
                cause
              })
          )
          // Same step as the PUBLISH write: local order and Redis order are the same order.
          local.dispatch(topic, payload)
          return sent
        })
        void Promise.all(confirmed).then((results) => {
          const error = results.find((result) => result !== undefined)
          resume(error === undefined ? Effect.void : Effect.fail(error))
        })
      })

    const service: ClusterTopicsService = {
      publish: (topic, payload) => publishAll([{ topic, payload }]),
      publishAll,
      subscribe: (topic, onMessage) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.acquireRelease(Effect.sync(() => attach(topic, onMessage)), detach).pipe(
            Effect.flatMap((subscriber) =>
              restore(awaitRemote(topic)).pipe(
                // Failed or interrupted: leave nothing behind now rather than when the caller's scope closes.
                Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : detach(subscriber))
              )
            )
          )
        ),
      stats: Effect.sync(() => local.stats())
    }
    return service
  })
