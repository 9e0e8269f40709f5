/**
 * Notifications held for later (a local delivery time, quiet hours): stored
 * in the durable `Scheduler` as an item due at the UTC instant, then handed to
 * the user entity by whichever notification node claims it when due.
 *
 * The item id is `<notification id>/<user>`, and the notification keeps its
 * id when delivered: a redelivery (the claiming node died after delivering,
 * before its ack) is dropped by the user's inbox, so the user sees it once.
 */
import { Entities } from "@weft/cluster"
import { Effect, Either, Encoding, Layer, Schema } from "effect"
import { Packr, Unpackr } from "msgpackr"
import { Scheduler, type SchedulerError, type SchedulerService } from "./Scheduler.ts"
import { User } from "./User.ts"

/** What is delivered when due: the arguments of the user's `Notify`. */
export const Pending = Schema.Struct({
  user: Schema.String,
  id: Schema.String,
  type: Schema.String,
  data: Schema.Unknown,
  sender: Schema.String
})
export type Pending = typeof Pending.Type

// msgpack rather than JSON: `data` came over msgpack and may hold bytes, which JSON would lose.
// Plain msgpack, the same options as the client protocol's codec.
const packr = new Packr({ useRecords: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" })
const decodePending = Schema.decodeUnknownEither(Pending)

export const itemId = (pending: Pending): string => `${pending.id}/${pending.user}`

export const encode = (pending: Pending): string => Encoding.encodeBase64(packr.pack(pending))

export const decode = (payload: string): Either.Either<Pending, string> =>
  Either.flatMap(
    Either.mapLeft(Encoding.decodeBase64(payload), (error) => `not base64: ${error.message ?? ""}`),
    (bytes) => {
      try {
        return Either.mapLeft(decodePending(unpackr.unpack(bytes)), (error) => error.message)
      } catch (error) {
        return Either.left(String(error))
      }
    }
  )

/** Stores `pending` until `due`; false when it was already scheduled (a retried call). */
export const schedule = (scheduler: SchedulerService, pending: Pending, due: number): Effect.Effect<boolean, SchedulerError> =>
  scheduler.schedule({ id: itemId(pending), due, payload: encode(pending) })

/** How long one delivery may take before the claim counts as failed and is retried. */
const deliverTimeout = "10 seconds"

/**
 * Delivers due items on this node until its scope closes. Run by every node with the
 * notification role; the scheduler gives each item to one of them at a time.
 */
export const runner = Layer.scopedDiscard(
  Effect.gen(function*() {
    const scheduler = yield* Scheduler
    const users = yield* User.client
    const deliver = (payload: string) =>
      Either.match(decode(payload), {
        // Nothing can ever deliver it: say so and let it be acked rather than retried forever.
        onLeft: (reason) => Effect.logError(`scheduled notification dropped, unreadable: ${reason}`),
        onRight: (pending) =>
          users(pending.user).Notify({ id: pending.id, type: pending.type, data: pending.data, sender: pending.sender }).pipe(
            Entities.withTimeout(`user/${pending.user}`, deliverTimeout),
            Effect.tapError((error) => Effect.logWarning(`scheduled notification ${itemId(pending)} not delivered yet: ${error._tag}`))
          )
      })
    yield* Effect.forkScoped(scheduler.run((item) => deliver(item.payload)))
  })
)
