/**
 * What happens to one event taken from a bus, whichever bus: read the
 * envelope, find the subject's rule, drop it if expired, then run it through
 * the dedupe store and the notification delivery path (`DeliveryPath`, the
 * same as the service API's `notify.*`: offline inbox, local times and quiet
 * hours). The answer says what the source must do with the message: ack it,
 * give it back to the bus for a later try, or dead-letter it with the reason.
 *
 * Never fails: every problem is an `Outcome`.
 */
import type { ApiError, DeliverAt } from "@weft/api"
import { Idempotency } from "@weft/api/server"
import { DeliveryPath } from "@weft/notification"
import { Clock, Context, Data, Effect, Either, Layer, Option, Schema } from "effect"
import { Dedupe } from "./Dedupe.ts"
import * as Envelope from "./Envelope.ts"
import type { DeadLetterReason, SourceName } from "./IngestMetrics.ts"
import * as Rules from "./Rules.ts"

/** One message from a bus, as the pipeline sees it. */
export interface BusEvent {
  readonly source: SourceName
  /** The NATS subject, the AMQP routing key, the `subject` field of a stream entry. */
  readonly subject: string
  readonly body: Uint8Array
  /** The bus's id of this message, the same on every redelivery (`<stream>:<seq>`, AMQP `message-id`, stream entry id). */
  readonly busId: string | undefined
  /** When the bus took it (UTC ms), if it says. */
  readonly publishedAt: number | undefined
  /** How many times the bus has handed it out, this one included (at least 1; 2 when the bus only says "again"). */
  readonly deliveries: number
}

export type Outcome = Data.TaggedEnum<{
  /** The delivery path accepted it (`duplicate`: it had already, under the same key): ack. */
  Delivered: { readonly duplicate: boolean }
  /** Older than its `ttlMs`: ack without delivering. */
  Expired: {}
  /** Can never be delivered: to the dead-letter path. */
  DeadLetter: { readonly reason: DeadLetterReason; readonly message: string }
  /** Not now (the delivery path is unavailable): back to the bus for a later try. */
  Retry: { readonly message: string }
}>
export const Outcome = Data.taggedEnum<Outcome>()

export interface PipelineService {
  readonly handle: (event: BusEvent) => Effect.Effect<Outcome>
}

export class Pipeline extends Context.Tag("@weft/ingest/Pipeline")<Pipeline, PipelineService>() {}

/** The caller under which events' keys are deduplicated: one namespace for every source. */
export const dedupeCaller = "ingest"

/** What the dedupe store keeps for a delivered event: enough to tell a repeat. */
const Done = Schema.Struct({ recipients: Schema.Number })

const deadLetter = (reason: DeadLetterReason, message: string): Outcome => Outcome.DeadLetter({ reason, message })

/** An `ApiError` is final (`invalid`, `not_found`, `forbidden`: the same event would be refused again) or not. */
const fromApiError = (error: ApiError): Outcome =>
  error.reason === "unavailable" || error.reason === "unauthorized"
    ? Outcome.Retry({ message: error.message })
    : deadLetter("refused", `${error.reason}: ${error.message}`)

interface Plan {
  readonly target: Envelope.Target
  readonly kind: string
  readonly sender: string
  readonly envelope: Envelope.Envelope
}

/** Envelope and rule together: what to deliver to whom, or why it cannot be. */
export const plan = (rules: Rules.Rules, event: BusEvent): Either.Either<Plan, Outcome> =>
  Either.gen(function*() {
    const envelope = yield* Either.mapLeft(Envelope.decode(event.body), (problem) => deadLetter("envelope", problem))
    const route = yield* Either.fromOption(
      Rules.route(rules, event.subject),
      () => deadLetter("route", `no rule matches the subject ${JSON.stringify(event.subject)}`)
    )
    const target = envelope.to !== undefined
      ? envelope.to
      : yield* Option.match(Rules.targetOf(route), {
        onNone: () => Either.left(deadLetter("route", `neither the envelope nor the rule ${JSON.stringify(route.rule.match)} names a target`)),
        onSome: (target) => Either.mapLeft(target, (problem) => deadLetter("route", problem))
      })
    const kind = envelope.kind ?? (yield* Either.mapLeft(Rules.kindOf(route, event.subject), (problem) => deadLetter("route", problem)))
    if (!("users" in target) && (envelope.deliverAt !== undefined || envelope.respectQuietHours === true)) {
      return yield* Either.left(deadLetter("envelope", "deliverAt and respectQuietHours apply to users only, not to a room or a broadcast"))
    }
    if (envelope.ttlMs !== undefined && envelope.at === undefined && event.publishedAt === undefined) {
      return yield* Either.left(deadLetter("envelope", "ttlMs needs a time to count from: set `at`, or publish with a timestamp"))
    }
    return { target, kind, sender: envelope.sender ?? route.rule.sender ?? event.source, envelope }
  })

/** The dedupe key of an event: its own key, else the bus's message id; none when the bus has no id. */
export const dedupeKey = (event: BusEvent, envelope: Envelope.Envelope): string | undefined =>
  envelope.idempotencyKey ?? (event.busId === undefined ? undefined : `${event.source}:${event.busId}`)

export const make = (rules: Rules.Rules) =>
  Effect.gen(function*() {
    const delivery = yield* DeliveryPath.DeliveryPath
    const dedupe = yield* Dedupe

    const deliver = (plan: Plan, id: string): Effect.Effect<typeof Done.Type, ApiError> => {
      const { envelope, kind, sender, target } = plan
      const notification = {
        kind,
        data: envelope.data,
        ...(envelope.respectQuietHours === undefined ? {} : { respectQuietHours: envelope.respectQuietHours })
      }
      const deliverAt: DeliverAt | undefined = envelope.deliverAt
      if ("users" in target) {
        return Effect.map(delivery.toUsers(target.users, id, sender, notification, deliverAt), (sent) => ({ recipients: sent.length }))
      }
      if ("room" in target) return Effect.as(delivery.toRoom(target.room, sender, notification), { recipients: 1 })
      return Effect.as(delivery.broadcast(sender, notification), { recipients: 1 })
    }

    const handle = (event: BusEvent): Effect.Effect<Outcome> =>
      Either.match(plan(rules, event), {
        onLeft: Effect.succeed,
        onRight: (planned) =>
          Effect.gen(function*() {
            const { envelope } = planned
            const now = yield* Clock.currentTimeMillis
            const born = envelope.at ?? event.publishedAt
            if (envelope.ttlMs !== undefined && born !== undefined && now - born > envelope.ttlMs) return Outcome.Expired()
            const key = dedupeKey(event, envelope)
            if (key === undefined) {
              return yield* Effect.as(deliver(planned, `n-${crypto.randomUUID()}`), Outcome.Delivered({ duplicate: false }))
            }
            // The notification id comes from the key: a copy that slips past the dedupe store (its
            // first delivery failed half-way through a batch) is still dropped by each user's inbox.
            const slot = yield* Idempotency.slotId(dedupeCaller, key)
            const done = yield* dedupe.once(dedupeCaller, key, Done, deliver(planned, `i-${slot.slice(0, 32)}`))
            return Outcome.Delivered({ duplicate: done.duplicate })
          }).pipe(Effect.catchAll((error) => Effect.succeed(fromApiError(error))))
      })

    return Pipeline.of({ handle })
  })

export const layer = (rules: Rules.Rules): Layer.Layer<Pipeline, never, DeliveryPath.DeliveryPath | Dedupe> =>
  Layer.effect(Pipeline, make(rules))
