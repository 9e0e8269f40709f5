/**
 * A delivery path in memory for the pipeline's and the consumer loop's tests:
 * it records each delivery, drops a repeated notification id per user as the
 * user's inbox does, and can be told to refuse or to hold every call.
 */
import { ApiError, type Delivery } from "@weft/api"
import { DeliveryPath } from "@weft/notification"
import { Effect, Layer } from "effect"
import * as Dedupe from "../src/Dedupe.ts"
import * as Pipeline from "../src/Pipeline.ts"
import * as Rules from "../src/Rules.ts"

export interface Sent {
  readonly to: string
  readonly id: string
  readonly kind: string
  readonly sender: string
  readonly data: unknown
  readonly deliverAt?: unknown
  readonly respectQuietHours?: boolean
}

export interface FakeDelivery {
  readonly layer: Layer.Layer<DeliveryPath.DeliveryPath>
  /** Every notification that reached a user, room or everyone (repeats per user dropped). */
  readonly sent: Array<Sent>
  /** Calls made, repeats included. */
  readonly calls: () => number
  /** The next calls fail with this error (until `refuse(undefined)`). */
  readonly refuse: (error: ApiError | undefined) => void
  /** Calls wait on this effect before they run (until `hold(undefined)`). */
  readonly hold: (gate: Effect.Effect<void> | undefined) => void
  /** Calls to users wait on this effect after the user got it, before they answer: a consumer that dies there has delivered but not acked. */
  readonly holdAfter: (gate: Effect.Effect<void> | undefined) => void
}

export const makeDelivery = (): FakeDelivery => {
  const sent: Array<Sent> = []
  const seen = new Set<string>()
  let calls = 0
  let refusal: ApiError | undefined
  let gate: Effect.Effect<void> | undefined
  let gateAfter: Effect.Effect<void> | undefined
  const enter = Effect.suspend(() => {
    calls++
    return Effect.zipRight(gate ?? Effect.void, refusal === undefined ? Effect.void : Effect.fail(refusal))
  })
  const toUser: DeliveryPath.DeliveryPathService["toUser"] = (user, id, sender, notification, deliverAt) =>
    Effect.zipRight(
      enter,
      Effect.sync((): Delivery => {
        const duplicate = seen.has(`${user}/${id}`)
        if (!duplicate) {
          seen.add(`${user}/${id}`)
          sent.push({
            to: `user:${user}`,
            id,
            kind: notification.kind,
            sender,
            data: notification.data,
            ...(deliverAt === undefined ? {} : { deliverAt }),
            ...(notification.respectQuietHours === undefined ? {} : { respectQuietHours: notification.respectQuietHours })
          })
        }
        return { status: "delivered", notificationId: id, devices: 1, duplicate }
      })
    ).pipe(Effect.tap(() => gateAfter ?? Effect.void))
  const service: DeliveryPath.DeliveryPathService = {
    toUser,
    toUsers: (users, id, sender, notification, deliverAt) =>
      Effect.forEach(Array.from(new Set(users)), (userId) =>
        Effect.map(toUser(userId, id, sender, notification, deliverAt), (delivery) => ({ userId, delivery }))),
    toRoom: (room, sender, notification) =>
      Effect.zipRight(enter, Effect.sync(() => void sent.push({ to: `room:${room}`, id: "", kind: notification.kind, sender, data: notification.data }))),
    broadcast: (sender, notification) =>
      Effect.zipRight(enter, Effect.sync(() => void sent.push({ to: "broadcast", id: "", kind: notification.kind, sender, data: notification.data })))
  }
  return {
    layer: Layer.succeed(DeliveryPath.DeliveryPath, service),
    sent,
    calls: () => calls,
    refuse: (error) => void (refusal = error),
    hold: (next) => void (gate = next),
    holdAfter: (next) => void (gateAfter = next)
  }
}

export const unavailable = new ApiError({ reason: "unavailable", message: "the user entity did not answer" })

/** The pipeline over `delivery`, with rules and a dedupe store in memory. */
export const pipelineLayer = (delivery: FakeDelivery, rules: ReadonlyArray<Rules.Rule> = [], holdMs = 1000) =>
  Pipeline.layer(Effect.runSync(Rules.make(rules))).pipe(
    Layer.provide(delivery.layer),
    Layer.provide(Dedupe.layerMemory({ cluster: "test", windowMs: 60_000, holdMs, maxWaitMs: 50 }))
  )
