/**
 * One node's own subscribers, by topic: the part of ClusterTopics that both
 * adapters share, so the memory twin and the Redis adapter cannot drift apart
 * on reference counting or on how a message reaches local handlers.
 */
import { Cause, Effect, Runtime } from "effect"

export type Handler = (payload: Uint8Array) => void

/** One `subscribe` call. Identity matters: the same function subscribed twice is two subscribers. */
export interface Subscriber {
  readonly topic: string
  readonly handler: Handler
}

export interface LocalTopics {
  /** Returns true when `subscriber` is the topic's first on this node (the node must now subscribe). */
  readonly add: (subscriber: Subscriber) => boolean
  /** Returns true when it removed the topic's last subscriber (the node may unsubscribe); false if absent. */
  readonly remove: (subscriber: Subscriber) => boolean
  readonly has: (topic: string) => boolean
  readonly topics: () => ReadonlyArray<string>
  /** Calls every handler of `topic` with the same `payload`; a throwing handler is reported, not fatal. */
  readonly dispatch: (topic: string, payload: Uint8Array) => void
  readonly stats: () => { readonly topics: number; readonly subscribers: number }
}

export const makeLocalTopics = (onHandlerError: (topic: string, error: unknown) => void): LocalTopics => {
  // Copy-on-write arrays: subscribe and unsubscribe are rare next to dispatch, and a dispatch
  // must not see a list that a handler changes under it (a handler may subscribe or close a scope).
  const byTopic = new Map<string, ReadonlyArray<Subscriber>>()
  let subscribers = 0

  return {
    add: (subscriber) => {
      const current = byTopic.get(subscriber.topic)
      byTopic.set(subscriber.topic, current === undefined ? [subscriber] : [...current, subscriber])
      subscribers++
      return current === undefined
    },
    remove: (subscriber) => {
      const current = byTopic.get(subscriber.topic)
      if (current === undefined || !current.includes(subscriber)) return false
      subscribers--
      if (current.length === 1) {
        byTopic.delete(subscriber.topic)
        return true
      }
      byTopic.set(subscriber.topic, current.filter((s) => s !== subscriber))
      return false
    },
    has: (topic) => byTopic.has(topic),
    topics: () => Array.from(byTopic.keys()),
    dispatch: (topic, payload) => {
      const current = byTopic.get(topic)
      if (current === undefined) return
      for (const subscriber of current) {
        try {
          subscriber.handler(payload)
        } catch (error) {
          onHandlerError(topic, error)
        }
      }
    },
    stats: () => ({ topics: byTopic.size, subscribers })
  }
}

/**
 * `makeLocalTopics` that logs a throwing handler through the caller's runtime (its logger and
 * annotations), since handlers run outside any fiber: inside a publish or on a Redis socket event.
 */
export const makeLoggedLocalTopics: Effect.Effect<LocalTopics> = Effect.map(Effect.runtime<never>(), (runtime) => {
  const runSync = Runtime.runSync(runtime)
  return makeLocalTopics((topic, error) =>
    runSync(
      Effect.logError("a topic subscriber threw; the others still got the message", Cause.die(error)).pipe(
        Effect.annotateLogs("topic", topic)
      )
    )
  )
})
