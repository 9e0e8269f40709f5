/**
 * The load generator: a Bun process of its own, started by the bench and driven
 * over IPC (protocol.ts). It holds many WebSocket clients of one contender at a
 * time, publishes the same ~200-byte chat payload to all contenders, and times
 * every delivery against the send timestamp inside the payload (publisher and
 * subscribers live in this process, so both ends read the same monotonic clock).
 *
 * Every client is a WebSocket of wsclient.ts (frames parsed straight from Bun's TCP
 * sockets: the client costs little per delivery, so the servers set the figures), speaking:
 * - `weft`: an HS256 JWT per user and device (`sub`, `weft.device`, subscribe/publish
 *   `room:*`), `POST /v1/tickets`, the WebSocket `/v1/ws?ticket=` with subprotocol
 *   `weft.v1.msgpack`, `subscribe`/`publish` frames (docs/protocol.md §2, §4); a room
 *   `message` carries the payload in `data.body`. Pings every half heartbeat, as the SDK
 *   does; answers the server's pings.
 * - `raw` (raw Bun and ws): the three JSON frames of bench/contenders/bun-raw.ts.
 * - `socketio`: Socket.IO's wire protocol as socket.io-client speaks it with
 *   `transports: ["websocket"]`: events `join` (acknowledged) and `chat`; pongs.
 * Every client parses each delivery the way its protocol asks (msgpack or JSON) and reads
 * the payload's `n` and `t`.
 *
 * Reconnect storms use the client SDK's backoff (packages/client/src/Backoff.ts: full
 * jitter, 500 ms base, 30 s cap) for every contender, with a new ticket per attempt for Weft.
 */
import * as hdr from "hdr-histogram-js"
import { SignJWT } from "jose"
import { Packr, unpack } from "msgpackr"
import { readFileSync } from "node:fs"
import { backoffDelay, defaultBackoff } from "../../../packages/client/src/Backoff.ts"
import { connectWs } from "./wsclient.ts"
import type {
  ClientKind,
  ClientSpec,
  ConnectArgs,
  ConnectResult,
  LatencySummary,
  Request,
  RunArgs,
  RunResult,
  Status,
  StormResult,
  ToParent
} from "./protocol.ts"

const packr = new Packr({ useRecords: false })
const send = (message: ToParent): void => void process.send?.(message)

// ---------------------------------------------------------------------------
// The payload and delivery accounting
// ---------------------------------------------------------------------------

/** ~200 bytes as JSON: what a chat message with a bit of metadata weighs. `n` and `t` are set per send. */
const filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna."
export const payload = (n: number, t: number, user: string, room: string) => ({ n, t, user, room, text: filler })

/** Latencies above this (120 s) are recorded as 120 s. */
const maxLatencyUs = 120_000_000
const RING = 1 << 18
const MASK = RING - 1
const expected = new Uint32Array(RING)
const got = new Uint32Array(RING)
const sentAt = new Float64Array(RING)
const done = new Uint8Array(RING)
/** Sequence numbers: `nextSeq` is the next to send, `oldest` the oldest not yet done. */
let nextSeq = 0
let oldest = 0
let outstandingDeliveries = 0
let totalDeliveries = 0
let totalSent = 0
let lostDeliveries = 0
let lateDeliveries = 0
let measuring = false
let windowDeliveries = 0
/** The first message of the current run: deliveries of older ones are counted apart (`stale`). */
let runFirstSeq = 0
let staleDeliveries = 0
let histogram = newHistogram()
let wake: (() => void) | undefined
const messageTimeoutMs = 10_000

function newHistogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: maxLatencyUs, numberOfSignificantValueDigits: 3 })
}

const errors: Record<string, number> = {}
const countError = (reason: string): void => {
  errors[reason] = (errors[reason] ?? 0) + 1
}

/** One delivery of message `n`, sent at `t` (performance.now() of this process). */
const deliver = (n: unknown, t: unknown): void => {
  if (typeof n !== "number" || typeof t !== "number") return countError("delivery without n/t")
  const now = performance.now()
  totalDeliveries++
  // An earlier run's message, from a server still working off its backlog: not this run's figure.
  if (n < runFirstSeq) staleDeliveries++
  else if (measuring) {
    windowDeliveries++
    histogram.recordValue(Math.min(maxLatencyUs, Math.max(1, Math.round((now - t) * 1000))))
  }
  if (n >= nextSeq || n < nextSeq - RING) return countError("delivery of an unknown message")
  const slot = n & MASK
  if (done[slot] === 1) {
    lateDeliveries++
    return
  }
  got[slot]!++
  outstandingDeliveries--
  if (got[slot]! >= expected[slot]!) {
    done[slot] = 1
    if (wake !== undefined) {
      const w = wake
      wake = undefined
      w()
    }
  }
}

/** Retires the oldest messages: done ones, and those past the timeout (their missing deliveries are lost). */
const sweepOutstanding = (now: number): void => {
  while (oldest < nextSeq) {
    const slot = oldest & MASK
    if (done[slot] === 0) {
      if (now - sentAt[slot]! < messageTimeoutMs) return
      const missing = expected[slot]! - got[slot]!
      lostDeliveries += missing
      outstandingDeliveries -= missing
      done[slot] = 1
    }
    oldest++
  }
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

/** Subscribed, open connections per room: how many deliveries a message to the room is owed. */
const roomMembers = new Map<string, number>()
const addMember = (room: string, delta: number) => roomMembers.set(room, (roomMembers.get(room) ?? 0) + delta)

interface Conn {
  readonly index: number
  readonly kind: ClientKind
  readonly spec: ClientSpec
  readonly url: string
  state: "connecting" | "open" | "closed"
  /** Rooms acknowledged on the current connection. */
  readonly subscribed: Set<string>
  publish: (room: string, body: unknown) => void
  ping: () => void
  terminate: () => void
  /** Set by `arm`: reconnect after an unexpected close, with the SDK's backoff. */
  reconnect: boolean
  attempt: number
  backAt: number | undefined
  nextPingAt: number
  heartbeatMs: number
  /** Bumped by every attempt and every give-up: events of an older socket are ignored. */
  generation: number
}

const pool: Array<Conn> = []
let jwtSecret = ""
const jwts = new Map<string, Promise<string>>()
let stormAttempts = 0
const stormFailures: Record<string, number> = {}
let firstCloseAt: number | undefined
let backWaiter: (() => void) | undefined

const jwtFor = (user: string, device: string): Promise<string> => {
  const key = `${user}/${device}`
  let jwt = jwts.get(key)
  if (jwt === undefined) {
    jwt = new SignJWT({ weft: { device, subscribe: ["room:*"], publish: ["room:*"] } })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(user)
      .setIssuedAt()
      .setExpirationTime("4h")
      .sign(new TextEncoder().encode(jwtSecret))
    jwts.set(key, jwt)
  }
  return jwt
}

const ticketFor = async (base: string, user: string, device: string, signal: AbortSignal): Promise<string> => {
  const response = await fetch(`${base}/v1/tickets`, {
    method: "POST",
    headers: { authorization: `Bearer ${await jwtFor(user, device)}` },
    signal
  })
  if (response.status !== 200) throw new Error(`ticket HTTP ${response.status}`)
  const body = (await response.json()) as { ticket?: unknown }
  if (typeof body.ticket !== "string") throw new Error("ticket: no ticket in the answer")
  return body.ticket
}

const describe = (error: unknown): string => {
  const text = error instanceof Error ? error.message : String(error)
  // Keep reasons countable: no ports, ids or addresses.
  return text.replace(/127\.0\.0\.1:\d+/g, "<server>").replace(/\d{5,}/g, "<n>").slice(0, 120)
}

/** One attempt: resolves once open with every room acknowledged, rejects with a reason. */
const attempt = (conn: Conn, timeoutMs: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const controller = new AbortController()
    let settled = false
    const timer = setTimeout(() => fail(new Error("timeout")), timeoutMs)
    const fail = (error: unknown) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      controller.abort()
      // The socket of this attempt is abandoned: its late events must not touch the connection.
      conn.generation++
      try {
        conn.terminate()
      } catch {
        // already gone
      }
      for (const room of conn.subscribed) addMember(room, -1)
      conn.subscribed.clear()
      conn.state = "closed"
      reject(error)
    }
    const opened = () => {
      if (conn.subscribed.size < conn.spec.rooms.length || settled) return
      settled = true
      clearTimeout(timer)
      resolve()
    }
    const generation = ++conn.generation
    const live = () => conn.generation === generation
    try {
      if (conn.kind === "weft") openWeft(conn, live, controller.signal, opened, fail)
      else if (conn.kind === "raw") openRaw(conn, live, opened, fail)
      else openSocketIo(conn, live, opened, fail)
    } catch (error) {
      fail(error)
    }
  })

/** Bookkeeping when a connection that was open (or opening) ends. */
const closed = (conn: Conn, reason: string): void => {
  const wasOpen = conn.state === "open"
  for (const room of conn.subscribed) addMember(room, -1)
  conn.subscribed.clear()
  conn.state = "closed"
  if (wasOpen) {
    countError(reason)
    firstCloseAt ??= Date.now()
    conn.backAt = undefined
    if (conn.reconnect) scheduleReconnect(conn)
  }
}

const scheduleReconnect = (conn: Conn): void => {
  const delay = backoffDelay(conn.attempt++, defaultBackoff, Math.random)
  setTimeout(() => {
    if (!conn.reconnect) return
    stormAttempts++
    conn.state = "connecting"
    attempt(conn, 10_000).then(
      () => {
        conn.attempt = 0
        conn.backAt = Date.now()
        if (backWaiter !== undefined && pool.every((c) => c.backAt !== undefined)) backWaiter()
      },
      (error) => {
        const reason = describe(error)
        stormFailures[reason] = (stormFailures[reason] ?? 0) + 1
        if (conn.reconnect) scheduleReconnect(conn)
      }
    )
  }, delay)
}

const subscribedTo = (conn: Conn, room: string): void => {
  if (conn.subscribed.has(room)) return
  conn.subscribed.add(room)
  addMember(room, 1)
}

// --- Weft ------------------------------------------------------------------

const decoder = new TextDecoder()

const openWeft = (conn: Conn, live: () => boolean, signal: AbortSignal, opened: () => void, fail: (error: unknown) => void): void => {
  const { user, device, rooms } = conn.spec
  let nextId = 1
  const pending = new Map<number, string>()
  void ticketFor(conn.url, user, device, signal).then((ticket) => {
    if (signal.aborted || !live()) return
    const url = `${conn.url.replace(/^http/, "ws")}/v1/ws?ticket=${encodeURIComponent(ticket)}`
    let open = false
    const sendFrame = (frame: unknown) => {
      if (open) ws.sendBinary(packr.pack(frame))
    }
    const ws = connectWs(url, "weft.v1.msgpack", {
      onOpen: () => {
        open = true
      },
      onMessage: (bytes) => {
        if (!live()) return
        let frame: { type?: unknown; id?: unknown; data?: { kind?: unknown; body?: { n?: unknown; t?: unknown } }; name?: unknown; heartbeat?: unknown }
        try {
          frame = unpack(bytes)
        } catch {
          return countError("undecodable frame")
        }
        switch (frame.type) {
          case "message":
            if (frame.data?.kind === "message") deliver(frame.data.body?.n, frame.data.body?.t)
            return
          case "ack": {
            const room = typeof frame.id === "number" ? pending.get(frame.id) : undefined
            if (room !== undefined) {
              pending.delete(frame.id as number)
              subscribedTo(conn, room)
              opened()
            }
            return
          }
          case "error": {
            const room = typeof frame.id === "number" ? pending.get(frame.id) : undefined
            if (room !== undefined) return fail(new Error(`subscribe refused: ${String(frame.name)}`))
            return countError(`error frame ${String(frame.name)}`)
          }
          case "welcome": {
            conn.state = "open"
            conn.heartbeatMs = typeof frame.heartbeat === "number" ? frame.heartbeat : 25_000
            conn.nextPingAt = performance.now() + Math.random() * (conn.heartbeatMs / 2)
            for (const room of rooms) {
              const id = nextId++
              pending.set(id, room)
              sendFrame({ type: "subscribe", id, channel: `room:${room}` })
            }
            return opened()
          }
          case "ping":
            return sendFrame(typeof frame.id === "number" ? { type: "pong", id: frame.id } : { type: "pong" })
          case "goodbye":
            return countError("goodbye")
        }
      },
      onClose: (code, reason) => {
        if (!live()) return
        if (conn.state === "connecting") return fail(new Error(open ? `closed ${code} before welcome` : `refused: ${reason}`))
        closed(conn, `closed ${code}`)
      }
    })
    conn.publish = (room, body) => {
      const id = nextId
      nextId = nextId >= 0xffff_fff0 ? 1 : nextId + 1
      sendFrame({ type: "publish", id, channel: `room:${room}`, data: body })
    }
    conn.ping = () => sendFrame({ type: "ping" })
    conn.terminate = () => ws.terminate()
  }, (error: unknown) => fail(new Error(`ticket: ${describe(error).replace(/^ticket:? /, "").split(". ")[0]}`)))
}

// --- raw Bun and ws ----------------------------------------------------------

const openRaw = (conn: Conn, live: () => boolean, opened: () => void, fail: (error: unknown) => void): void => {
  let open = false
  const ws = connectWs(`${conn.url.replace(/^http/, "ws")}/ws`, undefined, {
    onOpen: () => {
      if (!live()) return
      open = true
      conn.state = "open"
      for (const room of conn.spec.rooms) ws.sendText(JSON.stringify({ op: "sub", room }))
      opened()
    },
    onMessage: (bytes) => {
      if (!live()) return
      let frame: { op?: unknown; room?: unknown; data?: { n?: unknown; t?: unknown } }
      try {
        frame = JSON.parse(decoder.decode(bytes))
      } catch {
        return countError("undecodable frame")
      }
      if (frame.op === "msg") deliver(frame.data?.n, frame.data?.t)
      else if (frame.op === "subd" && typeof frame.room === "string") {
        subscribedTo(conn, frame.room)
        opened()
      }
    },
    onClose: (code, reason) => {
      if (!live()) return
      if (conn.state === "connecting") return fail(new Error(open ? `closed ${code} before open` : `refused: ${reason}`))
      closed(conn, `closed ${code}`)
    }
  })
  conn.terminate = () => ws.terminate()
  conn.publish = (room, body) => ws.sendText(JSON.stringify({ op: "pub", room, data: body }))
  conn.ping = () => {}
}

// --- Socket.IO ----------------------------------------------------------------

/**
 * Socket.IO's own wire protocol (engine.io 4 over WebSocket, socket.io protocol 5), what
 * socket.io-client speaks with `transports: ["websocket"]`: `0{...}` (engine open) -> we send
 * `40` (join the main namespace) -> `40{...}`; events `42["name",...]`, with an ack id
 * `42<id>[...]` answered `43<id>[...]`; the server's ping `2` answered `3`.
 */
const openSocketIo = (conn: Conn, live: () => boolean, opened: () => void, fail: (error: unknown) => void): void => {
  let upgraded = false
  const acks = new Map<number, string>()
  let nextAck = 0
  const ws = connectWs(`${conn.url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, undefined, {
    onOpen: () => {
      upgraded = true
    },
    onMessage: (bytes) => {
      if (!live()) return
      const text = decoder.decode(bytes)
      const engine = text.charCodeAt(0)
      if (engine === 0x32 /* 2: ping */) return ws.sendText("3")
      if (engine === 0x30 /* 0: open */) return ws.sendText("40")
      if (engine !== 0x34 /* 4: message */) return
      const packet = text.charCodeAt(1)
      if (packet === 0x32 /* 2: EVENT */) {
        let event: unknown
        try {
          event = JSON.parse(text.slice(2))
        } catch {
          return countError("undecodable frame")
        }
        if (Array.isArray(event) && event[0] === "chat") deliver(event[2]?.n, event[2]?.t)
      } else if (packet === 0x33 /* 3: ACK */) {
        const id = Number.parseInt(text.slice(2), 10)
        const room = acks.get(id)
        if (room !== undefined) {
          acks.delete(id)
          subscribedTo(conn, room)
          opened()
        }
      } else if (packet === 0x30 /* 0: CONNECT */) {
        conn.state = "open"
        for (const room of conn.spec.rooms) {
          const id = nextAck++
          acks.set(id, room)
          ws.sendText(`42${id}${JSON.stringify(["join", room])}`)
        }
        opened()
      } else if (packet === 0x34 /* 4: CONNECT_ERROR */) {
        fail(new Error(`connect_error ${text.slice(2, 100)}`))
      }
    },
    onClose: (code, reason) => {
      if (!live()) return
      if (conn.state === "connecting") return fail(new Error(upgraded ? `closed ${code} before connect` : `refused: ${reason}`))
      closed(conn, `closed ${code}`)
    }
  })
  conn.terminate = () => ws.terminate()
  conn.publish = (room, body) => ws.sendText(`42${JSON.stringify(["chat", room, body])}`)
  conn.ping = () => {}
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

let phase = "idle"

const connect = async (args: ConnectArgs): Promise<ConnectResult> => {
  phase = "connect"
  if (args.jwtSecret !== undefined) jwtSecret = args.jwtSecret
  const start = performance.now()
  const failures: Record<string, number> = {}
  let firstFailure: string | undefined
  let opened = 0
  let failed = 0
  let next = 0
  const deadline = start + (args.deadlineMs ?? 600_000)
  const worker = async () => {
    while (next < args.clients.length) {
      if (args.stopOnFailure && firstFailure !== undefined) return
      if (performance.now() > deadline) return
      const spec = args.clients[next++]!
      const conn: Conn = {
        index: pool.length,
        kind: args.kind,
        spec,
        url: args.urls[spec.node % args.urls.length]!,
        state: "connecting",
        subscribed: new Set(),
        publish: () => {},
        ping: () => {},
        terminate: () => {},
        reconnect: false,
        attempt: 0,
        backAt: undefined,
        nextPingAt: Number.POSITIVE_INFINITY,
        heartbeatMs: 25_000,
        generation: 0
      }
      pool.push(conn)
      try {
        await attempt(conn, args.timeoutMs)
        opened++
      } catch (error) {
        failed++
        const reason = describe(error)
        failures[reason] = (failures[reason] ?? 0) + 1
        firstFailure ??= reason
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, args.concurrency) }, worker))
  phase = "idle"
  return {
    opened,
    failed,
    seconds: (performance.now() - start) / 1000,
    failures,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    open: pool.filter((c) => c.state === "open").length,
    skipped: args.clients.length - next
  }
}

const cpuSeconds = (): number => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

const summarize = (h: ReturnType<typeof newHistogram>): LatencySummary => {
  const points = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96.875, 97.5, 98.4375, 99, 99.21875, 99.5, 99.6, 99.8, 99.9, 99.95, 99.99, 99.999, 100]
  return {
    count: h.totalCount,
    min: h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue,
    mean: h.mean,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p95: h.getValueAtPercentile(95),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    curve: h.totalCount === 0 ? [] : points.map((p) => [p, h.getValueAtPercentile(p)] as const)
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const run = async (args: RunArgs): Promise<RunResult> => {
  const publishers = args.publishers.map((p) => ({ conn: pool[p.conn]!, room: p.room }))
  if (publishers.length === 0) throw new Error("no publishers")
  const errorsBefore = { ...errors }
  let turn = 0
  const publishOne = (now: number): boolean => {
    for (let tries = 0; tries < publishers.length; tries++) {
      const p = publishers[turn++ % publishers.length]!
      if (p.conn.state !== "open") continue
      const n = nextSeq
      const slot = n & MASK
      if (done[slot] === 0 && n >= RING) {
        // The ring wrapped over a message still owed deliveries: give it up.
        const missing = expected[slot]! - got[slot]!
        lostDeliveries += missing
        outstandingDeliveries -= missing
      }
      const owed = roomMembers.get(p.room) ?? 0
      expected[slot] = owed
      got[slot] = 0
      sentAt[slot] = now
      done[slot] = owed === 0 ? 1 : 0
      outstandingDeliveries += owed
      nextSeq++
      totalSent++
      p.conn.publish(p.room, payload(n, now, p.conn.spec.user, p.room))
      return true
    }
    countError("no open publisher")
    return false
  }

  // A publisher whose connection a server closed in an earlier run connects again (and the
  // result says so), so that one lost connection does not void every later case.
  let publishersReconnected = 0
  for (const conn of new Set(publishers.map((p) => p.conn))) {
    if (conn.state !== "closed") continue
    conn.state = "connecting"
    try {
      await attempt(conn, 20_000)
      publishersReconnected++
    } catch (error) {
      countError(`publisher reconnect: ${describe(error)}`)
    }
  }

  // A server still working off the previous run's backlog would skew this one: wait until
  // deliveries stop arriving (300 ms without any), at most 10 s.
  phase = `${args.label} settle`
  const settleUntil = performance.now() + 10_000
  let seen = totalDeliveries
  while (performance.now() < settleUntil) {
    await sleep(300)
    if (totalDeliveries === seen) break
    seen = totalDeliveries
  }

  runFirstSeq = nextSeq
  const staleBefore = staleDeliveries
  const begin = performance.now()
  const measureFrom = begin + args.warmupMs
  const measureTo = measureFrom + args.durationMs
  let stopPublishing = false
  let windowStartSeq = -1
  let windowEndSeq = -1
  let cpuStart = 0
  let measuringSince = measureFrom
  phase = `${args.label} warm-up`
  const clock = setInterval(() => {
    const now = performance.now()
    sweepOutstanding(now)
    if (!measuring && windowStartSeq === -1 && now >= measureFrom) {
      measuring = true
      measuringSince = now
      phase = `${args.label} measure`
      windowDeliveries = 0
      histogram = newHistogram()
      windowStartSeq = nextSeq
      cpuStart = cpuSeconds()
    }
  }, 5)

  const lostBefore = lostDeliveries
  const lateBefore = lateDeliveries
  let measuredSeconds = 0
  let cpu = 0
  const finishWindow = () => {
    if (!measuring) return
    measuring = false
    measuredSeconds = (performance.now() - measuringSince) / 1000
    cpu = (cpuSeconds() - cpuStart) / measuredSeconds
    windowEndSeq = nextSeq
    phase = `${args.label} drain`
  }
  try {
    if (args.mode === "fixed") {
      const rate = args.rate ?? 1
      let sent = 0
      while (!stopPublishing) {
        const now = performance.now()
        if (now >= measureTo) break
        const due = Math.floor(((now - begin) * rate) / 1000)
        while (sent < due) {
          publishOne(now)
          sent++
        }
        await sleep(1)
      }
    } else {
      const window = Math.max(1, args.window ?? 10_000)
      while (performance.now() < measureTo) {
        const now = performance.now()
        // At least one message in flight; more while the outstanding deliveries fit the window.
        let burst = 0
        while ((outstandingDeliveries < window || oldest === nextSeq) && burst < 1000) {
          if (!publishOne(now)) break
          burst++
        }
        if (burst === 0 || outstandingDeliveries >= window) {
          await new Promise<void>((resolve) => {
            wake = resolve
            setTimeout(resolve, 5)
          })
          wake = undefined
        } else await sleep(0)
        sweepOutstanding(performance.now())
      }
    }
    stopPublishing = true
    finishWindow()
    // Let the window's messages finish: every delivery owed, or `drainMs`.
    const drainUntil = performance.now() + args.drainMs
    while (performance.now() < drainUntil) {
      let owed = 0
      for (let n = Math.max(windowStartSeq, oldest); n < windowEndSeq; n++) {
        const slot = n & MASK
        if (done[slot] === 0) owed += expected[slot]! - got[slot]!
      }
      if (owed === 0) break
      await sleep(20)
    }
  } finally {
    clearInterval(clock)
    measuring = false
  }
  // What the window's messages still owe is lost.
  let lost = lostDeliveries - lostBefore
  for (let n = Math.max(windowStartSeq, oldest); n < windowEndSeq; n++) {
    const slot = n & MASK
    if (done[slot] === 0) {
      const missing = expected[slot]! - got[slot]!
      lost += missing
      lostDeliveries += missing
      outstandingDeliveries -= missing
      done[slot] = 1
    }
  }
  sweepOutstanding(performance.now())
  const published = Math.max(0, windowEndSeq - windowStartSeq)
  const newErrors: Record<string, number> = {}
  for (const [key, value] of Object.entries(errors)) {
    const delta = value - (errorsBefore[key] ?? 0)
    if (delta > 0) newErrors[key] = delta
  }
  phase = "idle"
  return {
    label: args.label,
    ...(args.mode === "fixed" && args.rate !== undefined ? { askedRate: args.rate } : {}),
    seconds: measuredSeconds,
    published,
    publishedPerSecond: measuredSeconds > 0 ? published / measuredSeconds : 0,
    deliveries: windowDeliveries,
    deliveriesPerSecond: measuredSeconds > 0 ? windowDeliveries / measuredSeconds : 0,
    lost,
    late: lateDeliveries - lateBefore,
    latencyUs: summarize(histogram),
    errors: newErrors,
    loadgenCpu: cpu,
    publishersReconnected,
    stale: staleDeliveries - staleBefore
  }
}

/** From now on, a connection that drops reconnects with the SDK's backoff. */
const arm = (): void => {
  phase = "storm"
  stormAttempts = 0
  firstCloseAt = undefined
  for (const key of Object.keys(stormFailures)) delete stormFailures[key]
  for (const conn of pool) {
    conn.reconnect = true
    conn.attempt = 0
    conn.backAt = undefined
  }
}

const awaitBack = async (since: number, timeoutMs: number): Promise<StormResult> => {
  const everyoneBack = () => pool.every((c) => c.backAt !== undefined)
  if (!everyoneBack()) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      backWaiter = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
  backWaiter = undefined
  for (const conn of pool) conn.reconnect = false
  phase = "idle"
  const times = pool.filter((c) => c.backAt !== undefined).map((c) => c.backAt! - since).sort((a, b) => a - b)
  /** When the fraction `q` of all clients was back (the q-th of the sorted times), if that many came back. */
  const at = (q: number): number => times[Math.max(0, Math.ceil(q * pool.length) - 1)]!
  const all = times.length === pool.length && times.length > 0 ? times[times.length - 1] : undefined
  return {
    total: pool.length,
    back: times.length,
    firstCloseAt,
    allBackAt: all === undefined ? undefined : since + all,
    backAfterMs: {
      ...(times.length >= Math.ceil(0.5 * pool.length) ? { p50: at(0.5) } : {}),
      ...(times.length >= Math.ceil(0.9 * pool.length) ? { p90: at(0.9) } : {}),
      ...(times.length >= Math.ceil(0.99 * pool.length) ? { p99: at(0.99) } : {}),
      ...(all === undefined ? {} : { all })
    },
    attempts: stormAttempts,
    failures: { ...stormFailures }
  }
}

const reset = async (): Promise<void> => {
  for (const conn of pool) {
    conn.reconnect = false
    conn.generation++
    try {
      conn.terminate()
    } catch {
      // already gone
    }
    for (const room of conn.subscribed) addMember(room, -1)
    conn.subscribed.clear()
    conn.state = "closed"
  }
  pool.length = 0
  roomMembers.clear()
  for (const key of Object.keys(errors)) delete errors[key]
  // Sockets close asynchronously; give the runtime a moment to release them.
  await sleep(500)
  Bun.gc(true)
}

const status = (): Status => ({
  open: pool.filter((c) => c.state === "open").length,
  subscribed: pool.filter((c) => c.state === "open" && c.subscribed.size === c.spec.rooms.length).length,
  rssBytes: process.memoryUsage().rss,
  errors: { ...errors }
})

// Weft clients ping every half heartbeat, as the SDK does (any frame counts; idle ones need it).
setInterval(() => {
  const now = performance.now()
  for (const conn of pool) {
    if (conn.kind === "weft" && conn.state === "open" && now >= conn.nextPingAt) {
      conn.nextPingAt = now + conn.heartbeatMs / 2
      conn.ping()
    }
  }
}, 1000)

setInterval(() => {
  let open = 0
  for (const conn of pool) if (conn.state === "open") open++
  send({ type: "progress", phase, open, deliveries: totalDeliveries, sent: totalSent, at: performance.now() })
}, 250)

process.on("message", (raw: unknown) => {
  const request = raw as Request
  const answer = (promise: Promise<unknown>) =>
    promise.then(
      (result) => send({ type: "answer", id: request.id, ok: true, result }),
      (error: unknown) => send({ type: "answer", id: request.id, ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) })
    )
  switch (request.cmd) {
    case "connect":
      return void answer(connect(request.args))
    case "run":
      return void answer(run(request.args))
    case "arm":
      return void answer(Promise.resolve(arm()))
    case "awaitBack":
      return void answer(awaitBack(request.args.since, request.args.timeoutMs))
    case "reset":
      return void answer(reset())
    case "status":
      return void answer(Promise.resolve(status()))
  }
})

/** This process's open-files limit (soft), from /proc: the bench caps connection counts below it. */
const fdLimit = (): number => {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))
    const soft = line?.split(/\s{2,}/)[1]
    return soft === undefined || soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft)
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

// Exit with the bench, even if it was killed without cleaning up.
const parent = process.ppid
setInterval(() => {
  let alive = process.ppid === parent
  try {
    process.kill(parent, 0)
  } catch {
    alive = false
  }
  if (!alive) process.exit(0)
}, 1000).unref()
process.on("disconnect", () => process.exit(0))

send({ type: "ready", fdLimit: fdLimit() })
