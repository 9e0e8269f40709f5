/**
 * Users end to end, on real Bun nodes with real WebSocket clients: the `user:<id>` channel
 * (permission, live notifications pushed through the service API, the offline inbox with read
 * state and resumption), signals between users (on one node and across two), the per-user
 * connection limit, and the time zone taken from the JWT.
 */
import { makeWeftClient, type WeftApiClient } from "@weft/api"
import type { ServerFrame } from "@weft/protocol"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { type GatewayCluster, startGatewayCluster, startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { waitUntil } from "../support/wait.ts"
import {
  type Claims,
  type Client,
  closeAll,
  connectAs,
  isRefusal,
  makeJwt,
  request,
  requestId,
  requestTicket,
  rpc,
  ticketFor,
  tryConnect,
  wrap,
  wsUrl
} from "../support/wsClient.ts"

/** The `orders` service's credential, given to every node with `--service-keys`. */
const serviceKey = "orders-e2e-key-0123456789abcdefghijklmnop"
const serviceArgs = ["--service-keys", `orders=${serviceKey}`]

const clusters: Array<GatewayCluster> = []
const nodes: Array<RunningNode> = []
const clients: Array<Client> = []
afterAll(async () => {
  await closeAll(clients)
  await stopNodes(nodes)
  await Promise.all(clusters.map((cluster) => cluster.stop()))
})

const connect = async (node: RunningNode, claims: Claims) => {
  const { client, welcome } = await connectAs(node.url(), claims)
  clients.push(client)
  expect(welcome.user).toBe(claims.sub)
  return client
}

const device = (sub: string, name: string, extra: Omit<NonNullable<Claims["weft"]>, "device"> = {}): Claims => ({
  sub,
  weft: { device: name, ...extra }
})

type Position = { readonly epoch: string; readonly offset: number }

const subscribe = async (client: Client, channel: string, since?: Position) => {
  const answer = await request(client, (id) => ({ type: "subscribe", id, channel, ...(since === undefined ? {} : { since }) }))
  if (answer.type !== "ack") throw new Error(`subscribe ${channel}: ${JSON.stringify(answer)}`)
  return answer
}

const unsubscribe = async (client: Client, channel: string) => {
  const answer = await request(client, (id) => ({ type: "unsubscribe", id, channel }))
  expect(answer.type).toBe("ack")
}

/** Everything the server sent before the pong has arrived (the connection answers in order). */
const settle = (client: Client) => client.ping(requestId(), 20_000)

const resultOf = (frame: ServerFrame): Record<string, unknown> => {
  if (frame.type !== "reply") throw new Error(`expected a reply, got ${JSON.stringify(frame)}`)
  if (typeof frame.result !== "object" || frame.result === null) throw new Error(`expected an object result, got ${JSON.stringify(frame)}`)
  return frame.result as Record<string, unknown>
}

const errorOf = (frame: ServerFrame) => (frame.type === "error" ? { code: frame.code, name: frame.name } : { type: frame.type })

type MessageFrame = Extract<ServerFrame, { readonly type: "message" }>

const kindOf = (frame: MessageFrame): unknown =>
  typeof frame.data === "object" && frame.data !== null && "kind" in frame.data ? frame.data.kind : undefined

/** The `message` frames received so far on `user:<user>` whose `data.kind` is `kind`, in arrival order. */
const received = (client: Client, user: string, kind: "notification" | "read" | "signal"): Array<MessageFrame> =>
  client.frames.filter((f): f is MessageFrame => f.type === "message" && f.channel === `user:${user}` && kindOf(f) === kind)

const notificationIds = (client: Client, user: string): Array<string> =>
  received(client, user, "notification").map((f) => String((f.data as { id: unknown }).id))

const offsets = (client: Client, user: string): Array<number | undefined> =>
  received(client, user, "notification").map((f) => f.position?.offset)

/** Waits until `client` has received the notification `id` on `user:<user>` (leaving it in `frames`). */
const waitForNotification = (client: Client, user: string, id: string) =>
  waitUntil(`notification ${id} reached ${user}`, async () => notificationIds(client, user).includes(id), 20_000)

const copiesOf = (client: Client, user: string, id: string): number => notificationIds(client, user).filter((n) => n === id).length

// ---------------------------------------------------------------------------
// The service API, from this process
// ---------------------------------------------------------------------------

const withApi = <A, E>(node: RunningNode, use: (weft: WeftApiClient) => Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(makeWeftClient({ url: node.url(), credential: serviceKey }), use)))

const notify = (node: RunningNode, userId: string, data: unknown, idempotencyKey?: string) =>
  withApi(node, (weft) =>
    weft.notify.toUser({
      userId,
      notification: { kind: "order.completed", data },
      ...(idempotencyKey === undefined ? {} : { idempotencyKey })
    }))

const settingsOf = (node: RunningNode, userId: string) => withApi(node, (weft) => weft.users.settings({ userId }))

const connectionsOf = (node: RunningNode, userId: string) =>
  withApi(node, (weft) => weft.presence.user({ userId })).then((presence) => presence.connections)

// ---------------------------------------------------------------------------
// One node
// ---------------------------------------------------------------------------

describe("users on one node", () => {
  let node: RunningNode
  beforeAll(async () => {
    // At most 2 connections per user (every user below has at most two at a time), and 10
    // notifications per inbox (no user below gets more, but the one that tests trimming).
    node = await startGatewayNode(["--node-id", "users-e2e", "--max-connections-per-user", "2", "--inbox-max-length", "10", ...serviceArgs])
    nodes.push(node)
  })

  it("a user's devices hear their own user channel only; a pushed notification reaches each device once", async () => {
    // The own user channel is allowed whatever the JWT's subscribe list says.
    const phone = await connect(node, device("uma", "phone", { subscribe: ["room:*"] }))
    const laptop = await connect(node, device("uma", "laptop"))
    const first = await subscribe(phone, "user:uma")
    // A new user's inbox is empty.
    expect(first.position?.offset).toBe(0)
    await subscribe(laptop, "user:uma")

    // Another user's channel is refused, and nobody may publish on a user channel.
    expect(errorOf(await request(phone, (id) => ({ type: "subscribe", id, channel: "user:ned" })))).toEqual({ code: 2000, name: "forbidden" })
    expect(errorOf(await request(phone, (id) => ({ type: "publish", id, channel: "user:uma", data: "hi" })))).toEqual({
      code: 2000,
      name: "forbidden"
    })

    const delivery = await notify(node, "uma", { orderId: 7 })
    expect(delivery).toMatchObject({ status: "delivered", devices: 2, duplicate: false })
    const id = delivery.notificationId
    expect(id).toMatch(/^n-/)
    for (const client of [phone, laptop]) {
      await waitForNotification(client, "uma", id)
      const [message] = received(client, "uma", "notification")
      expect(message?.data).toEqual({ kind: "notification", id, type: "order.completed", data: { orderId: 7 }, sender: "orders" })
      expect(message?.from).toBe("orders")
      expect(message?.position).toEqual({ epoch: first.position?.epoch, offset: 1 })
      expect(message?.at).toBeGreaterThan(0)
    }

    // A second notification, in order after the first: once it is there, the first had every
    // chance to arrive twice.
    const second = await notify(node, "uma", { orderId: 8 })
    expect(second).toMatchObject({ status: "delivered", devices: 2, duplicate: false })
    for (const client of [phone, laptop]) {
      await waitForNotification(client, "uma", second.notificationId)
      await settle(client)
      expect(notificationIds(client, "uma")).toEqual([id, second.notificationId])
      expect(offsets(client, "uma")).toEqual([1, 2])
    }

    // An idempotency key: the repeat answers as the first did and delivers nothing more.
    const keyed = await notify(node, "uma", { orderId: 9 }, "order-9-completed")
    const repeat = await notify(node, "uma", { orderId: 9 }, "order-9-completed")
    expect(keyed).toMatchObject({ status: "delivered", devices: 2, duplicate: false })
    expect(repeat).toMatchObject({ status: "delivered", notificationId: keyed.notificationId, duplicate: true })
    const after = await notify(node, "uma", { orderId: 10 })
    for (const client of [phone, laptop]) {
      await waitForNotification(client, "uma", after.notificationId)
      expect(notificationIds(client, "uma")).toEqual([id, second.notificationId, keyed.notificationId, after.notificationId])
    }
  })

  it("counts devices, not connections: two connections of one device are one device, and both get it", async () => {
    const a = await connect(node, device("ned", "tablet"))
    const b = await connect(node, device("ned", "tablet"))
    await subscribe(a, "user:ned")
    await subscribe(b, "user:ned")
    const delivery = await notify(node, "ned", { orderId: 1 })
    expect(delivery).toMatchObject({ status: "delivered", devices: 1, duplicate: false })
    const next = await notify(node, "ned", { orderId: 2 })
    for (const client of [a, b]) {
      await waitForNotification(client, "ned", next.notificationId)
      expect(notificationIds(client, "ned")).toEqual([delivery.notificationId, next.notificationId])
    }
  })

  it("keeps notifications for an offline user, replays the unread ones, tracks read state and resumes from a position", async () => {
    const user = "ivy"
    const channel = `user:${user}`
    const stored = []
    for (let i = 1; i <= 3; i++) stored.push(await notify(node, user, { orderId: i }))
    for (const delivery of stored) expect(delivery).toMatchObject({ status: "stored", devices: 0, duplicate: false })
    const [n1, n2, n3] = stored.map((delivery) => delivery.notificationId) as [string, string, string]

    // Back online: the unread ones arrive first, in order, then live ones.
    const phone = await connect(node, device(user, "phone"))
    const ack = await subscribe(phone, channel)
    expect(ack.position?.offset).toBe(3)
    expect(ack.recovery).toBeUndefined()
    const epoch = ack.position!.epoch
    const live = await notify(node, user, { orderId: 4 })
    expect(live).toMatchObject({ status: "delivered", devices: 1 })
    const n4 = live.notificationId
    await waitForNotification(phone, user, n4)
    await settle(phone)
    expect(notificationIds(phone, user)).toEqual([n1, n2, n3, n4])
    expect(offsets(phone, user)).toEqual([1, 2, 3, 4])
    expect(received(phone, user, "notification").map((f) => (f.data as { data: unknown }).data)).toEqual([
      { orderId: 1 },
      { orderId: 2 },
      { orderId: 3 },
      { orderId: 4 }
    ])

    const laptop = await connect(node, device(user, "laptop"))
    await subscribe(laptop, channel)
    await settle(laptop)
    expect(notificationIds(laptop, user)).toEqual([n1, n2, n3, n4])

    // The inbox, with read state.
    const list = resultOf(await rpc(phone, "notifications.list", {}))
    expect(list["unread"]).toBe(4)
    expect(list["position"]).toEqual({ epoch, offset: 4 })
    const entries = list["entries"] as Array<{ position: Position; read: boolean; at: number; notification: { id: string; sender: string } }>
    expect(entries.map((e) => [e.notification.id, e.position.offset, e.read])).toEqual([
      [n1, 1, false],
      [n2, 2, false],
      [n3, 3, false],
      [n4, 4, false]
    ])
    expect(entries.every((e) => e.notification.sender === "orders" && e.at > 0)).toBe(true)
    // Paging: the newest `limit`, and those before an offset.
    const newest = resultOf(await rpc(phone, "notifications.list", { limit: 2 }))
    expect((newest["entries"] as typeof entries).map((e) => e.notification.id)).toEqual([n3, n4])
    const older = resultOf(await rpc(phone, "notifications.list", { before: 3 }))
    expect((older["entries"] as typeof entries).map((e) => e.notification.id)).toEqual([n1, n2])

    // Reading one: the count drops and every device hears it.
    expect(resultOf(await rpc(laptop, "notifications.read", { ids: [n1] }))).toEqual({ unread: 3 })
    for (const client of [phone, laptop]) {
      await waitUntil("the read event arrived", async () => received(client, user, "read").length === 1)
      const [event] = received(client, user, "read")
      expect(event?.data).toEqual({ kind: "read", ids: [n1], unread: 3 })
      expect(event?.position).toBeUndefined()
    }
    const afterRead = resultOf(await rpc(phone, "notifications.list", {}))
    expect(afterRead["unread"]).toBe(3)
    expect((afterRead["entries"] as typeof entries).map((e) => e.read)).toEqual([true, false, false, false])

    // A fresh subscribe (no `since`) replays only the unread ones.
    await unsubscribe(laptop, channel)
    laptop.frames.splice(0)
    expect((await subscribe(laptop, channel)).position).toEqual({ epoch, offset: 4 })
    await settle(laptop)
    expect(notificationIds(laptop, user)).toEqual([n2, n3, n4])

    // Reading all of them.
    expect(resultOf(await rpc(phone, "notifications.read", { all: true }))).toEqual({ unread: 0 })
    for (const client of [phone, laptop]) {
      await waitUntil("the read-all event arrived", async () => received(client, user, "read").some((f) => (f.data as { unread: number }).unread === 0))
      expect(received(client, user, "read").at(-1)?.data).toEqual({ kind: "read", ids: [n1, n2, n3, n4], unread: 0 })
    }
    expect(resultOf(await rpc(phone, "notifications.list", {}))["unread"]).toBe(0)
    await unsubscribe(laptop, channel)
    laptop.frames.splice(0)
    await subscribe(laptop, channel)
    await settle(laptop)
    expect(notificationIds(laptop, user)).toEqual([])

    // The laptop goes away; what it misses arrives when it resumes from its last position.
    const last = received(phone, user, "notification").at(-1)?.position
    expect(last).toEqual({ epoch, offset: 4 })
    laptop.close()
    await laptop.closed
    await waitUntil("the laptop is detached", async () => (await connectionsOf(node, user)) === 1)
    const missed = [await notify(node, user, { orderId: 5 }), await notify(node, user, { orderId: 6 })]
    for (const delivery of missed) expect(delivery).toMatchObject({ status: "delivered", devices: 1 })
    const [n5, n6] = missed.map((delivery) => delivery.notificationId) as [string, string]

    const back = await connect(node, device(user, "laptop"))
    const resumed = await subscribe(back, channel, last)
    expect(resumed.recovery).toBe("ok")
    expect(resumed.position).toEqual({ epoch, offset: 6 })
    const n7 = (await notify(node, user, { orderId: 7 })).notificationId
    await waitForNotification(back, user, n7)
    await settle(back)
    expect(notificationIds(back, user)).toEqual([n5, n6, n7])
    expect(offsets(back, user)).toEqual([5, 6, 7])
    await waitForNotification(phone, user, n7)
    expect(offsets(phone, user)).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

  it("a resume from a position no longer in the inbox (trimmed, or past its end) fails recovery instead of leaving a gap", async () => {
    const user = "gus"
    const channel = `user:${user}`
    const phone = await connect(node, device(user, "phone"))
    const start = (await subscribe(phone, channel)).position!
    expect(start.offset).toBe(0)
    await unsubscribe(phone, channel)
    const ids = []
    for (let i = 1; i <= 12; i++) ids.push((await notify(node, user, { orderId: i })).notificationId)
    // The inbox keeps the last 10 (offsets 3 to 12).
    const list = resultOf(await rpc(phone, "notifications.list", {}))
    const entries = list["entries"] as Array<{ position: Position; notification: { id: string } }>
    expect(entries.map((e) => e.position.offset)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    expect(entries.map((e) => e.notification.id)).toEqual(ids.slice(2))

    // Offsets 1 and 2 are gone: the client is told to reload, and gets no partial catch-up.
    phone.frames.splice(0)
    const trimmed = await subscribe(phone, channel, start)
    expect(trimmed.recovery).toBe("failed")
    expect(trimmed.position).toEqual({ epoch: start.epoch, offset: 12 })
    await settle(phone)
    expect(notificationIds(phone, user)).toEqual([])
    await unsubscribe(phone, channel)

    // A position past the end of the inbox cannot be resumed from either.
    const ahead = await subscribe(phone, channel, { epoch: start.epoch, offset: 99 })
    expect(ahead.recovery).toBe("failed")
    await unsubscribe(phone, channel)

    // From a retained position: exactly what follows it.
    const resumed = await subscribe(phone, channel, { epoch: start.epoch, offset: 10 })
    expect(resumed.recovery).toBe("ok")
    await settle(phone)
    expect(notificationIds(phone, user)).toEqual(ids.slice(10))
    expect(offsets(phone, user)).toEqual([11, 12])
  })

  it("signals reach the named device or every device of the user, need the signal permission, and are not stored", async () => {
    const sender = await connect(node, device("sam", "desk", { publish: ["signal:*"] }))
    const stranger = await connect(node, { sub: "mallory" })
    const phone = await connect(node, device("tess", "phone"))
    const laptop = await connect(node, device("tess", "laptop"))
    for (const client of [phone, laptop]) await subscribe(client, "user:tess")

    expect(errorOf(await rpc(stranger, "signal.send", { user: "tess", data: { sdp: "evil" } }))).toEqual({ code: 2000, name: "forbidden" })

    expect(resultOf(await rpc(sender, "signal.send", { user: "tess", device: "phone", data: { sdp: "offer-1" } }))).toEqual({ devices: 1 })
    expect(resultOf(await rpc(sender, "signal.send", { user: "tess", device: "watch", data: { sdp: "nobody" } }))).toEqual({ devices: 0 })
    expect(resultOf(await rpc(sender, "signal.send", { user: "tess", data: { candidate: "ice-2" } }))).toEqual({ devices: 2 })

    const signals = (client: Client) => received(client, "tess", "signal").map((f) => f.data)
    await waitUntil("both devices got the signal to all", async () => signals(phone).length >= 2 && signals(laptop).length >= 1)
    await settle(phone)
    await settle(laptop)
    expect(signals(phone)).toEqual([
      { kind: "signal", data: { sdp: "offer-1" }, fromDevice: "desk" },
      { kind: "signal", data: { candidate: "ice-2" }, fromDevice: "desk" }
    ])
    expect(signals(laptop)).toEqual([{ kind: "signal", data: { candidate: "ice-2" }, fromDevice: "desk" }])
    const [signal] = received(laptop, "tess", "signal")
    expect(signal?.from).toBe("sam")
    expect(signal?.position).toBeUndefined()
    // The stranger's refused signal went nowhere.
    expect(signals(phone).some((data) => JSON.stringify(data).includes("evil"))).toBe(false)

    // Not stored: a new subscription replays nothing, and the inbox is empty.
    await unsubscribe(laptop, "user:tess")
    laptop.frames.splice(0)
    await subscribe(laptop, "user:tess")
    await settle(laptop)
    expect(laptop.frames.filter((f) => f.type === "message")).toEqual([])
    const inbox = resultOf(await rpc(laptop, "notifications.list", {}))
    expect(inbox["entries"]).toEqual([])
    expect(inbox["unread"]).toBe(0)
  })

  it("refuses a user's connection past --max-connections-per-user with 429, and accepts one after a close", async () => {
    const user = "lim"
    const first = await connect(node, { sub: user })
    await connect(node, { sub: user })
    const third = await tryConnect(wsUrl(node.url(), await ticketFor(node.url(), { sub: user })), { protocols: ["weft.v1.msgpack"] })
    expect(isRefusal(third) ? third.status : "opened").toBe(429)

    first.close()
    await first.closed
    // The close reaches the user entity asynchronously: until it has, a new connection is refused.
    const otherRefusals: Array<number> = []
    let replacement: Client | undefined
    await waitUntil("a new connection of the user is accepted", async () => {
      const opened = await tryConnect(wsUrl(node.url(), await ticketFor(node.url(), { sub: user })), { protocols: ["weft.v1.msgpack"] })
      if (isRefusal(opened)) {
        if (opened.status !== 429) otherRefusals.push(opened.status)
        return false
      }
      replacement = wrap(opened, "msgpack")
      clients.push(replacement)
      return true
    })
    expect(otherRefusals).toEqual([])
    expect((await replacement!.nextOf("welcome")).user).toBe(user)
    expect(await connectionsOf(node, user)).toBe(2)
  })

  it("takes the user's time zone from the JWT, and refuses a JWT whose time zone is not an IANA zone", async () => {
    expect(await settingsOf(node, "zoe")).toEqual({ timeZone: "UTC", quietHours: null })
    await connect(node, { sub: "zoe", weft: { tz: "Asia/Tokyo" } })
    expect(await settingsOf(node, "zoe")).toEqual({ timeZone: "Asia/Tokyo", quietHours: null })

    for (const tz of ["+09:00", "Mars/Base"]) {
      const response = await requestTicket(node.url(), await makeJwt({ sub: "zoe", weft: { tz } }))
      expect(response.status, tz).toBe(401)
      expect(await response.json()).toMatchObject({ error: "unauthorized", reason: "claims" })
    }
    expect(await settingsOf(node, "zoe")).toEqual({ timeZone: "Asia/Tokyo", quietHours: null })
  })
})

// ---------------------------------------------------------------------------
// Two nodes over Redis
// ---------------------------------------------------------------------------

describe("users across two nodes", () => {
  let node0: RunningNode
  let node1: RunningNode
  beforeAll(async () => {
    const cluster = await startGatewayCluster("users", 2, serviceArgs)
    clusters.push(cluster)
    ;[node0, node1] = cluster.nodes as [RunningNode, RunningNode]
  }, 90_000)

  it("a notification pushed on one node reaches each device of the user once, on both nodes", async () => {
    const user = "cleo"
    const devices = [
      await connect(node0, device(user, "phone")),
      await connect(node0, device(user, "tablet")),
      await connect(node1, device(user, "laptop"))
    ]
    for (const client of devices) await subscribe(client, `user:${user}`)

    const first = await notify(node1, user, { orderId: 1 })
    expect(first).toMatchObject({ status: "delivered", devices: 3, duplicate: false })
    for (const client of devices) await waitForNotification(client, user, first.notificationId)
    // The second one follows the first on the same topic: once it is everywhere, so is any repeat of the first.
    const second = await notify(node1, user, { orderId: 2 })
    expect(second).toMatchObject({ status: "delivered", devices: 3, duplicate: false })
    for (const client of devices) {
      await waitForNotification(client, user, second.notificationId)
      await settle(client)
      expect(copiesOf(client, user, first.notificationId)).toBe(1)
      expect(notificationIds(client, user)).toEqual([first.notificationId, second.notificationId])
      expect(offsets(client, user)).toEqual([1, 2])
      expect(received(client, user, "notification")[0]?.data).toEqual({
        kind: "notification",
        id: first.notificationId,
        type: "order.completed",
        data: { orderId: 1 },
        sender: "orders"
      })
    }
  }, 60_000)

  it("a signal from a user on one node reaches the named device, or every device, wherever they are", async () => {
    const sender = await connect(node0, device("sid", "desk", { publish: ["signal:tara"] }))
    const phone = await connect(node1, device("tara", "phone"))
    const laptop = await connect(node0, device("tara", "laptop"))
    for (const client of [phone, laptop]) await subscribe(client, "user:tara")

    // The permission names the target: another user may not be signalled.
    expect(errorOf(await rpc(sender, "signal.send", { user: "cleo", data: {} }))).toEqual({ code: 2000, name: "forbidden" })

    expect(resultOf(await rpc(sender, "signal.send", { user: "tara", device: "phone", data: { sdp: "offer" } }))).toEqual({ devices: 1 })
    expect(resultOf(await rpc(sender, "signal.send", { user: "tara", data: { sdp: "hangup" } }))).toEqual({ devices: 2 })

    const signals = (client: Client) => received(client, "tara", "signal").map((f) => f.data)
    await waitUntil("the signals arrived", async () => signals(phone).length >= 2 && signals(laptop).length >= 1, 20_000)
    await settle(phone)
    await settle(laptop)
    expect(signals(phone)).toEqual([
      { kind: "signal", data: { sdp: "offer" }, fromDevice: "desk" },
      { kind: "signal", data: { sdp: "hangup" }, fromDevice: "desk" }
    ])
    expect(signals(laptop)).toEqual([{ kind: "signal", data: { sdp: "hangup" }, fromDevice: "desk" }])
    expect(received(phone, "tara", "signal").map((f) => f.from)).toEqual(["sid", "sid"])
  }, 60_000)
})
