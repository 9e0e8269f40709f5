/**
 * Kept apart from ClusterTopics.ts so the adapters under internal/ can fail with it
 * without importing the module that imports them.
 */
import { Data } from "effect"

/**
 * The cross-node leg of a publish or subscribe did not happen, or was not confirmed.
 * Pub/sub is at-most-once: see ClusterTopics.ts for what was and was not delivered.
 */
export class TopicError extends Data.TaggedError("TopicError")<{
  readonly topic: string
  readonly message: string
  readonly cause?: unknown
}> {}
