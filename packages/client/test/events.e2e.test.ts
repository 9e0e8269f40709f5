/**
 * The typed events and the room/user helpers against a real Bun node, the
 * SDK under Node on `ws`: presence join/leave between users (one with two
 * devices), a service's notifications through the service API (`@weft/api`'s
 * typed client with a service key) reaching `notification` once, the
 * offline inbox on connect, missed ones once after a reconnect, room and
 * broadcast notifications, a signal to one device of another user with no
 * subscription, and a room's messages sent, replied to, edited, pinned and
 * read back from history by two SDK clients.
 */
import { makeWeftClient, type WeftApiClient } from "@weft/api"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../../../test/support/bunNode.ts"
import type {
  ChannelMessage,
  NotificationEvent,
  PresenceEvent,
  SignalEvent,
  UserNotificationEvent,
  WeftClient,
  WeftEvents
} from "../src/index.ts"
import { isWeftError } from "../src/index.ts"
import { eventually, nextEvent, sdkClient, startSingleNode, stopAll } from "./support/nodes.ts"

/** The `orders` service's key, given to the node with `--service-keys`. */
const serviceKey = "orders-client-e2e-key-0123456789abcdefghij"

// The server's heartbeat is 1 s: a client that stays silent is closed (4001) after 2 s.
let node: RunningNode
beforeAll(async () => {
  node = await startSingleNode(["--service-keys", `orders=${serviceKey}`, "--heartbeat-ms", "1000"])
}, 30_000)
afterAll(stopAll)

const unique = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 8)}`

const withApi = <A, E>(use: (weft: WeftApiClient) => Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(makeWeftClient({ url: node.url(), credential: serviceKey }), use)))

const notifyUser = (userId: string, data: unknown) =>
  withApi((weft) => weft.notify.toUser({ userId, notification: { kind: "order.completed", data } }))

/** Every event of `type` the client emits from now on. */
const collect = <K extends "presence" | "notification" | "signal">(client: WeftClient, type: K) => {
  const got: Array<WeftEvents[K]> = []
  client.on(type, (event) => got.push(event))
  return got
}

const userNotifications = (events: ReadonlyArray<NotificationEvent>): Array<UserNotificationEvent> =>
  events.flatMap((event) => (event.scope === "user" ? [event] : []))

const rooms = { subscribe: ["room:*"], publish: ["room:*"] }

describe("typed events against a real node", () => {
  it("presence: a user joins with their first device and leaves with their last; others are told once", async () => {
    const room = unique("presence")
    const observer = sdkClient(node.url(), { sub: unique("olga"), weft: rooms })
    const bobId = unique("bob")
    const bobPhone = sdkClient(node.url(), { sub: bobId, weft: { device: "phone", ...rooms } })
    const bobLaptop = sdkClient(node.url(), { sub: bobId, weft: { device: "laptop", ...rooms } })
    const carolId = unique("carol")
    const carol = sdkClient(node.url(), { sub: carolId, weft: rooms })
    await Promise.all([observer, bobPhone, bobLaptop, carol].map((c) => c.client.connect()))
    const presence = collect(observer.client, "presence")
    await observer.client.subscribe(`presence:room:${room}`, () => undefined).ready

    const phoneSub = bobPhone.client.subscribe(`room:${room}`, () => undefined)
    await phoneSub.ready
    await eventually("bob's join", () => presence.length === 1)
    await bobLaptop.client.subscribe(`room:${room}`, () => undefined).ready
    // Carol's join comes after anything bob's second device could have caused (the room sends its events in order).
    const carolSub = carol.client.subscribe(`room:${room}`, () => undefined)
    await carolSub.ready
    await eventually("carol's join", () => presence.some((event) => event.user === carolId))
    expect(await observer.client.rooms.presence(room)).toEqual(
      expect.arrayContaining([{ user: bobId, devices: 2 }, { user: carolId, devices: 1 }])
    )

    // Bob's phone leaves: he is still there on his laptop. Carol's leave again orders the events.
    await phoneSub.unsubscribe()
    await carolSub.unsubscribe()
    await eventually("carol's leave", () => presence.some((event) => event.user === carolId && event.kind === "leave"))
    // His last device goes away: he leaves.
    await bobLaptop.client.close()
    await eventually("bob's leave", () => presence.length === 4, 15_000)

    const expected = (kind: "join" | "leave", user: string, devices: number) => ({ room, kind, user, devices, at: expect.any(Number) })
    expect(presence).toEqual([expected("join", bobId, 1), expected("join", carolId, 1), expected("leave", carolId, 0), expected("leave", bobId, 0)])
    expect(presence.every((event: PresenceEvent) => Math.abs(event.at - Date.now()) < 60_000)).toBe(true)
    expect(observer.errors).toEqual([])
    expect(await observer.client.rooms.presence(room)).toEqual([])
  })

  it("a service's notification reaches `notification` once: the offline inbox on connect, then live ones", async () => {
    const userId = unique("nina")
    // Nina is offline: the notification waits in her inbox.
    const waiting = await notifyUser(userId, { orderId: 1 })
    expect(waiting).toMatchObject({ status: "stored", devices: 0, duplicate: false })

    const nina = sdkClient(node.url(), { sub: userId, weft: { device: "phone" } })
    const events = collect(nina.client, "notification")
    const reads: Array<unknown> = []
    nina.client.on("read", (event) => reads.push(event))
    await nina.client.connect()
    await nina.client.subscribe(`user:${userId}`, () => undefined).ready
    await eventually("the waiting notification", () => events.length === 1)
    expect(events[0]).toEqual({
      scope: "user",
      id: waiting.notificationId,
      type: "order.completed",
      data: { orderId: 1 },
      sender: "orders",
      position: { epoch: expect.any(String), offset: expect.any(Number) },
      at: expect.any(Number)
    })

    const live = await notifyUser(userId, { orderId: 2 })
    expect(live).toMatchObject({ status: "delivered", devices: 1 })
    // A third one after it: a repeat of the second would have come before it.
    const third = await notifyUser(userId, { orderId: 3 })
    await eventually("the live notifications", () => events.length >= 3)
    const mine = userNotifications(events)
    expect(mine.map((event) => event.id)).toEqual([waiting.notificationId, live.notificationId, third.notificationId])
    expect(mine.map((event) => event.data)).toEqual([{ orderId: 1 }, { orderId: 2 }, { orderId: 3 }])
    const offsets = mine.map((event) => event.position.offset)
    expect(offsets).toEqual([offsets[0], offsets[0]! + 1, offsets[0]! + 2])

    // Marking one read: every device hears the new count; the inbox agrees.
    await expect(nina.client.notifications.read([waiting.notificationId])).resolves.toEqual({ unread: 2 })
    await eventually("the read event", () => reads.length === 1)
    expect(reads).toEqual([{ ids: [waiting.notificationId], unread: 2, at: expect.any(Number) }])
    const inbox = await nina.client.notifications.list()
    expect(inbox.unread).toBe(2)
    expect(inbox.position).toEqual(mine[2]!.position)
    expect(inbox.entries.map((entry) => [entry.notification.id, entry.read, entry.notification.sender])).toEqual([
      [waiting.notificationId, true, "orders"],
      [live.notificationId, false, "orders"],
      [third.notificationId, false, "orders"]
    ])
    expect(events).toHaveLength(3)
    expect(nina.errors).toEqual([])
  })

  it("notifications sent while the client reconnects arrive once, after it resubscribes from its position", async () => {
    const userId = unique("otto")
    // No pings: the server closes the connection (4001) after 2 s of silence; the client is back 2.7 s later.
    const otto = sdkClient(node.url(), { sub: userId, weft: { device: "phone" } }, {
      heartbeat: false,
      reconnect: { baseMs: 3000, capMs: 3000 },
      random: () => 0.9
    })
    const events = collect(otto.client, "notification")
    await otto.client.connect()
    const sub = otto.client.subscribe(`user:${userId}`, () => undefined)
    await sub.ready
    const first = await notifyUser(userId, { n: 1 })
    await eventually("the first notification", () => events.length === 1)

    const restored = nextEvent(otto.client, "subscribed", (event) => event.restored, 15_000)
    await nextEvent(otto.client, "disconnected", () => true, 10_000)
    const missed = await notifyUser(userId, { n: 2 })
    expect(otto.client.state).not.toBe("connected")
    expect(await restored).toMatchObject({ channel: `user:${userId}`, since: userNotifications(events)[0]!.position, recovery: "ok" })
    const after = await notifyUser(userId, { n: 3 })
    await eventually("every notification", () => events.length >= 3)
    // Give a repeat the chance to show: a fourth goes the same way, after any replay.
    const fourth = await notifyUser(userId, { n: 4 })
    await eventually("the fourth", () => events.length >= 4)
    expect(userNotifications(events).map((event) => event.id)).toEqual([
      first.notificationId,
      missed.notificationId,
      after.notificationId,
      fourth.notificationId
    ])
    expect(otto.disconnects[0]).toMatchObject({ code: 4001 })
    expect(otto.errors).toEqual([])
  })

  it("room and broadcast notifications: the room named; a broadcast without subscribing", async () => {
    const room = unique("lobby")
    const member = sdkClient(node.url(), { sub: unique("mia"), weft: rooms })
    const bystander = sdkClient(node.url(), { sub: unique("ben"), weft: rooms })
    await Promise.all([member.client.connect(), bystander.client.connect()])
    const memberEvents = collect(member.client, "notification")
    const bystanderEvents = collect(bystander.client, "notification")
    await member.client.subscribe(`room:${room}`, () => undefined).ready

    expect(await withApi((weft) => weft.notify.toRoom({ room, notification: { kind: "sale", data: { off: 20 } } }))).toEqual({ delivered: true })
    await eventually("the room notification", () => memberEvents.length === 1)
    expect(memberEvents[0]).toEqual({ scope: "room", room, type: "sale", data: { off: 20 }, sender: "orders", at: expect.any(Number) })

    const version = unique("v")
    expect(await withApi((weft) => weft.notify.broadcast({ notification: { kind: "deploy", data: version } }))).toEqual({ delivered: true })
    const isMine = (event: NotificationEvent) => event.scope === "broadcast" && event.data === version
    await eventually("the broadcast on both", () => memberEvents.some(isMine) && bystanderEvents.some(isMine))
    expect(bystanderEvents.filter(isMine)).toEqual([{ scope: "broadcast", type: "deploy", data: version, sender: "orders", at: expect.any(Number) }])
    // The bystander subscribed to nothing: the broadcast came anyway, and no room notification.
    await expect(bystander.client.rpc("conn.info")).resolves.toMatchObject({ subscriptions: [] })
    expect(bystanderEvents.filter((event) => event.scope === "room")).toEqual([])
    expect(member.errors).toEqual([])
    expect(bystander.errors).toEqual([])
  })

  it("a signal reaches the other user's device on `signal` without it subscribing; `device` picks one device", async () => {
    const aliceId = unique("alice")
    const bobId = unique("bob")
    const alice = sdkClient(node.url(), { sub: aliceId, weft: { device: "phone", publish: ["signal:*"] } })
    const laptop = sdkClient(node.url(), { sub: bobId, weft: { device: "laptop" } })
    const tablet = sdkClient(node.url(), { sub: bobId, weft: { device: "tablet" } })
    await Promise.all([alice.client.connect(), laptop.client.connect(), tablet.client.connect()])
    const onLaptop = collect(laptop.client, "signal")
    const onTablet = collect(tablet.client, "signal")

    await expect(alice.client.signal(bobId, { sdp: "v=0 ..." }, { device: "laptop" })).resolves.toEqual({ devices: 1 })
    await eventually("the offer on the laptop", () => onLaptop.length === 1)
    const offer: SignalEvent = { from: aliceId, fromDevice: "phone", data: { sdp: "v=0 ..." }, at: expect.any(Number) }
    expect(onLaptop).toEqual([offer])
    // Without `device`: every device of the user. The tablet's first signal is this one.
    await expect(alice.client.signal(bobId, { bye: true })).resolves.toEqual({ devices: 2 })
    await eventually("both devices", () => onLaptop.length === 2 && onTablet.length === 1)
    expect(onTablet).toEqual([{ from: aliceId, fromDevice: "phone", data: { bye: true }, at: expect.any(Number) }])
    expect(onLaptop[1]).toMatchObject({ data: { bye: true } })
    await expect(laptop.client.rpc("conn.info")).resolves.toMatchObject({ subscriptions: [] })
    // Without the publish permission on signal:<user>: refused.
    const refused = await laptop.client.signal(aliceId, "no").catch((error: unknown) => error)
    expect(isWeftError(refused, "forbidden")).toBe(true)
    expect(refused).toMatchObject({ method: "signal.send" })
    expect([...alice.errors, ...laptop.errors, ...tablet.errors]).toEqual([])
  })

  it("room helpers: send, reply, thread, edit, pin, typing, delete, pins, history and presence between two clients", async () => {
    const room = unique("helpers")
    const aliceId = unique("alice")
    const bobId = unique("bob")
    const alice = sdkClient(node.url(), { sub: aliceId, weft: { device: "laptop", ...rooms } })
    const bob = sdkClient(node.url(), { sub: bobId, weft: rooms })
    await Promise.all([alice.client.connect(), bob.client.connect()])
    const live: Array<ChannelMessage> = []
    await bob.client.subscribe(`room:${room}`, (message) => live.push(message)).ready

    const sent = await alice.client.rooms.send(room, { text: "See you at 10" })
    expect(sent.id).toBe(`${sent.position.epoch}-${sent.position.offset}`)
    await eventually("bob has the message", () => live.length === 1)
    expect(live[0]).toEqual({
      channel: `room:${room}`,
      data: { kind: "message", id: sent.id, body: { text: "See you at 10" }, device: "laptop" },
      from: aliceId,
      position: sent.position,
      at: sent.at
    })
    const reply = await bob.client.rooms.send(room, "ok", { replyTo: sent.id })
    const followUp = await bob.client.rooms.send(room, "where?", { thread: sent.id })
    const edited = await alice.client.rooms.edit(room, sent.id, { text: "See you at 11" })
    // Only the author edits.
    const notTheAuthor = await bob.client.rooms.edit(room, sent.id, "mine").catch((error: unknown) => error)
    expect(notTheAuthor).toMatchObject({ name: "forbidden", origin: "server", method: "room.edit" })
    const pinned = await bob.client.rooms.pin(room, sent.id)
    await alice.client.rooms.typing(room)
    const deleted = await bob.client.rooms.delete(room, followUp.id)
    const missing = await alice.client.rooms.pin(room, followUp.id).catch((error: unknown) => error)
    expect(missing).toMatchObject({ name: "not_found", method: "room.pin" })
    expect([reply, followUp, edited, pinned, deleted].map((accepted) => accepted.position.offset)).toEqual(
      [1, 2, 3, 4, 5].map((n) => sent.position.offset + n)
    )

    expect(await alice.client.rooms.pins(room)).toEqual([{ id: sent.id, by: bobId, at: pinned.at }])
    expect(await alice.client.rooms.presence(room)).toEqual([{ user: bobId, devices: 1 }])

    await eventually("bob has every event", () => live.length === 7)
    const stored = live.filter((message) => message.position !== undefined)
    expect(live.filter((message) => message.position === undefined).map((message) => [message.data, message.from])).toEqual([
      [{ kind: "typing", device: "laptop" }, aliceId]
    ])
    expect(stored.map((message) => message.data)).toEqual([
      { kind: "message", id: sent.id, body: { text: "See you at 10" }, device: "laptop" },
      { kind: "message", id: reply.id, body: "ok", replyTo: sent.id },
      { kind: "message", id: followUp.id, body: "where?", thread: sent.id },
      { kind: "edit", id: sent.id, body: { text: "See you at 11" } },
      { kind: "pin", id: sent.id, by: bobId },
      { kind: "delete", id: followUp.id, by: bobId }
    ])
    // History gives the same stored events as they came live, oldest first.
    const history = await alice.client.rooms.history(room)
    expect(history).toMatchObject({ epoch: sent.position.epoch, last: deleted.position.offset })
    expect(history.messages).toEqual(stored)
    const page = await alice.client.rooms.history(room, { after: sent.position.offset, limit: 2 })
    expect(page.messages).toEqual(stored.slice(1, 3))
    await expect(alice.client.rooms.unpin(room, sent.id)).resolves.toMatchObject({ position: { offset: deleted.position.offset + 1 } })
    expect(await bob.client.rooms.pins(room)).toEqual([])
    expect([...alice.errors, ...bob.errors]).toEqual([])
  })
})
