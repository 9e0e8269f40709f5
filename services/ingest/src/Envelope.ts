/**
 * The envelope: what a service publishes on its bus for Weft to deliver, as
 * one JSON object (UTF-8) in the message body. Documented with examples in
 * `docs/ingest.md`.
 *
 * ```json
 * { "to": { "users": ["42"] }, "kind": "order.completed", "data": { "orderId": 7 },
 *   "idempotencyKey": "order-7-completed", "ttlMs": 3600000 }
 * ```
 *
 * Everything but `data` may be left out: `to`, `kind` and `sender` then come
 * from the mapping rule of the message's subject (`Rules`). A body that is not
 * such an object (not JSON, not UTF-8, an unknown field, a wrong type) is a
 * bad envelope: it goes to the dead-letter path with the reason.
 */
import { DeliverAt, IdempotencyKey, RoomId, UserId } from "@weft/api"
import { Either, Schema } from "effect"
import { describe } from "./internal/parseError.ts"

/** Who gets it: some users (every device of each), everyone in a room, or every connected client. */
export const Target = Schema.Union(
  Schema.Struct({ users: Schema.Array(UserId).pipe(Schema.minItems(1), Schema.maxItems(1000)) }),
  Schema.Struct({ room: RoomId }),
  Schema.Struct({ broadcast: Schema.Literal(true) })
)
export type Target = typeof Target.Type

/** The application's category of a notification, e.g. `order.completed` (as the service API's `kind`). */
export const Kind = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100))

/** A service name shown to devices as the notification's `from`. */
export const Sender = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100))

export const Envelope = Schema.Struct({
  /** Who gets it; default: the rule's target. */
  to: Schema.optional(Target),
  /** Default: the rule's `kind`, else the message's subject (routing key). */
  kind: Schema.optional(Kind),
  /** Any JSON value the app renders; default `null`. */
  data: Schema.optionalWith(Schema.Unknown, { default: () => null }),
  /** Deduplicates redeliveries and repeated publishes within the dedupe window; default: the bus's message id. */
  idempotencyKey: Schema.optional(IdempotencyKey),
  /** Users only: deliver at a UTC instant or a wall-clock time in the user's time zone (as the service API's). */
  deliverAt: Schema.optional(DeliverAt),
  /** Users only: hold it during the user's quiet hours. Default false. */
  respectQuietHours: Schema.optional(Schema.Boolean),
  /** Not delivered when older than this when Weft takes it from the bus (measured from `at`, else the bus's publish time). */
  ttlMs: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  /** When the event happened (UTC ms): the base of `ttlMs`. Default: the bus's publish time. */
  at: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative())),
  /** Shown to devices as `from`; default the rule's `sender`, else the source's name (`nats`, `amqp`, `redis`). */
  sender: Schema.optional(Sender)
})
export type Envelope = typeof Envelope.Type

/** The largest body read as an envelope; bigger ones are dead-lettered. */
export const maxBytes = 1024 * 1024

const utf8 = new TextDecoder("utf-8", { fatal: true })
const decodeJson = Schema.decodeUnknownEither(Schema.parseJson(Envelope), { onExcessProperty: "error", errors: "all" })

/** Reads an envelope from a message body; `Left` says why it is not one. */
export const decode = (body: Uint8Array): Either.Either<Envelope, string> => {
  if (body.byteLength === 0) return Either.left("the body is empty")
  if (body.byteLength > maxBytes) return Either.left(`the body has ${body.byteLength} bytes; at most ${maxBytes}`)
  let text: string
  try {
    text = utf8.decode(body)
  } catch {
    return Either.left("the body is not UTF-8")
  }
  return Either.mapLeft(decodeJson(text), describe)
}
