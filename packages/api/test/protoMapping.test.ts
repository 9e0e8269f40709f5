/**
 * The `.proto` files restate `WeftApi`'s Schemas: every call has its method, every message
 * matches its Schema field by field, and no method is left without a call. The checker itself
 * is tested too: a call, a field or a type that differs must be reported.
 */
import * as ProtoLoader from "@grpc/proto-loader"
import { Rpc } from "@effect/rpc"
import { Either, Schema } from "effect"
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ApiError, callSchemas, type CallSchemas, UserId, WeftApi } from "../src/Api.ts"
import * as Grpc from "../src/server/Grpc.ts"
import * as ProtoMapping from "../src/server/ProtoMapping.ts"

const load = (dir = Grpc.protoDir) =>
  ProtoLoader.load(Array.from(Grpc.protoFiles), { ...Grpc.loaderOptions, includeDirs: [dir] })

/** A copy of the shipped `.proto` files with `edit` applied to `file`. */
const editedCopy = (file: string, edit: (text: string) => string): string => {
  const dir = mkdtempSync(join(tmpdir(), "weft-proto-"))
  mkdirSync(join(dir, "weft", "v1"), { recursive: true })
  for (const name of Grpc.protoFiles) {
    const text = readFileSync(join(Grpc.protoDir, name), "utf8")
    writeFileSync(join(dir, name), name === file ? edit(text) : text)
  }
  return dir
}

describe("the .proto files and WeftApi", () => {
  it("match: one method per call, every message equal to its Schema", async () => {
    const result = ProtoMapping.match(await load(), callSchemas)
    expect(Either.isRight(result) ? [] : result.left).toEqual([])
    expect(Either.getOrThrow(result).map((call) => `${call.service}/${call.method}`)).toHaveLength(WeftApi.requests.size)
  })

  it("a call added to the group without a method fails the check", async () => {
    const extended = WeftApi.add(Rpc.make("notify.toDevice", { payload: { userId: UserId, device: Schema.String }, error: ApiError }))
    const schemas: ReadonlyMap<string, CallSchemas> = new Map(
      Array.from(extended.requests, ([tag, rpc]) => [tag, { payloadSchema: rpc.payloadSchema, successSchema: rpc.successSchema }])
    )
    const result = ProtoMapping.match(await load(), schemas)
    expect(Either.isLeft(result) ? result.left : []).toEqual(["notify.toDevice: no rpc ToDevice in service weft.v1.Notify"])
  })

  it("a field that is missing, extra, of another type or optional where the Schema says required fails the check", async () => {
    const cases: ReadonlyArray<[string, string, RegExp]> = [
      ["missing", "  string user_id = 1;\n  NotificationContent notification = 2;", /notify\.toUser request\.userId: no field userId/],
      ["wrong type", "  int64 user_id = 1;\n  NotificationContent notification = 2;", /notify\.toUser request\.userId: should be a string/],
      ["optionality", "  google.protobuf.StringValue user_id = 1;\n  NotificationContent notification = 2;", /notify\.toUser request\.userId: should be a string/]
    ]
    for (const [name, replacement, expected] of cases) {
      const dir = editedCopy("weft/v1/notify.proto", (text) =>
        text.replace("  string user_id = 1;\n  NotificationContent notification = 2;", name === "missing" ? "  NotificationContent notification = 2;" : replacement))
      const result = ProtoMapping.match(await load(dir), callSchemas)
      expect(Either.isLeft(result) ? result.left.join("\n") : "", name).toMatch(expected)
    }
    const extra = editedCopy("weft/v1/notify.proto", (text) => text.replace("message NotifyToRoomReply {\n  bool delivered = 1;", "message NotifyToRoomReply {\n  bool delivered = 1;\n  string note = 2;"))
    const result = ProtoMapping.match(await load(extra), callSchemas)
    expect(Either.isLeft(result) ? result.left : []).toEqual(["notify.toRoom reply: NotifyToRoomReply.note is not in the Schema"])
  })

  it("a method no call serves fails the check", async () => {
    const dir = editedCopy("weft/v1/presence.proto", (text) => text.replace("service Presence {", "service Presence {\n  rpc Rooms(PresenceRoomRequest) returns (PresenceRoomReply);"))
    const result = ProtoMapping.match(await load(dir), callSchemas)
    expect(Either.isLeft(result) ? result.left : []).toEqual(["weft.v1.Presence/Rooms: no call of WeftApi is this method"])
  })

  it("a Schema with no protobuf form is reported, not guessed", () => {
    const shape = ProtoMapping.shapeOf(Schema.Struct({ counts: Schema.Record({ key: Schema.String, value: Schema.Number }) }).ast)
    expect(Either.isLeft(shape) ? shape.left : "").toBe("payload.counts: a record")
  })
})

describe("converting messages", () => {
  const shapeOf = (schema: Schema.Schema.AnyNoContext) => Either.getOrThrow(ProtoMapping.shapeOf(schema.ast))

  it("a JSON value goes through google.protobuf.Value and back unchanged", () => {
    const value = { a: 1, b: [true, null, "x", { c: -2.5 }], d: {} }
    expect(ProtoMapping.fromProtoValue(ProtoMapping.toProtoValue(value))).toEqual(value)
  })

  it("wrappers keep absent and empty apart; a tagged union is a oneof; null is its own field; a reply survives the wire", async () => {
    const payloadOf = (tag: string) => Either.getOrThrow(ProtoMapping.shapeOf(callSchemas.get(tag)!.payloadSchema.ast))
    const toUser = payloadOf("notify.toUser")
    expect(ProtoMapping.fromProto(toUser, {
      userId: "u",
      notification: { kind: "k", data: { numberValue: 1, kind: "numberValue" } },
      deliverAt: { local: { at: "2026-12-24T09:00" }, when: "local" },
      idempotencyKey: {}
    })).toEqual({ userId: "u", notification: { kind: "k", data: 1 }, deliverAt: { _tag: "Local", at: "2026-12-24T09:00" }, idempotencyKey: "" })
    expect(ProtoMapping.fromProto(toUser, { notification: { kind: "k" } })).toEqual({ userId: "", notification: { kind: "k" } })
    const settings = payloadOf("users.settings")
    expect(ProtoMapping.fromProto(settings, { userId: "u", quietHoursNull: "NULL_VALUE", quietHoursOrNull: "quietHoursNull" })).toEqual({ userId: "u", quietHours: null })
    expect(ProtoMapping.fromProto(settings, { userId: "u" })).toEqual({ userId: "u" })
    const reply = shapeOf(callSchemas.get("users.settings")!.successSchema)
    expect(ProtoMapping.toProto(reply, { timeZone: "UTC", quietHours: null })).toEqual({ timeZone: "UTC", quietHoursNull: "NULL_VALUE" })
    expect(ProtoMapping.replyToProto(shapeOf(callSchemas.get("presence.room")!.successSchema), [{ user: "a", devices: 1 }])).toEqual({ items: [{ user: "a", devices: 1 }] })
    // A reply message the client decodes again is the same value.
    const definition = await load()
    const method = Either.getOrThrow(ProtoMapping.match(definition, callSchemas)).find((call) => call.tag === "notify.toUser")!
    const service = definition[method.service]
    const bytes = service !== undefined && !("format" in service)
      ? service[method.method]!.responseSerialize(ProtoMapping.replyToProto(method.success, { status: "scheduled", notificationId: "n", devices: 0, scheduledAt: 1_800_000_000_000, duplicate: false }) as object)
      : Buffer.alloc(0)
    expect(service !== undefined && !("format" in service) ? service[method.method]!.responseDeserialize(bytes) : undefined)
      .toEqual({ status: "scheduled", notificationId: "n", devices: 0, scheduledAt: { value: 1_800_000_000_000 }, duplicate: false })
  })
})
