/**
 * Credentials on the in-memory socket: the connection's expiry from `welcome`, `refresh-required`
 * answered with the app's `getToken` (in place: same socket, subscriptions kept), refusals and
 * retries before the deadline, no `getToken` (the connection expires and the client reconnects
 * with a new ticket), `client.refresh(token)`, subscriptions the server ends (`unsubscribed`),
 * and a revocation (`revoked`/`banned`: no reconnect).
 */
import { describe, expect, it } from "vitest"
import type { RefreshEvent, RefreshRequiredEvent, UnsubscribedEvent } from "../src/index.ts"
import { type ChannelMessage, isWeftError, WeftError } from "../src/index.ts"
import { flush, sentOfType, welcomeFrame } from "./support/fakes.ts"
import { advance, harness } from "./support/harness.ts"

const expiring = (expiresAt: number) => ({ ...welcomeFrame("node-a", 1_000_000), expiresAt })

/** A harness with `getToken` counting its calls, and the credential events recorded. */
const withTokens = (getToken?: () => string | Promise<string>) => {
  const h = harness({ reconnect: { baseMs: 100, capMs: 1000 }, ...(getToken === undefined ? {} : { getToken }) })
  const required: Array<RefreshRequiredEvent> = []
  const refreshes: Array<RefreshEvent> = []
  const unsubscribed: Array<UnsubscribedEvent> = []
  h.client.on("refreshRequired", (event) => required.push(event))
  h.client.on("refresh", (event) => refreshes.push(event))
  h.client.on("unsubscribed", (event) => unsubscribed.push(event))
  return { h, required, refreshes, unsubscribed }
}

describe("expiry and refresh", () => {
  it("the connection's expiry comes from the welcome; without exp there is none", async () => {
    const { h } = withTokens()
    await h.connectNow(expiring(120_000))
    expect(h.client.info?.expiresAt).toBe(120_000)
    const other = withTokens()
    await other.h.connectNow()
    expect(other.h.client.info).not.toHaveProperty("expiresAt")
  })

  it("refresh-required is answered with getToken's JWT: the ack's expiry is the connection's, on the same socket", async () => {
    let calls = 0
    const { h, refreshes, required } = withTokens(() => `jwt-${++calls}`)
    await h.connectNow(expiring(120_000))
    const messages: Array<ChannelMessage> = []
    const sub = h.client.subscribe("room:a", (message) => messages.push(message))
    const socket = h.ws.last()
    const [subscribe] = sentOfType(socket, "subscribe")
    socket.receive({ type: "ack", id: subscribe!.id })
    await sub.ready

    socket.receive({ type: "refresh-required", expiresAt: 120_000, deadline: 130_000 })
    await flush()
    expect(required).toEqual([{ expiresAt: 120_000, deadline: 130_000 }])
    const [refresh] = sentOfType(socket, "refresh")
    expect(refresh).toEqual({ type: "refresh", id: refresh!.id, token: "jwt-1" })
    socket.receive({ type: "ack", id: refresh!.id, expiresAt: 900_000 })
    await flush()
    expect(refreshes).toEqual([{ ok: true, expiresAt: 900_000 }])
    expect(h.client.info?.expiresAt).toBe(900_000)

    // The same connection, the subscription still delivering; no new ticket.
    socket.receive({ type: "message", channel: "room:a", data: 1, at: 1 })
    expect(messages.map((message) => message.data)).toEqual([1])
    expect(h.ws.sockets).toHaveLength(1)
    expect(h.ticketCalls).toHaveLength(1)
    expect(sub.active).toBe(true)
    // A refreshed JWT without exp: the connection no longer expires.
    socket.receive({ type: "refresh-required", expiresAt: 900_000, deadline: 910_000 })
    await flush()
    const [, second] = sentOfType(socket, "refresh")
    expect(second?.token).toBe("jwt-2")
    socket.receive({ type: "ack", id: second!.id })
    await flush()
    expect(refreshes.at(-1)).toEqual({ ok: true })
    expect(h.client.info).not.toHaveProperty("expiresAt")
  })

  it("a refused refresh (wrong_user) is reported and not retried: the connection expires, and the client comes back with a new ticket", async () => {
    const { h, refreshes } = withTokens(() => "someone-elses-jwt")
    await h.connectNow(expiring(120_000))
    const socket = h.ws.last()
    socket.receive({ type: "refresh-required", expiresAt: 120_000, deadline: 130_000 })
    await flush()
    const [refresh] = sentOfType(socket, "refresh")
    socket.receive({ type: "error", id: refresh!.id, code: 2006, name: "wrong_user", message: "the token is for another user" })
    await flush()
    expect(refreshes).toEqual([{ ok: false, error: expect.objectContaining({ code: 2006, name: "wrong_user", origin: "server" }) }])
    await advance(h, 60_000)
    expect(sentOfType(socket, "refresh")).toHaveLength(1)

    socket.receive({ type: "goodbye", reason: "credentials-expired", reconnect: true })
    socket.serverClose(4003, "credentials expired")
    await flush()
    expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: 500 })
    await advance(h, 500)
    expect(h.ws.sockets).toHaveLength(2)
    expect(h.ws.last().ticket()).toBe("ticket-2")
  })

  it("a transient failure (unavailable, getToken throwing) is retried with backoff, but not past the deadline", async () => {
    let calls = 0
    const { h, refreshes } = withTokens(() => {
      calls++
      if (calls === 1) throw new Error("the identity provider is down")
      return `jwt-${calls}`
    })
    await h.connectNow(expiring(120_000))
    const socket = h.ws.last()
    socket.receive({ type: "refresh-required", expiresAt: 4_000, deadline: 5_000 })
    await flush()
    expect(refreshes).toEqual([{ ok: false, error: expect.objectContaining({ name: "token_failed", origin: "client" }) }])
    expect(sentOfType(socket, "refresh")).toEqual([])
    // Backoff 0.5 x 100 ms, then getToken again.
    await advance(h, 50)
    const [refresh] = sentOfType(socket, "refresh")
    expect(refresh?.token).toBe("jwt-2")
    socket.receive({ type: "error", id: refresh!.id, code: 4002, name: "unavailable", message: "the JWKS cannot be fetched" })
    await flush()
    await advance(h, 100)
    expect(sentOfType(socket, "refresh").map((frame) => frame.token)).toEqual(["jwt-2", "jwt-3"])
    // The server keeps failing: retries go on until the next one would land past the deadline (5 s).
    const fail = () => {
      const last = sentOfType(socket, "refresh").at(-1)!
      socket.receive({ type: "error", id: last.id, code: 4002, name: "unavailable", message: "still down" })
    }
    while (h.clock.now() < 5_000) {
      fail()
      await advance(h, 50)
    }
    const sent = sentOfType(socket, "refresh").length
    expect(sent).toBeGreaterThan(5)
    fail()
    await advance(h, 60_000)
    expect(sentOfType(socket, "refresh")).toHaveLength(sent)
    expect(h.client.state).toBe("connected")
    expect(refreshes.every((event) => !event.ok)).toBe(true)
  })

  it("without getToken the client does not refresh: the connection expires and comes back with a new ticket, subscriptions restored", async () => {
    const { h, required } = withTokens()
    await h.connectNow(expiring(120_000))
    h.client.subscribe("room:a", () => undefined)
    const socket = h.ws.last()
    const [subscribe] = sentOfType(socket, "subscribe")
    socket.receive({ type: "ack", id: subscribe!.id })
    socket.receive({ type: "refresh-required", expiresAt: 120_000, deadline: 130_000 })
    await flush()
    expect(required).toHaveLength(1)
    expect(sentOfType(socket, "refresh")).toEqual([])
    socket.receive({ type: "goodbye", reason: "credentials-expired", reconnect: true })
    socket.serverClose(4003, "credentials expired")
    await flush()
    await advance(h, 1000)
    expect(h.ticketCalls).toHaveLength(2)
    h.ws.last().accept(expiring(1_000_000))
    await flush()
    expect(h.client.state).toBe("connected")
    expect(sentOfType(h.ws.last(), "subscribe").map((frame) => frame.channel)).toEqual(["room:a"])
    expect(h.client.info?.expiresAt).toBe(1_000_000)
  })

  it("client.refresh(token) refreshes now; it rejects with the server's refusal, or when not connected", async () => {
    const { h, refreshes } = withTokens()
    await expect(h.client.refresh("jwt")).rejects.toMatchObject({ name: "disconnected" })
    await h.connectNow(expiring(120_000))
    const socket = h.ws.last()
    const renewed = h.client.refresh("jwt-a")
    const [refresh] = sentOfType(socket, "refresh")
    expect(refresh?.token).toBe("jwt-a")
    socket.receive({ type: "ack", id: refresh!.id, expiresAt: 500_000 })
    await expect(renewed).resolves.toEqual({ expiresAt: 500_000 })
    expect(h.client.info?.expiresAt).toBe(500_000)
    const refused = h.client.refresh("garbage")
    const [, second] = sentOfType(socket, "refresh")
    socket.receive({ type: "error", id: second!.id, code: 2005, name: "invalid_credentials", message: "the token is not a well-formed JWT" })
    const error = await refused.catch((cause: unknown) => cause)
    expect(isWeftError(error, "invalid_credentials")).toBe(true)
    expect(error).toMatchObject({ code: 2005, category: "channel" })
    expect(refreshes.map((event) => event.ok)).toEqual([true, false])
    // The connection keeps its last good expiry.
    expect(h.client.info?.expiresAt).toBe(500_000)
  })
})

describe("subscriptions the server ends", () => {
  it("unsubscribed: the handlers stop, ready rejects if pending, `ended` says forbidden, and it is not restored", async () => {
    const { h, unsubscribed } = withTokens()
    await h.connectNow()
    const got: Array<unknown> = []
    const kept = h.client.subscribe("topic:a", (message) => got.push(["a", message.data]))
    const ended = h.client.subscribe("topic:b", (message) => got.push(["b", message.data]))
    const socket = h.ws.last()
    for (const frame of sentOfType(socket, "subscribe")) socket.receive({ type: "ack", id: frame.id })
    await Promise.all([kept.ready, ended.ready])

    socket.receive({ type: "unsubscribed", channel: "topic:b", reason: "forbidden" })
    socket.receive({ type: "message", channel: "topic:b", data: 1, at: 1 })
    socket.receive({ type: "message", channel: "topic:a", data: 2, at: 2 })
    expect(got).toEqual([["a", 2]])
    expect(ended.active).toBe(false)
    expect(ended.ended).toBeInstanceOf(WeftError)
    expect(ended.ended).toMatchObject({ code: 2000, name: "forbidden", origin: "server", channel: "topic:b" })
    expect(kept.ended).toBeUndefined()
    expect(unsubscribed).toEqual([{ channel: "topic:b", reason: "forbidden", error: ended.ended }])
    // The app's own unsubscribe of an ended subscription sends nothing.
    await ended.unsubscribe()
    expect(sentOfType(socket, "unsubscribe")).toEqual([])

    // A subscription still waiting for its ack is rejected with the reason.
    const pending = h.client.subscribe("topic:c", () => undefined)
    socket.receive({ type: "unsubscribed", channel: "topic:c", reason: "forbidden" })
    await expect(pending.ready).rejects.toMatchObject({ name: "forbidden" })

    // After a reconnect only what is left is subscribed again.
    socket.serverClose(1006)
    await flush()
    await advance(h, 1000)
    h.ws.last().accept()
    await flush()
    expect(sentOfType(h.ws.last(), "subscribe").map((frame) => frame.channel)).toEqual(["topic:a"])
  })
})

describe("revocation", () => {
  for (const reason of ["revoked", "banned"] as const) {
    it(`goodbye ${reason} (reconnect: false): the client stops, and says why`, async () => {
      const { h } = withTokens(() => "jwt")
      await h.connectNow()
      const socket = h.ws.last()
      socket.receive({ type: "goodbye", reason, reconnect: false })
      socket.serverClose(4004, reason)
      await flush()
      expect(h.client.state).toBe("disconnected")
      expect(h.states.at(-1)?.error?.message).toContain(reason)
      await advance(h, 600_000)
      expect(h.ws.sockets).toHaveLength(1)
      expect(h.ticketCalls).toHaveLength(1)
    })
  }
})
