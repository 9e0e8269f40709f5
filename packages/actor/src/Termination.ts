/**
 * Why an actor activation ended. Watchers receive it in a `Terminated` notice
 * and the `weft_actor_stops_total` metric counts it by `reason` label.
 */
import { Schema } from "effect"

/** Stopped on request (`ActorRef.stop`, `ActorContext.stop`). */
export class Stopped extends Schema.TaggedClass<Stopped>()("Stopped", {}) {}
/** Idle for its kind's passivation timeout; the next message re-activates it. */
export class Passivated extends Schema.TaggedClass<Passivated>()("Passivated", {}) {}
/** A crash with a strategy that does not restart (`stop` or `escalate`). */
export class Crashed extends Schema.TaggedClass<Crashed>()("Crashed", { defect: Schema.String }) {}
/** Crashed more often than its strategy allows within the window. */
export class RestartLimit extends Schema.TaggedClass<RestartLimit>()("RestartLimit", {
  restarts: Schema.Number,
  defect: Schema.String
}) {}
/** Its mailbox overflowed under the `stop` policy (used for slow consumers). */
export class MailboxOverflow extends Schema.TaggedClass<MailboxOverflow>()("MailboxOverflow", {
  capacity: Schema.Number
}) {}
/** Its parent stopped or restarted. */
export class ParentStopped extends Schema.TaggedClass<ParentStopped>()("ParentStopped", {}) {}
/** The actor system shut down. */
export class Shutdown extends Schema.TaggedClass<Shutdown>()("Shutdown", {}) {}
/** Given to a watcher whose target had no live activation when the watch began. */
export class NotRunning extends Schema.TaggedClass<NotRunning>()("NotRunning", {}) {}

export const TerminationReason = Schema.Union(
  Stopped,
  Passivated,
  Crashed,
  RestartLimit,
  MailboxOverflow,
  ParentStopped,
  Shutdown,
  NotRunning
)
export type TerminationReason = typeof TerminationReason.Type

/** The metric label of a reason, in kebab case. */
export const label = (reason: TerminationReason): string => {
  switch (reason._tag) {
    case "Stopped":
      return "stopped"
    case "Passivated":
      return "passivated"
    case "Crashed":
      return "crashed"
    case "RestartLimit":
      return "restart-limit"
    case "MailboxOverflow":
      return "mailbox-overflow"
    case "ParentStopped":
      return "parent-stopped"
    case "Shutdown":
      return "shutdown"
    case "NotRunning":
      return "not-running"
  }
}

/** The notice a watcher gets when the actor it watches terminates. */
export class Terminated extends Schema.TaggedClass<Terminated>()("Terminated", {
  address: Schema.String,
  reason: TerminationReason
}) {}
