/**
 * Typed errors of the actor runtime. They are Schema classes so that they can
 * be encoded and cross node boundaries unchanged.
 */
import { Schema } from "effect"

/** A message failed its kind's Schema: it never reached the handler. */
export class InvalidMessage extends Schema.TaggedError<InvalidMessage>()("InvalidMessage", {
  address: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid message for ${this.address}: ${this.detail}`
  }
}

/** The receiver's mailbox is full and its policy refused (or dropped) the message. */
export class MailboxFull extends Schema.TaggedError<MailboxFull>()("MailboxFull", {
  address: Schema.String,
  capacity: Schema.Number
}) {
  override get message(): string {
    return `mailbox of ${this.address} is full (capacity ${this.capacity})`
  }
}

/** No live actor at the address and its kind does not activate on demand (or is unknown). */
export class ActorNotFound extends Schema.TaggedError<ActorNotFound>()("ActorNotFound", {
  address: Schema.String
}) {
  override get message(): string {
    return `no actor at ${this.address}`
  }
}

/** An actor with this address is already running. */
export class ActorAlreadyExists extends Schema.TaggedError<ActorAlreadyExists>()("ActorAlreadyExists", {
  address: Schema.String
}) {
  override get message(): string {
    return `an actor is already running at ${this.address}`
  }
}

/** The actor stopped before it handled the message. */
export class ActorStopped extends Schema.TaggedError<ActorStopped>()("ActorStopped", {
  address: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.address} stopped (${this.reason}) before handling the message`
  }
}

/** The handler died (a defect) while handling the asked message; the actor is being supervised. */
export class ActorCrashed extends Schema.TaggedError<ActorCrashed>()("ActorCrashed", {
  address: Schema.String,
  defect: Schema.String
}) {
  override get message(): string {
    return `${this.address} crashed while handling the message: ${this.defect}`
  }
}

/** No reply within the ask timeout. The message may still be handled later. */
export class AskTimeout extends Schema.TaggedError<AskTimeout>()("AskTimeout", {
  address: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `no reply from ${this.address} within ${this.timeoutMillis} ms`
  }
}

/** The actor system is shutting down and accepts no new activations. */
export class SystemStopping extends Schema.TaggedError<SystemStopping>()("SystemStopping", {}) {
  override get message(): string {
    return "the actor system is shutting down"
  }
}

/** What `tell` can fail with. */
export type TellError = InvalidMessage | MailboxFull | ActorNotFound | SystemStopping

/** What `ask` can fail with, beside the message's own declared failure. */
export type AskError = TellError | ActorStopped | ActorCrashed | AskTimeout

/** Every runtime error, as one Schema (for wire protocols and RPC error channels). */
export const ActorError = Schema.Union(
  InvalidMessage,
  MailboxFull,
  ActorNotFound,
  ActorAlreadyExists,
  ActorStopped,
  ActorCrashed,
  AskTimeout,
  SystemStopping
)
