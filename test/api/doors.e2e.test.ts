/**
 * The three doors of the service API on a real two-node cluster (Bun nodes, real Redis): the
 * typed client (`/rpc`), HTTP JSON (`/v1/api/<call>`) and gRPC (`--grpc-port`). Each pushes to
 * the same user, who has a device on each node: each device gets each notification exactly once.
 * The same request gets equal replies from the three doors, and the same bad request (no
 * credential, a user id of the wrong shape, data too large, a bad idempotency key) equal errors.
 */
import { ApiError, callSchemas, Delivery, Errors, makeWeftClient, maxContentBytes } from "@weft/api"
import type { ServerFrame } from "@weft/protocol"
import { Effect, Either, Redacted, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type GrpcCaller, makeGrpcCaller } from "../../packages/api/test/grpcCaller.ts"
import type { RunningNode } from "../support/bunNode.ts"
import { type GatewayCluster, startGatewayCluster } from "../support/gatewayNodes.ts"
import { type Claims, type Client, closeAll, connectAs, request } from "../support/wsClient.ts"

const ordersKey = "orders-key-for-the-doors-tests-0123456789abcdef"

let cluster: GatewayCluster
let a: RunningNode
let b: RunningNode
let grpcCaller: GrpcCaller
const clients: Array<Client> = []

/** The port a node's gRPC door bound (`--grpc-port 0`), from its log. */
const grpcPortOf = async (node: RunningNode): Promise<number> => {
  const line = await node.waitForLog((entry) => entry.message === "gRPC listening")
  const port = line.annotations?.["grpcPort"]
  if (typeof port !== "number") throw new Error(`no grpcPort in ${JSON.stringify(line)}`)
  return port
}

beforeAll(async () => {
  cluster = await startGatewayCluster("doors", 2, ["--service-keys", `orders=${ordersKey}`, "--grpc-port", "0"])
  ;[a, b] = cluster.nodes as [RunningNode, RunningNode]
  // gRPC to node a, HTTP JSON and the typed client to node b: every door crosses the cluster.
  grpcCaller = await makeGrpcCaller(`127.0.0.1:${await grpcPortOf(a)}`)
}, 60_000)

afterAll(async () => {
  grpcCaller?.close()
  await closeAll(clients)
  await cluster?.stop()
})

// ---------------------------------------------------------------------------
// The doors, each answering `{ ok: true, reply }` (reply in JSON form) or `{ ok: false, refusal }`
// ---------------------------------------------------------------------------

type Outcome = { readonly ok: true; readonly reply: unknown } | { readonly ok: false; readonly refusal: Errors.Refusal }

const bearer = { authorization: `Bearer ${ordersKey}` }

const viaHttp = async (tag: string, payload: unknown, headers: Record<string, string> = bearer): Promise<Outcome> => {
  const response = await fetch(`${b.url()}/v1/api/${tag}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(60_000)
  })
  const body: unknown = await response.json()
  if (response.status === 200) return { ok: true, reply: body }
  const refusal = Schema.decodeUnknownSync(Errors.ErrorBody)(body).error
  expect(response.status, tag).toBe(Errors.errorKinds[refusal.reason].http)
  return { ok: false, refusal }
}

const viaGrpc = async (tag: string, payload: unknown, metadata: Record<string, string> = bearer): Promise<Outcome> => {
  const outcome = await grpcCaller.call(tag, payload, metadata)
  if (outcome.ok) return outcome
  const code = Number(outcome.trailers["weft-error-code"])
  const reason = Schema.decodeUnknownSync(Errors.ErrorReason)(outcome.trailers["weft-error-reason"])
  expect(outcome.code, tag).toBe(Errors.errorKinds[reason].grpc)
  return { ok: false, refusal: { code, reason, message: outcome.details } }
}

/**
 * A call through the typed client, by tag; the reply encoded to JSON form. The payload is not
 * typed here (some are bad requests on purpose): the client checks it against the call's Schema.
 */
const viaTyped = (tag: string, payload: unknown, credential = ordersKey): Promise<Outcome> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const weft = yield* Effect.orDie(makeWeftClient({ url: b.url(), credential: Redacted.make(credential) }))
    const dot = tag.indexOf(".")
    const method: unknown = Reflect.get(Reflect.get(weft, tag.slice(0, dot)) ?? {}, tag.slice(dot + 1))
    const call: unknown = typeof method === "function" ? method(payload) : undefined
    if (!Effect.isEffect(call)) return yield* Effect.dieMessage(`no call ${tag}`)
    // The client's calls need nothing from the context (`makeWeftClient` provided it all).
    const outcome = yield* Effect.either((call as Effect.Effect<unknown, unknown>).pipe(Effect.timeout("20 seconds")))
    if (Either.isRight(outcome)) {
      return { ok: true as const, reply: Schema.encodeUnknownSync(callSchemas.get(tag)!.successSchema)(outcome.right) }
    }
    const error = outcome.left
    if (error instanceof ApiError) return { ok: false as const, refusal: Errors.refusalOf(error) }
    return yield* Effect.dieMessage(`${tag}: ${String(error)}`)
  })))

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

const device = (sub: string, name: string): Claims => ({ sub, weft: { subscribe: ["room:*"], publish: [], device: name } })

const connect = async (node: RunningNode, claims: Claims): Promise<Client> => {
  const { client } = await connectAs(node.url(), claims)
  clients.push(client)
  const answer = await request(client, (id) => ({ type: "subscribe", id, channel: `user:${claims.sub}` }))
  if (answer.type !== "ack") throw new Error(`subscribe: ${JSON.stringify(answer)}`)
  return client
}

const idOf = (frame: ServerFrame): unknown =>
  frame.type === "message" && typeof frame.data === "object" && frame.data !== null ? Reflect.get(frame.data, "id") : undefined

const copies = (client: Client, id: string): number => client.frames.filter((frame) => idOf(frame) === id).length

// ---------------------------------------------------------------------------

describe("three doors, one behaviour", () => {
  it("each door's push reaches both of the user's devices, on two nodes, exactly once, with equal replies", async () => {
    const devices = [await connect(a, device("zoe", "phone")), await connect(b, device("zoe", "laptop"))]
    const notification = { kind: "order.completed", data: { orderId: 7, total: 12.5, tags: ["a", null] } }
    const outcomes = {
      typed: await viaTyped("notify.toUser", { userId: "zoe", notification, idempotencyKey: "typed-1" }),
      http: await viaHttp("notify.toUser", { userId: "zoe", notification, idempotencyKey: "http-1" }),
      grpc: await viaGrpc("notify.toUser", { userId: "zoe", notification, idempotencyKey: "grpc-1" })
    }
    const replies = Object.entries(outcomes).map(([door, outcome]) => {
      if (!outcome.ok) throw new Error(`${door} refused: ${JSON.stringify(outcome.refusal)}`)
      return Schema.decodeUnknownSync(Delivery)(outcome.reply)
    })
    // Equal but for the notification's id (each call is its own notification).
    for (const reply of replies) expect({ ...reply, notificationId: "" }).toEqual({ status: "delivered", notificationId: "", devices: 2, duplicate: false })
    const ids = replies.map((reply) => reply.notificationId)
    expect(new Set(ids).size).toBe(3)

    for (const client of devices) {
      for (const id of ids) {
        const frame = await client.next((f) => idOf(f) === id, 20_000)
        expect(frame.type === "message" && frame.data).toMatchObject({ kind: "notification", type: "order.completed", data: notification.data, sender: "orders" })
      }
    }
    // A retry through another door with the first door's key is that first call again: no new copy.
    const retried = await viaGrpc("notify.toUser", { userId: "zoe", notification, idempotencyKey: "http-1" })
    expect(retried).toEqual({ ok: true, reply: { ...outcomes.http.ok ? Schema.decodeUnknownSync(Delivery)(outcomes.http.reply) : {}, duplicate: true } })
    // A last notification behind them on the same path: once it is in, any second copy would be too.
    const sentinel = await viaHttp("notify.toUser", { userId: "zoe", notification: { kind: "sentinel", data: null } })
    const sentinelId = sentinel.ok ? Schema.decodeUnknownSync(Delivery)(sentinel.reply).notificationId : ""
    for (const client of devices) {
      await client.next((f) => idOf(f) === sentinelId, 20_000)
      for (const id of ids) expect(copies(client, id)).toBe(0)
    }

    // A read: the same reply, to the byte, from each door.
    const presence = await Promise.all([
      viaTyped("presence.user", { userId: "zoe" }),
      viaHttp("presence.user", { userId: "zoe" }),
      viaGrpc("presence.user", { userId: "zoe" })
    ])
    expect(presence[0]).toMatchObject({ ok: true, reply: { online: true, connections: 2 } })
    expect(presence[1]).toEqual(presence[0])
    expect(presence[2]).toEqual(presence[0])
  }, 60_000)

  it("the same bad request gets the same error from each door", async () => {
    const notification = { kind: "k", data: { n: 1 } }
    const cases: ReadonlyArray<{ name: string; payload: unknown; reason: Errors.ErrorReason; credential?: "none" }> = [
      { name: "missing credential", payload: { userId: "zoe", notification }, reason: "unauthorized", credential: "none" },
      { name: "user id of the wrong shape", payload: { userId: "", notification }, reason: "invalid" },
      { name: "user id too long", payload: { userId: "z".repeat(201), notification }, reason: "invalid" },
      { name: "data too large", payload: { userId: "zoe", notification: { kind: "k", data: "x".repeat(maxContentBytes + 1) } }, reason: "too_large" },
      { name: "bad idempotency key", payload: { userId: "zoe", notification, idempotencyKey: "" }, reason: "invalid" },
      { name: "idempotency key too long", payload: { userId: "zoe", notification, idempotencyKey: "k".repeat(201) }, reason: "invalid" }
    ]
    for (const { credential, name, payload, reason } of cases) {
      const headers = credential === "none" ? {} : bearer
      const outcomes = [
        await viaTyped("notify.toUser", payload, credential === "none" ? "" : ordersKey),
        await viaHttp("notify.toUser", payload, headers),
        await viaGrpc("notify.toUser", payload, headers)
      ]
      expect(outcomes[0], name).toMatchObject({ ok: false, refusal: { reason, code: Errors.errorKinds[reason].code } })
      expect(outcomes[1], name).toEqual(outcomes[0])
      expect(outcomes[2], name).toEqual(outcomes[0])
    }
  }, 60_000)

  it("notify.toUsers takes thousands of users in one call and counts who got it now, later or not at all", async () => {
    const online = await connect(a, device("yan", "phone"))
    // 2,000 users: past the old limit of 1,000 per call, and each one a real entity call.
    const userIds = ["yan", ...Array.from({ length: 1999 }, (_, i) => `offline-${i}`)]
    const notification = { kind: "maintenance", data: { at: "22:00" } }
    const http = await viaHttp("notify.toUsers", { userIds: [...userIds, "yan"], notification })
    expect(http).toMatchObject({ ok: true, reply: { delivered: 1, queued: 1999, refused: 0, devices: 1, refusals: [], duplicate: false } })
    const id = http.ok ? Reflect.get(Object(http.reply), "notificationId") : undefined
    await online.next((frame) => idOf(frame) === id, 20_000)
    const grpc = await viaGrpc("notify.toUsers", { userIds, notification, idempotencyKey: "batch-1" })
    expect(grpc).toMatchObject({ ok: true, reply: { delivered: 1, queued: 1999, refused: 0, devices: 1, duplicate: false } })
    const again = await viaHttp("notify.toUsers", { userIds, notification }, { ...bearer, "idempotency-key": "batch-1" })
    expect(again).toEqual({ ok: true, reply: { ...(grpc.ok ? Object(grpc.reply) : {}), duplicate: true } })
  }, 120_000)
})
