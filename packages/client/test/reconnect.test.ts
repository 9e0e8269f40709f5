/**
 * Reconnecting, without a network: exponential backoff with full jitter (an
 * injected random and clock), the cap, giving up after `maxAttempts`, the
 * backoff reset after a long connection, the server's goodbye advice, a new
 * ticket per attempt, URL rotation, and the network/visibility hints.
 */
import fc from "fast-check"
import { afterEach, describe, expect, it, vi } from "vitest"
import { backoffDelay, browserHints, goodbyeDelay, type Hint, type HintSource, isWeftError } from "../src/index.ts"
import { flush, scriptedRandom, sentOfType, welcomeFrame } from "./support/fakes.ts"
import { advance, harness } from "./support/harness.ts"

describe("backoffDelay", () => {
  it("is full jitter: random x min(cap, base x 2^attempt)", () => {
    const options = { baseMs: 100, capMs: 1000 }
    expect([0, 1, 2, 3, 4, 10].map((attempt) => backoffDelay(attempt, options, () => 0.5))).toEqual([50, 100, 200, 400, 500, 500])
    // The whole range, from 0 up to just under the ceiling (equal jitter would never go below half).
    expect(backoffDelay(3, options, () => 0)).toBe(0)
    expect(backoffDelay(3, options, () => 0.9999)).toBe(799)
    expect(backoffDelay(50, options, () => 0.9999)).toBe(999)
    expect(backoffDelay(5000, options, () => 0.9999)).toBe(999)
  })

  it("stays in [0, min(cap, base x 2^attempt)) for any attempt and random", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        (attempt, r, baseMs, capMs) => {
          const delay = backoffDelay(attempt, { baseMs, capMs }, () => r)
          const ceiling = Math.min(capMs, baseMs * 2 ** attempt)
          return Number.isInteger(delay) && delay >= 0 && delay < ceiling && delay === Math.floor(r * ceiling)
        }
      )
    )
  })

  it("goodbye advice: after plus jitter up to after (up to 1000 ms when after is 0 or absent)", () => {
    expect(goodbyeDelay(2000, () => 0)).toBe(2000)
    expect(goodbyeDelay(2000, () => 0.5)).toBe(3000)
    expect(goodbyeDelay(2000, () => 0.9999)).toBe(3999)
    expect(goodbyeDelay(undefined, () => 0.5)).toBe(500)
    expect(goodbyeDelay(0, () => 0.9999)).toBe(999)
  })
})

describe("the client's reconnect schedule", () => {
  it("waits random x min(cap, base x 2^n) before attempt n+1, with a new ticket each time, and gives up after maxAttempts", async () => {
    const h = harness({
      reconnect: { baseMs: 100, capMs: 1000, maxAttempts: 6 },
      random: scriptedRandom([0.5, 0.25, 0.75, 0.1, 0.9999])
    })
    const connecting = h.client.connect()
    let rejected: unknown
    connecting.catch((error: unknown) => (rejected = error))
    await flush()
    const expected = [50, 50, 300, 80, 999]
    for (const [n, delay] of expected.entries()) {
      expect(h.ws.sockets).toHaveLength(n + 1)
      h.ws.last().refuse()
      await flush()
      expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: delay, attempt: n + 1 })
      // Not a moment early...
      if (delay > 0) await advance(h, delay - 1)
      expect(h.ws.sockets).toHaveLength(n + 1)
      // ...and right on time.
      await advance(h, 1)
      expect(h.ws.sockets).toHaveLength(n + 2)
    }
    h.ws.last().refuse()
    await flush()
    expect(h.client.state).toBe("disconnected")
    expect(isWeftError(rejected, "connect_failed")).toBe(true)
    await advance(h, 60_000)
    expect(h.ws.sockets).toHaveLength(6)
    // getTicket before every attempt; each socket used its own ticket.
    expect(h.ticketCalls.map((call) => call.attempt)).toEqual([0, 1, 2, 3, 4, 5])
    expect(h.ws.sockets.map((socket) => socket.ticket())).toEqual(["ticket-1", "ticket-2", "ticket-3", "ticket-4", "ticket-5", "ticket-6"])
    // connect() starts again from `disconnected`.
    const again = h.client.connect()
    await flush()
    h.ws.last().accept()
    await expect(again).resolves.toMatchObject({ node: "node-a" })
  })

  it("caps the delay", async () => {
    const h = harness({ reconnect: { baseMs: 1000, capMs: 3000 }, random: () => 0.9999 })
    void h.client.connect()
    await flush()
    const delays: Array<number | undefined> = []
    for (let n = 0; n < 6; n++) {
      h.ws.last().refuse()
      await flush()
      delays.push(h.states.at(-1)?.delayMs)
      await advance(h, 3000)
    }
    expect(delays).toEqual([999, 1999, 2999, 2999, 2999, 2999])
  })

  it("keeps growing the backoff across short connections and resets it after a connection stayed up resetAfterMs", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 100_000, resetAfterMs: 60_000 }, heartbeat: false })
    await h.connectNow()
    h.ws.last().serverClose(1006)
    await flush()
    expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: 50 })
    await advance(h, 50)
    h.ws.last().accept()
    await flush()
    h.ws.last().serverClose(1006)
    await flush()
    expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: 100 })
    await advance(h, 100)
    h.ws.last().accept()
    await advance(h, 60_000)
    h.ws.last().serverClose(1011)
    await flush()
    expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: 50 })
  })

  it("follows the server's goodbye: after + jitter when it says to come back", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 1000 } })
    const goodbyes: Array<unknown> = []
    h.client.on("goodbye", (advice) => goodbyes.push(advice))
    await h.connectNow()
    h.ws.last().receive({ type: "goodbye", reason: "draining", reconnect: true, after: 2000 })
    h.ws.last().serverClose(1001, "server shutting down")
    await flush()
    expect(goodbyes).toEqual([{ reason: "draining", reconnect: true, after: 2000 }])
    // 2000 + 0.5 x 2000, not the backoff's 50.
    expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: 3000 })
    await advance(h, 2999)
    expect(h.ws.sockets).toHaveLength(1)
    await advance(h, 1)
    expect(h.ws.sockets).toHaveLength(2)
    expect(h.ws.last().ticket()).toBe("ticket-2")
    h.ws.last().accept()
    await flush()
    // Without `after`: 0 + 0.5 x 1000.
    h.ws.last().receive({ type: "goodbye", reason: "slow-consumer", reconnect: true })
    h.ws.last().serverClose(4002)
    await flush()
    expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: 500 })
  })

  it("after a goodbye, new requests wait for the next connection; those already sent get their answers", async () => {
    const h = harness({ reconnect: { baseMs: 100, capMs: 1000 } })
    await h.connectNow()
    const leaving = h.ws.last()
    const before = h.client.publish("room:a", 1)
    const [sent] = sentOfType(leaving, "publish")
    leaving.receive({ type: "goodbye", reason: "draining", reconnect: true, after: 0 })
    await flush()
    const after = h.client.publish("room:a", 2)
    await flush()
    expect(sentOfType(leaving, "publish").map((frame) => frame.data)).toEqual([1])
    leaving.receive({ type: "ack", id: sent!.id })
    await expect(before).resolves.toEqual({})
    leaving.serverClose(1001, "server shutting down")
    await advance(h, 1000)
    const next = h.ws.last()
    expect(next).not.toBe(leaving)
    next.accept()
    await flush()
    const [resent] = sentOfType(next, "publish")
    expect(resent).toMatchObject({ channel: "room:a", data: 2 })
    next.receive({ type: "ack", id: resent!.id })
    await expect(after).resolves.toEqual({})
  })

  it("does not come back when the goodbye says not to", async () => {
    const h = harness()
    await h.connectNow()
    const disconnected: Array<unknown> = []
    h.client.on("disconnected", (event) => disconnected.push(event))
    h.ws.last().receive({ type: "goodbye", reason: "policy", reconnect: false })
    h.ws.last().serverClose(1008)
    await flush()
    expect(h.client.state).toBe("disconnected")
    expect(h.errors.map((error) => error.name)).toEqual(["connect_failed"])
    expect(disconnected).toEqual([{ code: 1008, reason: "", goodbye: { reason: "policy", reconnect: false } }])
    await advance(h, 600_000)
    expect(h.ws.sockets).toHaveLength(1)
  })

  it("with reconnect: false, stops at the first drop", async () => {
    const h = harness({ reconnect: false })
    await h.connectNow()
    h.ws.last().serverClose(1006)
    await flush()
    expect(h.client.state).toBe("disconnected")
    await advance(h, 600_000)
    expect(h.ws.sockets).toHaveLength(1)
  })

  it("takes the next URL of the list for each attempt, and asks getUrl when given", async () => {
    const h = harness({ url: ["http://127.0.0.1:1", "wss://b.example/custom/path"], random: () => 0 })
    void h.client.connect()
    for (let i = 0; i < 3; i++) {
      await flush()
      h.ws.last().refuse()
      await advance(h, 0)
    }
    expect(h.ws.sockets.map((socket) => `${new URL(socket.url).origin}${new URL(socket.url).pathname}`)).toEqual([
      "ws://127.0.0.1:1/v1/ws",
      "wss://b.example/custom/path",
      "ws://127.0.0.1:1/v1/ws",
      "wss://b.example/custom/path"
    ])
    expect(h.ticketCalls.map((call) => call.url)).toEqual(h.ws.sockets.map((socket) => socket.url.replace(/\?ticket=.*$/, "")))
    expect(h.ws.sockets.every((socket) => socket.protocols.join() === "weft.v1.msgpack")).toBe(true)

    const contexts: Array<unknown> = []
    const g = harness({ getUrl: (context) => (contexts.push(context), `ws://127.0.0.1:${context.attempt + 10}/v1/ws`), random: () => 0 })
    void g.client.connect()
    await flush()
    g.ws.last().refuse()
    await advance(g, 0)
    expect(contexts).toEqual([{ attempt: 0, previous: undefined }, { attempt: 1, previous: "ws://127.0.0.1:10/v1/ws" }])
    expect(new URL(g.ws.last().url).port).toBe("11")
  })

  it("a failing getTicket counts as a failed attempt, is reported, and is retried with backoff", async () => {
    let calls = 0
    const h = harness({
      reconnect: { baseMs: 100, capMs: 1000 },
      getTicket: () => {
        calls += 1
        if (calls < 3) throw new Error("identity service down")
        return "good-ticket"
      }
    })
    void h.client.connect()
    await flush()
    expect(h.ws.sockets).toHaveLength(0)
    expect(h.errors.map((error) => error.name)).toEqual(["ticket_failed"])
    await advance(h, 50)
    await advance(h, 100)
    expect(h.ws.sockets).toHaveLength(1)
    expect(h.ws.last().ticket()).toBe("good-ticket")
  })

  it("gives up on an attempt that gets no welcome within connectTimeoutMs", async () => {
    const h = harness({ connectTimeoutMs: 5000, reconnect: { baseMs: 100, capMs: 1000 } })
    void h.client.connect()
    await flush()
    await advance(h, 4999)
    expect(h.ws.last().closedByClient).toBeUndefined()
    await advance(h, 1)
    expect(h.ws.last().closedByClient).toMatchObject({ code: 4000 })
    expect(h.client.state).toBe("reconnecting")
    await advance(h, 50)
    expect(h.ws.sockets).toHaveLength(2)
  })
})

describe("network and visibility hints", () => {
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  it("come from the browser's online/offline and visibilitychange events, and only in a browser", () => {
    // Node (like Bun and Deno) has no navigator.onLine: no hints.
    expect(browserHints()).toBeUndefined()
    const windowTarget = new EventTarget()
    const documentTarget = new EventTarget()
    const doc = Object.assign(documentTarget, { visibilityState: "visible" })
    vi.stubGlobal("navigator", { onLine: false })
    vi.stubGlobal("addEventListener", windowTarget.addEventListener.bind(windowTarget))
    vi.stubGlobal("removeEventListener", windowTarget.removeEventListener.bind(windowTarget))
    vi.stubGlobal("document", doc)
    const hints = browserHints()
    expect(hints?.isOnline()).toBe(false)
    const seen: Array<Hint> = []
    const stop = hints!.subscribe((hint) => seen.push(hint))
    windowTarget.dispatchEvent(new Event("online"))
    windowTarget.dispatchEvent(new Event("offline"))
    doc.visibilityState = "hidden"
    documentTarget.dispatchEvent(new Event("visibilitychange"))
    doc.visibilityState = "visible"
    documentTarget.dispatchEvent(new Event("visibilitychange"))
    stop()
    windowTarget.dispatchEvent(new Event("online"))
    expect(seen).toEqual(["online", "offline", "hidden", "visible"])
  })

  const hintSource = () => {
    let online = true
    const listeners = new Set<(hint: Hint) => void>()
    const source: HintSource = {
      isOnline: () => online,
      subscribe: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      }
    }
    const fire = (hint: Hint) => {
      if (hint === "online") online = true
      if (hint === "offline") online = false
      for (const listener of listeners) listener(hint)
    }
    return { source, fire, listeners }
  }

  it("waits for the network instead of burning attempts, and tries at once when it is back", async () => {
    const hints = hintSource()
    const h = harness({ hints: hints.source, reconnect: { baseMs: 10_000, capMs: 10_000 }, heartbeat: false })
    await h.connectNow()
    hints.fire("offline")
    h.ws.last().serverClose(1006)
    await flush()
    expect(h.states.at(-1)).toEqual({ state: "reconnecting", previous: "connected", attempt: 0, waitingForNetwork: true })
    await advance(h, 600_000)
    expect(h.ws.sockets).toHaveLength(1)
    hints.fire("online")
    await flush()
    expect(h.ws.sockets).toHaveLength(2)
    h.ws.last().accept()
    await flush()
    expect(h.client.state).toBe("connected")
    await h.client.close()
    expect(hints.listeners.size).toBe(0)
  })

  it("going offline during a backoff pauses it; the page becoming visible retries at once", async () => {
    const hints = hintSource()
    const h = harness({ hints: hints.source, reconnect: { baseMs: 10_000, capMs: 10_000 }, heartbeat: false })
    await h.connectNow()
    h.ws.last().serverClose(1006)
    await flush()
    expect(h.states.at(-1)).toMatchObject({ state: "reconnecting", delayMs: 5000 })
    hints.fire("offline")
    await advance(h, 600_000)
    expect(h.ws.sockets).toHaveLength(1)
    hints.fire("visible")
    await flush()
    expect(h.ws.sockets).toHaveLength(2)
  })

  it("going offline or coming back to the page checks a live-looking connection with a ping", async () => {
    const hints = hintSource()
    const h = harness({ hints: hints.source, heartbeat: { intervalMs: 1_000_000, timeoutMs: 2000 } })
    await h.connectNow(welcomeFrame("node-a", 10_000_000))
    hints.fire("visible")
    const ping = h.ws.last().sent.find((frame) => frame.type === "ping")
    expect(ping).toBeDefined()
    await advance(h, 2000)
    // No answer at all within the timeout: dead, closed, reconnecting.
    expect(h.ws.last().closedByClient).toMatchObject({ code: 4000 })
    expect(h.client.state).toBe("reconnecting")
  })
})
