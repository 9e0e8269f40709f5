import { Either, Encoding } from "effect"
import { Packr } from "msgpackr"
import { describe, expect, it } from "vitest"
import * as ScheduledDelivery from "../src/ScheduledDelivery.ts"

describe("ScheduledDelivery payloads", () => {
  const pending = {
    user: "alice",
    id: "k-71052da05820ecdf37d549e37fa84f83",
    type: "order.completed",
    data: { orderId: 7, receipt: new Uint8Array([0, 1, 254, 255]), lines: [{ sku: "a", n: 2 }], note: null },
    sender: "orders"
  }

  it("keeps what msgpack carries, bytes included, and fits the scheduler's id limit", () => {
    expect(ScheduledDelivery.decode(ScheduledDelivery.encode(pending))).toEqual(Either.right(pending))
    expect(ScheduledDelivery.itemId(pending)).toBe("k-71052da05820ecdf37d549e37fa84f83/alice")
  })

  it("refuses a payload it did not write", () => {
    expect(Either.isLeft(ScheduledDelivery.decode("not base64 at all!"))).toBe(true)
    expect(Either.isLeft(ScheduledDelivery.decode(btoa("\u0093\u0001\u0002\u0003")))).toBe(true)
    const { sender: _sender, ...withoutSender } = pending
    expect(Either.isLeft(ScheduledDelivery.decode(Encoding.encodeBase64(new Packr({ useRecords: false }).pack(withoutSender)))))
      .toBe(true)
  })
})
