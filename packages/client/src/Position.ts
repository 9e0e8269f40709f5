/**
 * Positions in a channel's history, and the rule that keeps a message from
 * reaching the app twice: within one epoch offsets only grow, so a message at
 * or before the last delivered offset of its channel's epoch was delivered
 * already. A message in another epoch starts the count again (the history was
 * reset: older positions mean nothing there). A message without a position is
 * always delivered.
 */

/** Where a message sits in a channel's history (docs/protocol.md, section 4). */
export interface Position {
  /** The history's generation; offsets start again when it changes. */
  readonly epoch: string
  /** The message's offset within the epoch, 0 or more. */
  readonly offset: number
}

/** Whether a message at `position` is new after `last` (the last position delivered on its channel). */
export const isAfter = (position: Position | undefined, last: Position | undefined): boolean =>
  position === undefined || last === undefined || position.epoch !== last.epoch || position.offset > last.offset
