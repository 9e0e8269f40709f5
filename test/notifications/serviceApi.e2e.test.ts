/**
 * The service API end to end: another service, in its own Bun process with the
 * exported client of `@weft/api` (`orderService.ts`), calls real Bun nodes over
 * the real Redis, and real WebSocket clients see the result. Covers delivery to
 * every device on every node, the offline inbox, idempotent retries, refusal
 * without a credential, the room and broadcast notifications, the read calls,
 * local times and quiet hours, and scheduled delivery in real time and across
 * a restart of the node that accepted it.
 */
import { BatchDelivery, Delivery } from "@weft/api"
import type { ServerFrame } from "@weft/protocol"
import { Schema } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bunBinary, type RunningNode } from "../support/bunNode.ts"
import { type GatewayCluster, joinCluster, startGatewayCluster, stopNodes } from "../support/gatewayNodes.ts"
import { type Claims, type Client, closeAll, connectAs, isRefusal, makeJwt, request, tryConnect } from "../support/wsClient.ts"

const ordersKey = "orders-key-for-the-e2e-tests-0123456789abcdef"
const serviceKeys = ["--service-keys", `orders=${ordersKey}`]

// ---------------------------------------------------------------------------
// The service process
// ---------------------------------------------------------------------------

const AnswerLine = Schema.Struct({
  id: Schema.Number,
  ok: Schema.optional(Schema.Unknown),
  error: Schema.optional(Schema.Struct({ tag: Schema.String, reason: Schema.optional(Schema.String), message: Schema.String }))
})
type Answer = typeof AnswerLine.Type
const decodeAnswer = Schema.decodeSync(Schema.parseJson(AnswerLine))

interface Service {
  readonly call: (name: string, payload?: unknown) => Promise<Answer>
  readonly stop: () => void
}

const services: Array<Service> = []

/** Starts the order service against `node`, with `credential` (none: `undefined`). */
const startService = (node: RunningNode, credential: string | undefined, transport: "http" | "websocket" = "http"): Service => {
  const child: ChildProcessWithoutNullStreams = spawn(
    bunBinary,
    [join(import.meta.dirname, "orderService.ts"), node.url(), credential ?? "-", transport],
    { stdio: ["pipe", "pipe", "pipe"] }
  )
  const pending = new Map<number, (answer: Answer) => void>()
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-2000)))
  createInterface({ input: child.stdout }).on("line", (line) => {
    const parsed = decodeAnswer(line)
    pending.get(parsed.id)?.(parsed)
    pending.delete(parsed.id)
  })
  let next = 1
  const service: Service = {
    call: (name, payload) =>
      new Promise((resolve, reject) => {
        const id = next++
        const timer = setTimeout(() => reject(new Error(`${name}: no answer from the service process; stderr: ${stderr}`)), 30_000)
        pending.set(id, (answer) => {
          clearTimeout(timer)
          resolve(answer)
        })
        child.stdin.write(`${JSON.stringify({ id, call: name, payload: payload ?? {} })}\n`)
      }),
    stop: () => void child.kill("SIGKILL")
  }
  services.push(service)
  return service
}

const decodeDelivery = Schema.decodeUnknownSync(Delivery)

/** The call's reply, or a test failure saying what came back instead. */
const ok = (answer: Answer): unknown => {
  if (answer.error !== undefined) throw new Error(`refused: ${JSON.stringify(answer.error)}`)
  return answer.ok
}

const notify = async (service: Service, payload: Record<string, unknown>) =>
  decodeDelivery(ok(await service.call("notify.toUser", payload)))

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

const clients: Array<Client> = []
const clusters: Array<GatewayCluster> = []
const extraNodes: Array<RunningNode> = []

afterAll(async () => {
  for (const service of services) service.stop()
  await closeAll(clients)
  await stopNodes(extraNodes)
  await Promise.all(clusters.map((cluster) => cluster.stop()))
})

const device = (sub: string, name?: string): Claims => ({
  sub,
  weft: { subscribe: ["room:*"], publish: ["room:*"], ...(name === undefined ? {} : { device: name }) }
})

const connect = async (node: RunningNode, claims: Claims): Promise<Client> => {
  const { client } = await connectAs(node.url(), claims)
  clients.push(client)
  return client
}

const subscribe = async (client: Client, channel: string): Promise<void> => {
  const answer = await request(client, (id) => ({ type: "subscribe", id, channel }))
  if (answer.type !== "ack") throw new Error(`subscribe ${channel}: ${JSON.stringify(answer)}`)
}

const fieldOf = (frame: ServerFrame, field: string): unknown =>
  frame.type === "message" && typeof frame.data === "object" && frame.data !== null ? (frame.data as Record<string, unknown>)[field] : undefined

/** The next notification with this id on the client's `user:` channel. */
const notificationArrives = (client: Client, user: string, id: string) =>
  client.next((frame) => frame.type === "message" && frame.channel === `user:${user}` && fieldOf(frame, "id") === id, 20_000)

/** How many copies of notification `id` the client has received so far (already taken ones excluded). */
const copiesLeft = (client: Client, id: string): number =>
  client.frames.filter((frame) => frame.type === "message" && fieldOf(frame, "id") === id).length

// ---------------------------------------------------------------------------
// Two nodes, one cluster
// ---------------------------------------------------------------------------

describe("the service API on a two-node cluster", () => {
  let a: RunningNode
  let b: RunningNode
  let service: Service

  beforeAll(async () => {
    const cluster = await startGatewayCluster("api", 2, serviceKeys)
    clusters.push(cluster)
    ;[a, b] = cluster.nodes as [RunningNode, RunningNode]
    service = startService(b, ordersKey)
  })

  it("a push from another process reaches each of a user's three devices, on two nodes, exactly once", async () => {
    const devices = [
      await connect(a, device("carol", "phone")),
      await connect(a, device("carol", "tablet")),
      await connect(b, device("carol", "laptop"))
    ]
    for (const client of devices) await subscribe(client, "user:carol")

    const first = await notify(service, { userId: "carol", notification: { kind: "order.completed", data: { orderId: 7 } } })
    expect(first).toMatchObject({ status: "delivered", devices: 3, duplicate: false })
    const arrived = await Promise.all(devices.map((client) => notificationArrives(client, "carol", first.notificationId)))
    for (const frame of arrived) {
      expect(frame.type === "message" && frame.data).toEqual({
        kind: "notification",
        id: first.notificationId,
        type: "order.completed",
        data: { orderId: 7 },
        sender: "orders"
      })
      expect(frame.type === "message" && frame.from).toBe("orders")
    }
    // A second notification behind it on the same path: once it is in, any copy of the first would be too.
    const second = await notify(service, { userId: "carol", notification: { kind: "order.shipped", data: {} } })
    await Promise.all(devices.map((client) => notificationArrives(client, "carol", second.notificationId)))
    for (const client of devices) expect(copiesLeft(client, first.notificationId)).toBe(0)
  })

  it("an offline user's notifications are stored and waiting, unread, when a device connects", async () => {
    const stored = [
      await notify(service, { userId: "dave", notification: { kind: "invoice.ready", data: { n: 1 } } }),
      await notify(service, { userId: "dave", notification: { kind: "invoice.ready", data: { n: 2 } } })
    ]
    for (const delivery of stored) expect(delivery).toMatchObject({ status: "stored", devices: 0 })

    const phone = await connect(a, device("dave", "phone"))
    await subscribe(phone, "user:dave")
    for (const delivery of stored) await notificationArrives(phone, "dave", delivery.notificationId)
    const listed = await request(phone, (id) => ({ type: "rpc", id, method: "notifications.list", params: {} }))
    expect(listed.type === "reply" && listed.result).toMatchObject({ unread: 2 })
  })

  it("retries with the same idempotency key are delivered once and answer as the first call did", async () => {
    const phone = await connect(b, device("erin", "phone"))
    await subscribe(phone, "user:erin")
    const call = { userId: "erin", notification: { kind: "payment.received", data: { amount: 10 } }, idempotencyKey: "payment-42" }

    const answers = await Promise.all([notify(service, call), notify(service, call), notify(service, call)])
    answers.push(await notify(service, call))
    expect(new Set(answers.map((delivery) => delivery.notificationId)).size).toBe(1)
    expect(answers.filter((delivery) => !delivery.duplicate)).toHaveLength(1)
    expect(answers.every((delivery) => delivery.status === "delivered" && delivery.devices === 1)).toBe(true)

    const id = answers[0]!.notificationId
    await notificationArrives(phone, "erin", id)
    const later = await notify(service, { userId: "erin", notification: { kind: "sentinel", data: null } })
    await notificationArrives(phone, "erin", later.notificationId)
    expect(copiesLeft(phone, id)).toBe(0)

    // The same key from the same caller with another user is still that first call.
    const reused = await notify(service, { ...call, userId: "someone-else" })
    expect(reused).toMatchObject({ notificationId: id, duplicate: true })
  })

  it("notifies a batch of users, each once, counting who got it now and who later", async () => {
    const online = await connect(a, device("fay", "phone"))
    await subscribe(online, "user:fay")
    const answer = ok(await service.call("notify.toUsers", {
      userIds: ["fay", "gus", "fay"],
      notification: { kind: "maintenance", data: { at: "22:00" } }
    }))
    const result = Schema.decodeUnknownSync(BatchDelivery)(answer)
    expect(result).toMatchObject({ delivered: 1, queued: 1, refused: 0, devices: 1, refusals: [], duplicate: false })
    await notificationArrives(online, "fay", result.notificationId)
  })

  it("notifies a room's members and broadcasts to every connection on every node", async () => {
    const inRoom = await connect(a, device("hal"))
    await subscribe(inRoom, "room:lobby")
    const elsewhere = await connect(b, device("ida"))

    expect(ok(await service.call("notify.toRoom", { room: "lobby", notification: { kind: "sale", data: { off: 20 } } }))).toEqual({ delivered: true })
    const roomEvent = await inRoom.next((frame) => frame.type === "message" && frame.channel === "room:lobby", 20_000)
    expect(roomEvent.type === "message" && roomEvent.data).toEqual({ kind: "notification", type: "sale", data: { off: 20 } })
    expect(roomEvent.type === "message" && roomEvent.from).toBe("orders")
    expect(roomEvent.type === "message" && roomEvent.position).toBeUndefined()

    expect(ok(await service.call("notify.broadcast", { notification: { kind: "deploy", data: "v2" } }))).toEqual({ delivered: true })
    for (const client of [inRoom, elsewhere]) {
      const frame = await client.next((f) => f.type === "message" && f.channel === "broadcast", 20_000)
      expect(frame.type === "message" && frame.data).toEqual({ kind: "notification", type: "deploy", data: "v2" })
    }
  })

  it("posts to a room as a bot, and reads history, presence and the cluster's nodes", async () => {
    const member = await connect(a, device("jo", "phone"))
    await subscribe(member, "room:support")
    const sent = ok(await service.call("rooms.send", { room: "support", as: "helpdesk-bot", body: { text: "How can I help?" } }))
    const message = await member.next((frame) => frame.type === "message" && frame.channel === "room:support", 20_000)
    expect(message.type === "message" && message.from).toBe("helpdesk-bot")
    expect(sent).toMatchObject({ id: fieldOf(message, "id"), position: message.type === "message" ? message.position : undefined })

    const history = ok(await service.call("rooms.history", { room: "support" }))
    expect(history).toMatchObject({ first: 1, last: 1, messages: [{ from: "helpdesk-bot", event: { kind: "message", body: { text: "How can I help?" } } }] })

    // The other message operations, as the bot: each reaches the member as its room event.
    const id = String(fieldOf(message, "id"))
    const event = async (kind: string) => {
      const frame = await member.next((f) => f.type === "message" && f.channel === "room:support" && fieldOf(f, "kind") === kind, 20_000)
      return frame.type === "message" ? frame.data : undefined
    }
    const followUp = ok(await service.call("rooms.send", { room: "support", as: "helpdesk-bot", body: "Ticket opened", replyTo: id, thread: id }))
    expect(await event("message")).toMatchObject({ replyTo: id, thread: id, body: "Ticket opened" })
    expect(followUp).toMatchObject({ position: { offset: 2 } })
    expect(ok(await service.call("rooms.edit", { room: "support", as: "helpdesk-bot", id, body: { text: "Hello!" } }))).toMatchObject({ position: { offset: 3 } })
    expect(await event("edit")).toEqual({ kind: "edit", id, body: { text: "Hello!" } })
    expect((await service.call("rooms.edit", { room: "support", as: "someone-else", id, body: "x" })).error).toMatchObject({ reason: "forbidden" })
    ok(await service.call("rooms.pin", { room: "support", as: "helpdesk-bot", id, pinned: true }))
    expect(await event("pin")).toEqual({ kind: "pin", id, by: "helpdesk-bot" })
    expect(ok(await service.call("rooms.pins", { room: "support" }))).toMatchObject([{ id, by: "helpdesk-bot" }])
    ok(await service.call("rooms.typing", { room: "support", as: "helpdesk-bot" }))
    expect(await event("typing")).toEqual({ kind: "typing" })
    const followUpId = Schema.decodeUnknownSync(Schema.Struct({ id: Schema.String }))(followUp).id
    ok(await service.call("rooms.delete", { room: "support", as: "moderation-service", id: followUpId }))
    expect(await event("delete")).toEqual({ kind: "delete", id: followUpId, by: "moderation-service" })
    // The client checks the payload against the call's schema and refuses it as the other doors do.
    expect((await service.call("rooms.edit", { room: "support", as: "helpdesk-bot", id: "not an id", body: "x" })).error).toMatchObject({ tag: "ApiError", reason: "invalid" })

    expect(ok(await service.call("presence.room", { room: "support" }))).toEqual([{ user: "jo", devices: 1 }])
    expect(ok(await service.call("presence.user", { userId: "jo" }))).toEqual({ online: true, devices: ["phone"], connections: 1 })
    expect(ok(await service.call("presence.user", { userId: "nobody" }))).toEqual({ online: false, devices: [], connections: 0 })

    const stats = ok(await service.call("cluster.stats"))
    const nodes = Schema.decodeUnknownSync(Schema.Struct({ nodes: Schema.Array(Schema.Struct({ node: Schema.String, ready: Schema.Boolean })) }))(stats)
    expect(nodes.nodes.map((node) => node.node).sort()).toEqual(["api-0", "api-1"])
  })

  it("refuses every call without a valid service credential, and delivers nothing", async () => {
    const phone = await connect(a, device("kim", "phone"))
    await subscribe(phone, "user:kim")
    const call = { userId: "kim", notification: { kind: "spoofed", data: null } }
    const userJwt = await makeJwt({ sub: "kim" })
    for (const credential of [undefined, "not-the-key-but-long-enough-0123456789abc", userJwt]) {
      const answer = await startService(b, credential).call("notify.toUser", call)
      expect(answer.error).toMatchObject({ tag: "ApiError", reason: "unauthorized" })
    }
    // Over WebSocket the upgrade itself is refused (401), so the client never gets a socket.
    const overSocket = await startService(b, undefined, "websocket").call("cluster.stats")
    expect(overSocket.error).toMatchObject({ tag: "RpcClientError" })
    const upgrade = await tryConnect(`${b.url().replace(/^http/, "ws")}/rpc`)
    expect(isRefusal(upgrade) && upgrade.status).toBe(401)

    const real = await notify(service, { userId: "kim", notification: { kind: "real", data: null } })
    const arrived = await notificationArrives(phone, "kim", real.notificationId)
    expect(fieldOf(arrived, "type")).toBe("real")
    expect(phone.frames.filter((frame) => fieldOf(frame, "type") === "spoofed")).toEqual([])
  })

  it("a notification scheduled two seconds ahead arrives when due, not before", async () => {
    const phone = await connect(a, device("lee", "phone"))
    await subscribe(phone, "user:lee")
    const due = Date.now() + 2000
    const scheduled = await notify(service, { userId: "lee", notification: { kind: "reminder", data: {} }, deliverAt: { _tag: "Utc", at: due } })
    expect(scheduled).toMatchObject({ status: "scheduled", scheduledAt: due, devices: 0 })
    const arrived = await notificationArrives(phone, "lee", scheduled.notificationId)
    expect(arrived.type === "message" && arrived.at).toBeGreaterThanOrEqual(due)
  })

  it("local delivery times and quiet hours follow the user's time zone rules", async () => {
    // Kolkata keeps +05:30 all year, so tomorrow's 09:00 there is 03:30Z whatever today is. (The
    // daylight-saving cases are unit tests on TestClock: services/notification/test.)
    const settings = ok(await service.call("users.settings", { userId: "mia", timeZone: "Asia/Kolkata" }))
    expect(settings).toEqual({ timeZone: "Asia/Kolkata", quietHours: null })
    const tomorrow = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Kolkata" }).format(Date.now() + 86_400_000)
    const [year, month, day] = tomorrow.split("-").map(Number) as [number, number, number]
    const local = await notify(service, { userId: "mia", notification: { kind: "digest", data: {} }, deliverAt: { _tag: "Local", at: `${tomorrow}T09:00` } })
    expect(local).toMatchObject({ status: "scheduled", scheduledAt: Date.UTC(year, month - 1, day, 3, 30) })
    const tooFar = await service.call("notify.toUser", {
      userId: "mia",
      notification: { kind: "digest", data: {} },
      deliverAt: { _tag: "Local", at: `${year + 1}-${String(month).padStart(2, "0")}-01T09:00` }
    })
    expect(tooFar.error).toMatchObject({ tag: "ApiError", reason: "invalid" })
    const impossible = await service.call("notify.toUser", {
      userId: "mia",
      notification: { kind: "digest", data: {} },
      deliverAt: { _tag: "Local", at: "2030-02-30T09:00" }
    })
    expect(impossible.error).toMatchObject({ tag: "ApiError", reason: "invalid" })
    expect((await service.call("users.settings", { userId: "mia", timeZone: "+05:00" })).error).toMatchObject({ reason: "invalid" })

    // Quiet hours around now, in UTC: marketing waits for their end, the rest goes now.
    const now = Date.now()
    const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16)
    const end = Math.floor((now + 3_600_000) / 60_000) * 60_000
    ok(await service.call("users.settings", { userId: "ned", timeZone: "UTC", quietHours: { start: clock(now - 3_600_000), end: clock(end) } }))
    const marketing = await notify(service, { userId: "ned", notification: { kind: "promo", data: {}, respectQuietHours: true } })
    expect(marketing).toMatchObject({ status: "scheduled", scheduledAt: end })
    const urgent = await notify(service, { userId: "ned", notification: { kind: "security", data: {} } })
    expect(urgent.status).toBe("stored")
  })
})

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

describe("scheduled delivery across a restart", () => {
  it("is delivered once by the node started after the accepting node was killed", async () => {
    const cluster = await startGatewayCluster("restart", 1, serviceKeys)
    clusters.push(cluster)
    const [accepting] = cluster.nodes as [RunningNode]
    const service = startService(accepting, ordersKey)
    const scheduled = await notify(service, {
      userId: "ola",
      notification: { kind: "reminder", data: { n: 1 } },
      deliverAt: { _tag: "Utc", at: Date.now() + 3000 }
    })
    expect(scheduled.status).toBe("scheduled")
    service.stop()
    accepting.kill()
    await accepting.exited

    const restarted = await joinCluster(cluster.cluster, "restart-1", serviceKeys)
    extraNodes.push(restarted)
    const phone = await connect(restarted, device("ola", "phone"))
    await subscribe(phone, "user:ola")
    // Live when due after the subscribe, else in the catch-up of unread ones: either way, here.
    await notificationArrives(phone, "ola", scheduled.notificationId)
    const listed = await request(phone, (id) => ({ type: "rpc", id, method: "notifications.list", params: {} }))
    const entries = listed.type === "reply" && typeof listed.result === "object" && listed.result !== null && "entries" in listed.result
      ? listed.result.entries
      : undefined
    expect(Array.isArray(entries) && entries.length).toBe(1)
  })
})
