/**
 * Actor addresses: an actor is named by its kind and a key within that kind
 * (`room/general`, `user/42`, `conn/node-a/7`). Holding an address is enough to
 * send; where the actor lives is the runtime's business.
 */
import { Schema } from "effect"

/** The address of an actor, as data that can cross process boundaries. */
export class ActorAddress extends Schema.Class<ActorAddress>("@weft/actor/ActorAddress")({
  kind: Schema.NonEmptyString,
  key: Schema.String
}) {
  override toString(): string {
    return format(this.kind, this.key)
  }
}

/** `kind/key`, the printable form used in logs, errors and metrics. */
export const format = (kind: string, key: string): string => `${kind}/${key}`
