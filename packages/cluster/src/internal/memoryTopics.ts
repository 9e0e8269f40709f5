/**
 * The in-memory twin of the Redis adapter. A `MemoryBus` plays Redis; each ClusterTopics
 * built on it is one node. It keeps the Redis adapter's observable behaviour, including the
 * parts that are easy to forget: delivery to other nodes happens after `publish` returns,
 * and a node only hears a topic while it has a subscriber to it.
 */
import { Effect } from "effect"
import type { ClusterTopicsService } from "../ClusterTopics.ts"
import { type LocalTopics, makeLoggedLocalTopics, type Subscriber } from "./localTopics.ts"

interface MemoryNode {
  readonly local: LocalTopics
  readonly receive: (topic: string, payload: Uint8Array) => void
}

/** What Redis is to the Redis adapter: the nodes of one cluster, in one process. */
export class MemoryBus {
  readonly #nodes = new Set<MemoryNode>()

  /** Nodes with at least one subscriber to `topic`: the twin of `PUBSUB NUMSUB` on its channel. */
  subscribedNodes(topic: string): number {
    let count = 0
    for (const node of this.#nodes) if (node.local.has(topic)) count++
    return count
  }

  /** For `makeMemory`: the node hears the bus until `leave`. */
  join(node: MemoryNode): void {
    this.#nodes.add(node)
  }

  leave(node: MemoryNode): void {
    this.#nodes.delete(node)
  }

  /** For `makeMemory`: hands a publish to every other node that subscribes to the topic now. */
  forward(from: MemoryNode, topic: string, payload: Uint8Array): void {
    for (const node of this.#nodes) {
      if (node !== from && node.local.has(topic)) node.receive(topic, payload)
    }
  }
}

export const makeMemoryBus = (): MemoryBus => new MemoryBus()

export const makeMemory = (bus: MemoryBus) =>
  Effect.gen(function*() {
    const local = yield* makeLoggedLocalTopics
    const node = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const node: MemoryNode = { local, receive: makeInbox(local) }
        bus.join(node)
        return node
      }),
      (node) => Effect.sync(() => bus.leave(node))
    )

    const service: ClusterTopicsService = {
      publish: (topic, payload) =>
        Effect.sync(() => {
          local.dispatch(topic, payload)
          bus.forward(node, topic, payload)
        }),
      publishAll: (messages) =>
        Effect.sync(() => {
          for (const { payload, topic } of messages) {
            local.dispatch(topic, payload)
            bus.forward(node, topic, payload)
          }
        }),
      subscribe: (topic, onMessage) =>
        Effect.asVoid(
          Effect.acquireRelease(
            Effect.sync(() => {
              const subscriber: Subscriber = { topic, handler: onMessage }
              local.add(subscriber)
              return subscriber
            }),
            (subscriber) => Effect.sync(() => local.remove(subscriber))
          )
        ),
      stats: Effect.sync(() => local.stats())
    }
    return service
  })

/**
 * A node's incoming queue: one FIFO per node keeps every publisher's order, and draining it
 * in a microtask makes remote delivery asynchronous, as it is over Redis, so code that
 * wrongly counts on a remote handler having run when `publish` returns fails here too.
 */
const makeInbox = (local: LocalTopics) => {
  const inbox: Array<readonly [topic: string, payload: Uint8Array]> = []
  let scheduled = false
  const drain = () => {
    // Index loop: a handler may cause more messages to arrive while we drain, and they belong
    // after the ones already queued.
    try {
      for (let i = 0; i < inbox.length; i++) {
        const [topic, payload] = inbox[i]
        local.dispatch(topic, payload)
      }
    } finally {
      inbox.length = 0
      scheduled = false
    }
  }
  return (topic: string, payload: Uint8Array): void => {
    inbox.push([topic, payload])
    if (!scheduled) {
      scheduled = true
      queueMicrotask(drain)
    }
  }
}
