import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as Envelope from "../src/Envelope.ts"

const bytes = (text: string) => new TextEncoder().encode(text)
const decode = (value: unknown) => Envelope.decode(bytes(JSON.stringify(value)))
const problem = (result: Either.Either<unknown, string>): string => Either.match(result, { onLeft: (p) => p, onRight: () => "decoded" })

describe("the envelope", () => {
  it("reads every documented field, and fills data with null when absent", () => {
    const full = {
      to: { users: ["42", "43"] },
      kind: "order.completed",
      data: { orderId: 7, lines: [{ sku: "a" }] },
      idempotencyKey: "order-7-completed",
      deliverAt: { _tag: "Local", at: "2030-01-02T09:00" },
      respectQuietHours: true,
      ttlMs: 60_000,
      at: 1_700_000_000_000,
      sender: "orders"
    }
    expect(decode(full)).toEqual(Either.right(full))
    expect(decode({ to: { room: "ops" } })).toEqual(Either.right({ to: { room: "ops" }, data: null }))
    expect(decode({ to: { broadcast: true }, data: "v2" })).toEqual(Either.right({ to: { broadcast: true }, data: "v2" }))
    expect(decode({})).toEqual(Either.right({ data: null }))
  })

  it("says why a body is not an envelope", () => {
    expect(problem(Envelope.decode(bytes("{not json")))).toMatch(/JSON/)
    expect(problem(Envelope.decode(new Uint8Array([0x7b, 0xff, 0x7d])))).toBe("the body is not UTF-8")
    expect(problem(Envelope.decode(new Uint8Array()))).toBe("the body is empty")
    expect(problem(Envelope.decode(new Uint8Array(Envelope.maxBytes + 1)))).toMatch(/at most/)
    expect(problem(decode([1, 2]))).toMatch(/Expected/)
    expect(problem(decode({ to: { users: [] } }))).toMatch(/^to/)
    expect(problem(decode({ to: { users: ["1"], room: "x" } }))).toMatch(/to/)
    expect(problem(decode({ to: { room: "has space" } }))).toMatch(/^to/)
    expect(problem(decode({ to: { broadcast: false } }))).toMatch(/^to/)
    expect(problem(decode({ idempotency_key: "typo" }))).toMatch(/idempotency_key/)
    expect(problem(decode({ ttlMs: -1 }))).toMatch(/^ttlMs/)
    expect(problem(decode({ kind: "" }))).toMatch(/^kind/)
    expect(problem(decode({ deliverAt: { _tag: "Utc", at: "tomorrow" } }))).toMatch(/^deliverAt/)
  })
})
