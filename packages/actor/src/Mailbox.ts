/**
 * Mailbox settings of an actor kind. Every mailbox is bounded; the overflow
 * policy decides what a full mailbox does with one more message.
 */

/**
 * - `reject`: the sender gets a typed `MailboxFull` error (back-pressure by refusal).
 * - `dropOldest`: the oldest queued message that `droppable` accepts is dropped
 *   (sent to dead letters) to make room; asks are never dropped. With nothing
 *   droppable the new message is refused with `MailboxFull`.
 * - `stop`: the actor is stopped with reason `MailboxOverflow` and the sender
 *   gets `MailboxFull` (for connections: disconnect the slow consumer).
 */
export type OverflowPolicy = "reject" | "dropOldest" | "stop"

export interface MailboxConfig<Msg> {
  readonly capacity: number
  readonly overflow: OverflowPolicy
  /** For `dropOldest`: which queued messages may be dropped. Default: every told message. */
  readonly droppable?: (message: Msg) => boolean
}

/** The default mailbox holds 1,024 messages and rejects when full. */
export const defaultCapacity = 1024
