/**
 * `Fanout.acceptedAt`: the fan-out latency metric reads a message frame's `at`
 * from the end of its msgpack bytes, without decoding it. It must agree with
 * the codec for every frame the servers publish (with and without `from` and
 * `position`, any data), and refuse bytes that do not end that way.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Codec, type Frame } from "@weft/protocol"
import { Fanout } from "@weft/gateway"

const encode = (frame: typeof Frame.Message.Type): Uint8Array =>
  Codec.toBytes(Codec.encodeServerFrame(frame, "msgpack"))

describe("Fanout.acceptedAt", () => {
  it("reads `at` of message frames as the codec encodes them", () => {
    const now = Date.now()
    expect(Fanout.acceptedAt(encode({ type: "message", channel: "room:a", data: { text: "hi" }, at: now }))).toBe(now)
    expect(
      Fanout.acceptedAt(encode({
        type: "message",
        channel: "room:a",
        data: "x",
        from: "u1",
        position: { epoch: "e1", offset: 42 },
        at: now
      }))
    ).toBe(now)
    // Every msgpack number width the encoder may choose.
    for (const at of [0, 5, 127, 128, 255, 256, 65_535, 65_536, 4_294_967_295, 4_294_967_296, 1.5]) {
      expect(Fanout.acceptedAt(encode({ type: "message", channel: "c", data: null, at }))).toBe(at)
    }
  })

  it("agrees with the decoder for arbitrary data", () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
        (data, at, from) => {
          const frame = { type: "message" as const, channel: "room:x", data, at, ...(from === undefined ? {} : { from }) }
          expect(Fanout.acceptedAt(encode(frame))).toBe(at)
        }
      )
    )
  })

  it("gives undefined for bytes that do not end with the `at` field", () => {
    expect(Fanout.acceptedAt(new Uint8Array([]))).toBeUndefined()
    expect(Fanout.acceptedAt(Codec.toBytes(Codec.encodeServerFrame({ type: "pong" }, "msgpack")))).toBeUndefined()
    expect(Fanout.acceptedAt(new Uint8Array([0xa2, 0x61, 0x74, 0xc0]))).toBeUndefined()
  })
})
