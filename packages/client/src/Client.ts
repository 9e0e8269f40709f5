/**
 * The client: one WebSocket to a Weft node that heals itself. It gets a new
 * ticket for every attempt, reconnects with backoff and full jitter (or as
 * the server's `goodbye` advises), re-subscribes every channel from its last
 * position, never hands the app a message twice, queues publishes made while
 * disconnected (bounded), matches requests to answers with timeouts, and
 * pings to notice a dead connection. Frames are encoded and decoded with
 * `@weft/protocol`'s codec. Messages that carry presence, notifications and
 * signals also become typed events (`MessageEvents.ts`); `rooms`,
 * `notifications` and `signal` are typed helpers over `rpc`. When the server
 * asks for new credentials (`refresh-required`) it refreshes the connection
 * with the app's `getToken`, without reconnecting.
 *
 * Plain promises and events, no Effect: the browser bundle stays small (see
 * the README for its size).
 */
import { Channel, Codec, type ClientFrame, type ServerFrame } from "@weft/protocol"
import { backoffDelay, defaultBackoff, goodbyeDelay } from "./Backoff.ts"
import { Emitter, type Listener } from "./Emitter.ts"
import type { ChannelMessage, ConnectionInfo, ConnectionState, GoodbyeAdvice, RefreshEvent, StateEvent, WeftEvents } from "./Events.ts"
import { browserHints, type Hint, type HintSource } from "./Hints.ts"
import { arrivesUnsubscribed, typedEventOf } from "./MessageEvents.ts"
import { isAfter, type Position } from "./Position.ts"
import { roomMethods, type RoomMethods } from "./RoomMethods.ts"
import { globalWebSocket, OPEN, payloadOf, type WebSocketConstructor, type WebSocketLike } from "./Socket.ts"
import type { GetTicket } from "./Ticket.ts"
import { notificationMethods, type NotificationMethods, type SendSignal, sendSignal } from "./UserMethods.ts"
import { clientError, describeError, localCatalogueError, ServerErrorCodes, WeftError, type WeftErrorDetails } from "./WeftError.ts"

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/** The wire encoding: msgpack (`weft.v1.msgpack`) or JSON (`weft.v1.json`). */
export type Encoding = "msgpack" | "json"

/** Time, injectable for tests. `schedule` returns the function that cancels. */
export interface Clock {
  readonly now: () => number
  readonly schedule: (callback: () => void, ms: number) => () => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule: (callback, ms) => {
    const handle = setTimeout(callback, ms)
    return () => clearTimeout(handle)
  }
}

export interface UrlContext {
  /** Failed attempts in a row so far (0 for a first attempt or right after a connection). */
  readonly attempt: number
  /** The URL of the previous attempt, if any. */
  readonly previous: string | undefined
}

export interface ReconnectOptions {
  /** The first retry waits a random time up to this (ms). Default 500. */
  readonly baseMs?: number
  /** No retry waits longer than this (ms). Default 30000. */
  readonly capMs?: number
  /** Give up after this many failed attempts in a row (the state becomes `disconnected`). Default: never. */
  readonly maxAttempts?: number
  /** A connection that stayed up this long resets the backoff (ms). Default 60000. */
  readonly resetAfterMs?: number
}

export interface OfflineQueueOptions {
  /** How many publishes (and rpcs) made while not connected are kept. Default 100; 0 refuses them at once. */
  readonly max?: number
  /**
   * When the queue is full: `drop-oldest` (default) rejects the oldest queued
   * request with `queue_full` and queues the new one; `reject` rejects the new
   * one with `queue_full` and keeps the queue as it is.
   */
  readonly overflow?: "drop-oldest" | "reject"
}

export interface HeartbeatOptions {
  /** Send a `ping` this often (ms). Default and maximum: half the server's `heartbeat`. */
  readonly intervalMs?: number
  /** No frame at all this long after a ping means the connection is dead (ms). Default: the server's `heartbeat`. */
  readonly timeoutMs?: number
}

export interface ClientOptions {
  /**
   * The node(s) to connect to: `wss://host/v1/ws` or just `https://host`
   * (`/v1/ws` is added, `http` becomes `ws`). With several, each new attempt
   * takes the next one.
   */
  readonly url?: string | ReadonlyArray<string>
  /** Picks the URL for each attempt instead of `url` (service discovery, sticky routing...). */
  readonly getUrl?: (context: UrlContext) => string | Promise<string>
  /** Called before every attempt for a fresh one-time ticket (`ticketFromJwt` is a ready one). */
  readonly getTicket: GetTicket
  /**
   * A fresh JWT for the same user (and device), called when the server asks for new credentials
   * before the connection's expire (`refresh-required`): the connection is refreshed in place,
   * subscriptions and all. Without it the client lets the connection expire and reconnects with a
   * new ticket (from `getTicket`). Give the same function `ticketFromJwt` gets.
   */
  readonly getToken?: () => string | Promise<string>
  /** `msgpack` (default, binary frames) or `json` (text frames, for debugging). */
  readonly encoding?: Encoding
  /** The WebSocket constructor. Default: the global one (browsers, Bun, Deno, Node 22+); on Node 20 pass `ws`. */
  readonly WebSocket?: WebSocketConstructor
  /** Reconnect with backoff (default), or `false` to stop at the first drop. */
  readonly reconnect?: ReconnectOptions | false
  /** How long a request waits for its answer once sent (ms). Default 10000. */
  readonly requestTimeoutMs?: number
  /** How long an attempt may take: the ticket, then the WebSocket until `welcome` (ms, each). Default 10000. */
  readonly connectTimeoutMs?: number
  readonly offlineQueue?: OfflineQueueOptions
  /** Pings to keep the connection alive and notice a dead one; `false`: send none (the server closes a silent connection after 2x its heartbeat). */
  readonly heartbeat?: HeartbeatOptions | false
  /** Network and visibility hints; default: the browser's, when there is one; `false`: none. */
  readonly hints?: HintSource | false
  /** Randomness for jitter, [0, 1). Default `Math.random`. */
  readonly random?: () => number
  readonly clock?: Clock
}

// ---------------------------------------------------------------------------
// The public surface
// ---------------------------------------------------------------------------

export interface RequestOptions {
  /** Overrides `requestTimeoutMs` for this request. */
  readonly timeoutMs?: number
  /** Abandons the request (rejects with `aborted`); a queued request leaves the queue. */
  readonly signal?: AbortSignal
}

export interface PublishAck {
  /** Where the message went, for channels with history. */
  readonly position?: Position
}

export interface SubscribeOptions {
  /** Start after this position (e.g. one the app saved): messages at or before it are not delivered. */
  readonly since?: Position
}

export type MessageHandler = (message: ChannelMessage) => void

export interface Subscription {
  readonly channel: string
  /**
   * Resolves when the server has acknowledged the subscription; rejects when
   * it refuses it for good (`forbidden`, `invalid_channel`,
   * `too_many_subscriptions`) or the client is closed. Transient failures are
   * retried (and reported as `error` events).
   */
  readonly ready: Promise<void>
  /** The position of the last message delivered on the channel, if messages carry positions. */
  readonly position: Position | undefined
  /** Subscribed on the current connection and not unsubscribed. */
  readonly active: boolean
  /** Stops this handler; the last handler of a channel unsubscribes from the server. */
  readonly unsubscribe: () => Promise<void>
  /**
   * Why the server ended the subscription on its own (`forbidden`: a refresh narrowed the
   * connection's credentials and they no longer allow the channel); its handlers are no longer
   * called. `undefined` while it lasts, and after the app's own `unsubscribe()`.
   */
  readonly ended: WeftError | undefined
}

export interface WeftClient {
  readonly state: ConnectionState
  /** The current connection, while connected. */
  readonly info: ConnectionInfo | undefined
  /** Connects (retrying as configured); resolves once connected. */
  readonly connect: () => Promise<ConnectionInfo>
  readonly subscribe: (channel: string, handler: MessageHandler, options?: SubscribeOptions) => Subscription
  /** Resolves with the server's ack. While not connected the publish waits in the offline queue. */
  readonly publish: (channel: string, data: unknown, options?: RequestOptions) => Promise<PublishAck>
  /** Resolves with the method's result. While not connected the call waits in the offline queue. */
  readonly rpc: (method: string, params?: unknown, options?: RequestOptions) => Promise<unknown>
  /**
   * Refreshes the connection's credentials now with `token` (a JWT for the same user and device);
   * resolves with the new expiry (absent: none). Rejects while not connected (`disconnected`), or
   * with the server's refusal (`invalid_credentials`, `wrong_user`, `unavailable`).
   */
  readonly refresh: (token: string) => Promise<{ readonly expiresAt?: number }>
  /** Typed helpers over `rpc` for the room methods (`room.send`, `room.history`...); `room` is the id, without `room:`. */
  readonly rooms: RoomMethods
  /** Typed helpers over `rpc` for the user's inbox (`notifications.list`, `notifications.read`). */
  readonly notifications: NotificationMethods
  /** `signal.send`: `data` to `user`'s connected devices (or one `device`); resolves with how many got it. */
  readonly signal: SendSignal
  readonly on: <K extends keyof WeftEvents>(type: K, listener: Listener<WeftEvents[K]>) => () => void
  readonly off: <K extends keyof WeftEvents>(type: K, listener: Listener<WeftEvents[K]>) => void
  /** Closes for good: rejects whatever is pending with `closed`. Resolves once the socket closed (at most 1 s). */
  readonly close: () => Promise<void>
}

// ---------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------

type Ack = Extract<ServerFrame, { readonly type: "ack" }>
type Reply = Extract<ServerFrame, { readonly type: "reply" }>
type Answer = Ack | Reply
type RequestFrame = Extract<ClientFrame, { readonly id: number; readonly type: "subscribe" | "unsubscribe" | "publish" | "rpc" | "refresh" }>

const maxId = 4_294_967_295
const clientCloseCode = 4000
const knownServerTypes: ReadonlySet<string> = new Set([
  "welcome",
  "ack",
  "reply",
  "error",
  "message",
  "ping",
  "pong",
  "goodbye",
  "refresh-required",
  "unsubscribed"
])
const noop = (): void => undefined

/** A request waiting for its answer on a connection. */
interface Pending {
  readonly details: WeftErrorDetails
  readonly resolve: (answer: Answer) => void
  readonly reject: (error: WeftError) => void
  readonly cancelTimer: () => void
}

/** A publish or rpc waiting in the offline queue. */
interface Queued {
  readonly build: (id: number) => RequestFrame
  readonly timeoutMs: number
  readonly details: WeftErrorDetails
  readonly resolve: (answer: Answer) => void
  readonly reject: (error: WeftError) => void
  readonly signal: AbortSignal | undefined
  /** Called when flushed, so that an abort can take the request back from the connection. */
  readonly onSent: (conn: Connection, id: number) => void
}

interface Connection {
  readonly socket: WebSocketLike
  readonly url: string
  readonly pending: Map<number, Pending>
  readonly timers: Set<() => void>
  info: ConnectionInfo | undefined
  connectedAt: number
  /** Frames received so far: a ping is answered when this grows. */
  received: number
  goodbye: GoodbyeAdvice | undefined
  /** A `getToken` refresh is under way (or waiting to retry) on this connection. */
  refreshing: boolean
  ended: boolean
  /** Resolves when the socket's close event came (after the connection ended). */
  closed: Promise<void>
}

interface HandlerEntry {
  readonly handler: MessageHandler
}

/** One channel the app is subscribed to, shared by all its handlers. */
interface ChannelEntry {
  readonly channel: string
  readonly handlers: Set<HandlerEntry>
  last: Position | undefined
  /** Acknowledged on the current connection. */
  acked: boolean
  /** Acknowledged on some connection (so the next subscribe is a restore). */
  everAcked: boolean
  /** A subscribe is in flight (or a retry is scheduled) on the current connection. */
  subscribing: boolean
  /** Why the server ended the subscription (an `unsubscribed` frame). */
  ended: WeftError | undefined
  retries: number
  cancelRetry: () => void
  /** While a gap is being filled from history: the live messages that came meanwhile, in order. */
  held: Array<MessageFrame> | undefined
  readonly ready: Promise<void>
  readonly resolveReady: () => void
  readonly rejectReady: (error: WeftError) => void
}

const deferred = <A>() => {
  let resolve: (value: A) => void = noop
  let reject: (error: WeftError) => void = noop
  const promise = new Promise<A>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

type MessageFrame = Extract<ServerFrame, { readonly type: "message" }>

const roomPrefix = "room:"

/** Whether a message at `position` skips offsets after `last` in the same epoch (live messages were lost). */
const isGap = (position: Position | undefined, last: Position | undefined): boolean =>
  position !== undefined && last !== undefined && position.epoch === last.epoch && position.offset > last.offset + 1

/** `https://host` -> `wss://host/v1/ws`; a URL with a path keeps it. */
export const webSocketUrl = (input: string): string => {
  const url = new URL(input)
  if (url.protocol === "http:") url.protocol = "ws:"
  else if (url.protocol === "https:") url.protocol = "wss:"
  if (url.pathname === "" || url.pathname === "/") url.pathname = "/v1/ws"
  url.searchParams.delete("ticket")
  return url.toString()
}

const withTicket = (url: string, ticket: string): string => {
  const parsed = new URL(url)
  parsed.searchParams.set("ticket", ticket)
  return parsed.toString()
}

const byteLength = (raw: string | Uint8Array, limit: number): number => {
  if (typeof raw !== "string") return raw.length
  // A UTF-16 code unit is at most 3 UTF-8 bytes: only count when it could matter.
  return raw.length * 3 <= limit ? raw.length : new TextEncoder().encode(raw).length
}

/** The `type` of an undecodable frame, to tell a newer frame type (ignored) from a broken frame. */
const peekType = (raw: string | Uint8Array): unknown => {
  try {
    const value: unknown = JSON.parse(typeof raw === "string" ? raw : Codec.msgpackToJson(raw))
    return typeof value === "object" && value !== null && "type" in value ? value.type : undefined
  } catch {
    return undefined
  }
}

const isPermanent = (error: WeftError): boolean =>
  error.origin === "server" ? !(error.name === "rate_limited" || error.category === "server") : error.name !== "timeout"

/** A refresh failure worth retrying before the deadline: the server could not do it now, or no answer, or `getToken` failed. */
const isRetryableRefresh = (error: WeftError): boolean =>
  error.origin === "server" ? error.name === "rate_limited" || error.category === "server" : error.name === "timeout" || error.name === "token_failed"

// ---------------------------------------------------------------------------
// createClient
// ---------------------------------------------------------------------------

export const createClient = (options: ClientOptions): WeftClient => {
  const encoding: Encoding = options.encoding ?? "msgpack"
  const subprotocol = Codec.subprotocols[encoding]
  const clock = options.clock ?? systemClock
  const random = options.random ?? Math.random
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000
  const reconnect = options.reconnect === false ? undefined : options.reconnect ?? {}
  const backoff = { baseMs: reconnect?.baseMs ?? defaultBackoff.baseMs, capMs: reconnect?.capMs ?? defaultBackoff.capMs }
  const maxAttempts = reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY
  const resetAfterMs = reconnect?.resetAfterMs ?? 60_000
  const queueMax = Math.max(0, options.offlineQueue?.max ?? 100)
  const overflow = options.offlineQueue?.overflow ?? "drop-oldest"
  const heartbeat = options.heartbeat === false ? undefined : options.heartbeat ?? {}
  const urls = typeof options.url === "string" ? [options.url] : [...(options.url ?? [])]
  if (options.getUrl === undefined && urls.length === 0) throw new TypeError("createClient: give `url` or `getUrl`")
  const WebSocketImpl = options.WebSocket ?? globalWebSocket()
  if (WebSocketImpl === undefined) {
    throw new TypeError("createClient: this runtime has no global WebSocket; pass one (on Node 20: `import WebSocket from \"ws\"`)")
  }
  const hints = options.hints === false ? undefined : options.hints ?? browserHints()

  const events = new Emitter<WeftEvents>((type, cause) => {
    if (type !== "error") emitError(clientError("handler_error", `a "${String(type)}" listener threw: ${describeError(cause)}`, { cause }))
  })
  const emitError = (error: WeftError) => events.emit("error", error)

  let state: ConnectionState = "idle"
  let current: Connection | undefined
  /** Bumped by every attempt (and by close): async steps of an older attempt see it changed and stop. */
  let generation = 0
  /** Failed attempts in a row (reset by a welcome). */
  let failures = 0
  /** The exponent of the backoff (reset once a connection stayed up `resetAfterMs`). */
  let backoffAttempt = 0
  let everConnected = false
  let cancelReconnect: () => void = noop
  let waitingForNetwork = false
  let previousUrl: string | undefined
  let urlIndex = -1
  let nextRequestId = 0
  let nextPingId = 0
  const channels = new Map<string, ChannelEntry>()
  const queue: Array<Queued> = []
  let connectWaiters: Array<ReturnType<typeof deferred<ConnectionInfo>>> = []
  let stopHints: () => void = noop

  const setState = (next: ConnectionState, details: Omit<StateEvent, "state" | "previous"> = {}) => {
    const previous = state
    state = next
    events.emit("state", { state: next, previous, ...details })
  }

  // -------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------

  const encode = (frame: ClientFrame, details: WeftErrorDetails): string | Uint8Array => {
    try {
      return Codec.encodeClientFrame(frame, encoding)
    } catch (cause) {
      throw localCatalogueError("invalid_frame", `cannot encode the ${frame.type} frame: ${describeError(cause)}`, { ...details, cause })
    }
  }

  const sendRaw = (conn: Connection, raw: string | Uint8Array): void => {
    if (conn.ended || conn.socket.readyState !== OPEN) return
    try {
      conn.socket.send(raw)
    } catch {
      // The close event follows.
    }
  }

  const takeId = (conn: Connection): number => {
    // Skips ids still in flight; ids wrap at 2^32 as the protocol allows.
    for (;;) {
      nextRequestId = nextRequestId >= maxId ? 1 : nextRequestId + 1
      if (!conn.pending.has(nextRequestId)) return nextRequestId
    }
  }

  const schedule = (conn: Connection, ms: number, callback: () => void): () => void => {
    const cancel = clock.schedule(() => {
      conn.timers.delete(cancel)
      if (!conn.ended) callback()
    }, ms)
    conn.timers.add(cancel)
    return () => {
      conn.timers.delete(cancel)
      cancel()
    }
  }

  /** Sends a request on a live connection; the answer (or its failure) goes to resolve/reject. */
  const sendRequest = (
    conn: Connection,
    build: (id: number) => RequestFrame,
    timeoutMs: number,
    details: WeftErrorDetails,
    resolve: (answer: Answer) => void,
    reject: (error: WeftError) => void
  ): number | undefined => {
    const id = takeId(conn)
    let raw: string | Uint8Array
    try {
      raw = encode(build(id), details)
    } catch (error) {
      reject(error instanceof WeftError ? error : clientError("protocol_error", describeError(error), details))
      return undefined
    }
    const max = conn.info?.limits.maxFrameBytes
    if (max !== undefined && byteLength(raw, max) > max) {
      reject(clientError("frame_too_large", `the frame is larger than the connection's maximum of ${max} bytes`, details))
      return undefined
    }
    const cancelTimer = schedule(conn, timeoutMs, () => {
      if (!conn.pending.delete(id)) return
      reject(clientError("timeout", `no answer within ${timeoutMs} ms`, details))
    })
    conn.pending.set(id, { details, resolve, reject, cancelTimer })
    sendRaw(conn, raw)
    return id
  }

  /** Sends now when connected, else queues (bounded); the promise settles with the answer. */
  const request = (build: (id: number) => RequestFrame, requestOptions: RequestOptions, details: WeftErrorDetails): Promise<Answer> => {
    const { promise, resolve, reject } = deferred<Answer>()
    const signal = requestOptions.signal
    const timeoutMs = requestOptions.timeoutMs ?? requestTimeoutMs
    if (state === "closed") {
      reject(clientError("closed", "the client is closed", details))
      return promise
    }
    if (signal?.aborted === true) {
      reject(clientError("aborted", "the request was aborted", details))
      return promise
    }
    let settled = false
    let sentOn: { readonly conn: Connection; readonly id: number } | undefined
    const onAbort = () => {
      if (settled) return
      const index = queue.indexOf(item)
      if (index !== -1) queue.splice(index, 1)
      if (sentOn !== undefined) {
        sentOn.conn.pending.get(sentOn.id)?.cancelTimer()
        sentOn.conn.pending.delete(sentOn.id)
      }
      settle.reject(clientError("aborted", "the request was aborted", details))
    }
    const settle = {
      resolve: (answer: Answer) => {
        settled = true
        signal?.removeEventListener("abort", onAbort)
        resolve(answer)
      },
      reject: (error: WeftError) => {
        settled = true
        signal?.removeEventListener("abort", onAbort)
        reject(error)
      }
    }
    const item: Queued = {
      build,
      timeoutMs,
      details,
      resolve: settle.resolve,
      reject: settle.reject,
      signal,
      onSent: (sentConn, id) => {
        sentOn = { conn: sentConn, id }
      }
    }
    signal?.addEventListener("abort", onAbort)
    const conn = current
    // After a goodbye the connection is closing: the request waits for the next one (protocol §7.2).
    if (state === "connected" && conn !== undefined && conn.info !== undefined && conn.goodbye === undefined) {
      const id = sendRequest(conn, build, timeoutMs, details, settle.resolve, settle.reject)
      if (id !== undefined) item.onSent(conn, id)
      return promise
    }
    if (state === "disconnected") {
      settle.reject(clientError("disconnected", "not connected, and not trying to (call connect())", details))
      return promise
    }
    // Check the frame encodes now, rather than failing later at flush time.
    try {
      encode(build(0), details)
    } catch (error) {
      settle.reject(error instanceof WeftError ? error : clientError("protocol_error", describeError(error), details))
      return promise
    }
    if (queueMax === 0) {
      settle.reject(clientError("disconnected", "not connected (the offline queue is off)", details))
      return promise
    }
    if (queue.length >= queueMax) {
      if (overflow === "reject") {
        settle.reject(clientError("queue_full", `the offline queue is full (${queueMax}); this request was refused`, details))
        return promise
      }
      const oldest = queue.shift()
      oldest?.reject(clientError("queue_full", `the offline queue is full (${queueMax}); the oldest request was dropped`, oldest.details))
    }
    queue.push(item)
    return promise
  }

  const flushQueue = (conn: Connection) => {
    const items = queue.splice(0, queue.length)
    for (const item of items) {
      if (item.signal?.aborted === true) continue
      const id = sendRequest(conn, item.build, item.timeoutMs, item.details, item.resolve, item.reject)
      if (id !== undefined) item.onSent(conn, id)
    }
  }

  const rejectQueue = (error: (details: WeftErrorDetails) => WeftError) => {
    for (const item of queue.splice(0, queue.length)) item.reject(error(item.details))
  }

  // -------------------------------------------------------------------------
  // Subscriptions
  // -------------------------------------------------------------------------

  const sendSubscribe = (conn: Connection, entry: ChannelEntry) => {
    entry.cancelRetry()
    entry.subscribing = true
    const since = entry.last
    const restored = entry.everAcked
    const details = { channel: entry.channel }
    sendRequest(
      conn,
      (id) => (since === undefined ? { type: "subscribe", id, channel: entry.channel } : { type: "subscribe", id, channel: entry.channel, since }),
      requestTimeoutMs,
      details,
      (answer) => {
        if (channels.get(entry.channel) !== entry || current !== conn) return
        entry.subscribing = false
        entry.acked = true
        entry.everAcked = true
        entry.retries = 0
        entry.resolveReady()
        const position = answer.type === "ack" ? answer.position : undefined
        const recovery = answer.type === "ack" ? answer.recovery : undefined
        // The server could not replay from `since`: the subscription is live from `position` on, so
        // the next reconnect resumes from there (not from the stale position again), unless live
        // messages after it already came (the server may send them before its answer).
        if (recovery === "failed" && position !== undefined && isAfter(position, entry.last)) entry.last = position
        events.emit("subscribed", {
          channel: entry.channel,
          restored,
          ...(since === undefined ? {} : { since }),
          ...(position === undefined ? {} : { position }),
          ...(recovery === undefined ? {} : { recovery })
        })
      },
      (error) => {
        if (channels.get(entry.channel) !== entry) return
        entry.subscribing = false
        // The connection went away: the next one subscribes again.
        if (current !== conn || conn.ended) return
        if (error.name === "already_subscribed") {
          entry.acked = true
          entry.everAcked = true
          entry.resolveReady()
          return
        }
        if (isPermanent(error)) {
          channels.delete(entry.channel)
          entry.rejectReady(error)
          if (restored) emitError(error)
          return
        }
        // Transient (unavailable, timeout, rate limited...): report, then retry on this connection.
        emitError(error)
        entry.subscribing = true
        entry.cancelRetry = schedule(conn, backoffDelay(entry.retries++, backoff, random), () => {
          entry.cancelRetry = noop
          if (channels.get(entry.channel) === entry && current === conn) sendSubscribe(conn, entry)
        })
      }
    )
  }

  const unsubscribeEntry = (entry: ChannelEntry): Promise<void> => {
    channels.delete(entry.channel)
    entry.cancelRetry()
    entry.rejectReady(clientError("closed", "unsubscribed before the server acknowledged", { channel: entry.channel }))
    const conn = current
    if (conn === undefined || conn.info === undefined || conn.ended || !(entry.acked || entry.subscribing)) return Promise.resolve()
    return new Promise<void>((resolve) => {
      // Whatever the answer (even not_subscribed, or the connection dropping), the channel is gone for the app.
      sendRequest(conn, (id) => ({ type: "unsubscribe", id, channel: entry.channel }), requestTimeoutMs, { channel: entry.channel }, () => resolve(), () => resolve())
    })
  }

  const subscribe = (channel: string, handler: MessageHandler, subscribeOptions: SubscribeOptions = {}): Subscription => {
    const handlerEntry: HandlerEntry = { handler }
    let entry = channels.get(channel)
    if (state === "closed" || !Channel.isChannel(channel)) {
      const error = state === "closed"
        ? clientError("closed", "the client is closed", { channel })
        : localCatalogueError("invalid_channel", `not a valid channel name: ${JSON.stringify(channel)}`, { channel })
      const ready = Promise.reject(error)
      ready.catch(noop)
      return { channel, ready, position: undefined, active: false, ended: undefined, unsubscribe: () => Promise.resolve() }
    }
    if (entry === undefined) {
      const { promise, resolve, reject } = deferred<void>()
      promise.catch(noop)
      let readySettled = false
      const created: ChannelEntry = {
        channel,
        handlers: new Set(),
        last: subscribeOptions.since,
        acked: false,
        everAcked: false,
        subscribing: false,
        retries: 0,
        cancelRetry: noop,
        held: undefined,
        ended: undefined,
        ready: promise,
        resolveReady: () => {
          readySettled = true
          resolve()
        },
        rejectReady: (error) => {
          if (!readySettled) reject(error)
          readySettled = true
        }
      }
      entry = created
      channels.set(channel, created)
      const conn = current
      if (state === "connected" && conn !== undefined) sendSubscribe(conn, created)
    }
    entry.handlers.add(handlerEntry)
    const owner = entry
    let removed = false
    return {
      channel,
      ready: owner.ready,
      get position() {
        return owner.last
      },
      get active() {
        return !removed && channels.get(channel) === owner && owner.acked
      },
      get ended() {
        return removed ? undefined : owner.ended
      },
      unsubscribe: () => {
        if (removed) return Promise.resolve()
        removed = true
        owner.handlers.delete(handlerEntry)
        if (owner.handlers.size > 0 || channels.get(channel) !== owner) return Promise.resolve()
        return unsubscribeEntry(owner)
      }
    }
  }

  const rpc = (method: string, params?: unknown, requestOptions: RequestOptions = {}): Promise<unknown> => {
    const details = { method }
    return request(
      (id) => (params === undefined ? { type: "rpc", id, method } : { type: "rpc", id, method, params }),
      requestOptions,
      details
    ).then((answer) => (answer.type === "reply" ? answer.result ?? null : null))
  }

  const rooms = roomMethods(rpc)

  /**
   * Hands a message to its channel's handlers, the `message` event and its
   * typed event, if any (`MessageEvents.ts`). Without a subscription only
   * what the protocol sends anyway (broadcasts, signals to `user`) gets
   * through; the rest is a late arrival after an unsubscribe.
   */
  const deliver = (message: MessageFrame, user: string) => {
    const entry = channels.get(message.channel)
    if (entry !== undefined && entry.held !== undefined) {
      entry.held.push(message)
      return
    }
    if (entry !== undefined && isGap(message.position, entry.last) && message.channel.startsWith(roomPrefix)) {
      return fillGap(entry, message, user)
    }
    handOut(message, user)
  }

  /**
   * A room's stored events have dense offsets; a jump means live messages were lost on the way
   * (Redis pub/sub is at most once: a node that lost Redis for a moment misses what was published
   * meanwhile). The missing ones are read from the room's history and handed out first, then
   * what came live meanwhile, so the app still sees every message once and in order. If the
   * connection ends first, the restore replays from the last delivered position instead.
   */
  const fillGap = (entry: ChannelEntry, first: MessageFrame, user: string) => {
    const conn = current
    const since = entry.last
    const upTo = first.position?.offset
    if (since === undefined || upTo === undefined) return handOut(first, user)
    entry.held = [first]
    const room = entry.channel.slice(roomPrefix.length)
    const missing: Array<MessageFrame> = []
    const read = async (): Promise<void> => {
      let after = since.offset
      // Bounded: at most 20 pages of 500 (a larger gap than the retained history cannot be filled anyway).
      for (let page = 0; page < 20 && after < upTo - 1; page++) {
        const result = await rooms.history(room, { after, limit: Math.min(500, upTo - 1 - after) })
        if (result.epoch !== since.epoch) return
        const last = result.messages.at(-1)?.position?.offset
        for (const message of result.messages) missing.push({ type: "message", ...message })
        if (last === undefined || last <= after) return
        after = last
      }
    }
    read().then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof WeftError) emitError(error)
      }
    ).then(() => {
      const held = entry.held
      // Another connection, or unsubscribed meanwhile: nothing to hand out here.
      if (held === undefined || current !== conn || channels.get(entry.channel) !== entry) return
      entry.held = undefined
      for (const message of missing) handOut(message, user)
      for (const message of held) deliver(message, user)
    })
  }

  const handOut = (message: MessageFrame, user: string) => {
    const delivered: ChannelMessage = {
      channel: message.channel,
      data: message.data,
      ...(message.from === undefined ? {} : { from: message.from }),
      ...(message.position === undefined ? {} : { position: message.position }),
      at: message.at
    }
    const entry = channels.get(message.channel)
    if (entry === undefined) {
      if (!arrivesUnsubscribed(delivered, user)) return
    } else {
      if (!isAfter(message.position, entry.last)) return
      if (message.position !== undefined) entry.last = message.position
      for (const { handler } of Array.from(entry.handlers)) {
        try {
          handler(delivered)
        } catch (cause) {
          emitError(clientError("handler_error", `a handler of ${message.channel} threw: ${describeError(cause)}`, { channel: message.channel, cause }))
        }
      }
    }
    events.emit("message", delivered)
    const typed = typedEventOf(delivered, user)
    switch (typed?.type) {
      case undefined:
        return
      case "presence":
        return events.emit("presence", typed.event)
      case "notification":
        return events.emit("notification", typed.event)
      case "read":
        return events.emit("read", typed.event)
      case "signal":
        return events.emit("signal", typed.event)
      case "malformed":
        return emitError(clientError("protocol_error", typed.reason, { channel: message.channel }))
    }
  }

  // -------------------------------------------------------------------------
  // Connection lifecycle
  // -------------------------------------------------------------------------

  const resolveConnectWaiters = (info: ConnectionInfo) => {
    const waiters = connectWaiters
    connectWaiters = []
    for (const waiter of waiters) waiter.resolve(info)
  }

  const rejectConnectWaiters = (error: WeftError) => {
    const waiters = connectWaiters
    connectWaiters = []
    for (const waiter of waiters) waiter.reject(error)
  }

  /** Ends a connection once: stops its timers, fails what it had in flight, and decides what comes next. */
  const endConnection = (conn: Connection, code: number, reason: string, pendingError: WeftError, next: "reconnect" | "stop") => {
    if (conn.ended) return
    conn.ended = true
    for (const cancel of Array.from(conn.timers)) cancel()
    conn.timers.clear()
    let markClosed: () => void = noop
    conn.closed = new Promise<void>((resolve) => {
      markClosed = resolve
    })
    const socket = conn.socket
    socket.onopen = noop
    socket.onmessage = noop
    socket.onerror = noop
    socket.onclose = () => markClosed()
    if (socket.readyState === 3) markClosed()
    else {
      try {
        socket.close(code === 1000 ? 1000 : clientCloseCode, reason.slice(0, 120))
      } catch {
        markClosed()
      }
    }
    const wasConnected = conn.info !== undefined
    const pending = Array.from(conn.pending.values())
    conn.pending.clear()
    if (current === conn) current = undefined
    for (const entry of channels.values()) {
      entry.acked = false
      entry.subscribing = false
      // The restore on the next connection replays from `last`: what was held comes again.
      entry.held = undefined
      entry.cancelRetry()
      entry.cancelRetry = noop
    }
    for (const item of pending) {
      item.cancelTimer()
      item.reject(pendingError)
    }
    events.emit("disconnected", { code, reason, ...(conn.goodbye === undefined ? {} : { goodbye: conn.goodbye }) })
    if (next === "stop" || state === "closed") return
    if (wasConnected && clock.now() - conn.connectedAt >= resetAfterMs) backoffAttempt = 0
    if (!wasConnected) failures += 1
    scheduleReconnect(conn.goodbye)
  }

  /** Socket closed by the other side (or the network). */
  const onSocketClosed = (conn: Connection, code: number, reason: string) => {
    endConnection(conn, code, reason, clientError("disconnected", `the connection closed (${code}${reason === "" ? "" : ` ${reason}`}) before the answer`), "reconnect")
  }

  const giveUp = (error: WeftError) => {
    cancelReconnect()
    cancelReconnect = noop
    waitingForNetwork = false
    setState("disconnected", { error })
    rejectQueue((details) => new WeftError(error.code, error.name, error.message, "client", details))
    rejectConnectWaiters(error)
    emitError(error)
  }

  const scheduleReconnect = (goodbye: GoodbyeAdvice | undefined) => {
    cancelReconnect()
    cancelReconnect = noop
    if (goodbye !== undefined && !goodbye.reconnect) {
      return giveUp(clientError("connect_failed", `the server said goodbye (${goodbye.reason}) and not to reconnect`))
    }
    if (reconnect === undefined) return giveUp(clientError("connect_failed", "the connection ended and reconnecting is off"))
    if (failures >= maxAttempts) return giveUp(clientError("connect_failed", `gave up after ${failures} failed attempts in a row`))
    if (hints !== undefined && !hints.isOnline()) {
      waitingForNetwork = true
      return setState("reconnecting", { attempt: failures, waitingForNetwork: true })
    }
    const delayMs = goodbye !== undefined ? goodbyeDelay(goodbye.after, random) : backoffDelay(backoffAttempt++, backoff, random)
    setState("reconnecting", { attempt: failures, delayMs })
    cancelReconnect = clock.schedule(() => {
      cancelReconnect = noop
      void attempt()
    }, delayMs)
  }

  const nextUrl = async (): Promise<string> => {
    if (options.getUrl !== undefined) return webSocketUrl(await options.getUrl({ attempt: failures, previous: previousUrl }))
    urlIndex = (urlIndex + 1) % urls.length
    return webSocketUrl(urls[urlIndex]!)
  }

  /** Resolves with `promise`, or rejects after `ms` (the promise's outcome is then ignored). */
  const withTimeout = <A>(promise: Promise<A>, ms: number, onTimeout: () => WeftError): Promise<A> =>
    new Promise<A>((resolve, reject) => {
      const cancel = clock.schedule(() => reject(onTimeout()), ms)
      promise.then(
        (value) => {
          cancel()
          resolve(value)
        },
        (error: unknown) => {
          cancel()
          reject(error)
        }
      )
    })

  /** A failed attempt before a socket existed (URL or ticket). */
  const attemptFailed = (error: WeftError) => {
    emitError(error)
    events.emit("disconnected", { code: 1006, reason: error.message })
    failures += 1
    scheduleReconnect(undefined)
  }

  const attempt = async (): Promise<void> => {
    const mine = ++generation
    cancelReconnect()
    cancelReconnect = noop
    waitingForNetwork = false
    setState("connecting", { attempt: failures })
    let url: string
    let ticket: string
    try {
      url = await nextUrl()
      previousUrl = url
    } catch (cause) {
      if (mine === generation && state !== "closed") attemptFailed(clientError("connect_failed", `getUrl failed: ${describeError(cause)}`, { cause }))
      return
    }
    try {
      ticket = await withTimeout(
        Promise.resolve().then(() => options.getTicket({ url, attempt: failures })),
        connectTimeoutMs,
        () => clientError("ticket_failed", `getTicket did not answer within ${connectTimeoutMs} ms`)
      )
    } catch (cause) {
      if (mine !== generation || state === "closed") return
      attemptFailed(
        cause instanceof WeftError && cause.name === "ticket_failed"
          ? cause
          : clientError("ticket_failed", `getTicket failed: ${describeError(cause)}`, { cause })
      )
      return
    }
    if (mine !== generation || state === "closed") return
    let socket: WebSocketLike
    try {
      socket = new WebSocketImpl(withTicket(url, ticket), [subprotocol])
      socket.binaryType = "arraybuffer"
    } catch (cause) {
      attemptFailed(clientError("connect_failed", `cannot open a WebSocket to ${url}: ${describeError(cause)}`, { cause }))
      return
    }
    const conn: Connection = {
      socket,
      url,
      pending: new Map(),
      timers: new Set(),
      info: undefined,
      connectedAt: 0,
      received: 0,
      goodbye: undefined,
      refreshing: false,
      ended: false,
      closed: Promise.resolve()
    }
    current = conn
    schedule(conn, connectTimeoutMs, () => {
      if (conn.info === undefined) {
        endConnection(conn, clientCloseCode, `no welcome within ${connectTimeoutMs} ms`, clientError("disconnected", "the attempt timed out"), "reconnect")
      }
    })
    socket.onopen = noop
    socket.onerror = noop
    socket.onclose = (event) => onSocketClosed(conn, event.code, event.reason)
    socket.onmessage = (event) => onMessage(conn, event.data)
  }

  const onMessage = (conn: Connection, data: unknown) => {
    if (conn.ended) return
    conn.received += 1
    const raw = payloadOf(data)
    if (raw === undefined) return emitError(clientError("protocol_error", "a WebSocket message that is neither text nor bytes"))
    const decoded = Codec.decodeServerFrame(raw, encoding)
    if (decoded._tag === "Left") {
      const type = peekType(raw)
      // The protocol asks clients to ignore frame types they do not know (newer servers add them).
      if (typeof type === "string" && !knownServerTypes.has(type)) return
      return emitError(clientError("protocol_error", `an undecodable frame from the server: ${decoded.left.detail}`))
    }
    onFrame(conn, decoded.right)
  }

  const onFrame = (conn: Connection, frame: ServerFrame) => {
    switch (frame.type) {
      case "welcome":
        return onWelcome(conn, frame)
      case "ack":
      case "reply": {
        const pending = conn.pending.get(frame.id)
        if (pending === undefined) return
        conn.pending.delete(frame.id)
        pending.cancelTimer()
        return pending.resolve(frame)
      }
      case "error": {
        const pending = frame.id === undefined ? undefined : conn.pending.get(frame.id)
        if (pending === undefined || frame.id === undefined) {
          // Without an id (an unreadable frame) it answers nothing; a late answer to a timed-out request is dropped.
          if (frame.id === undefined) emitError(new WeftError(frame.code, frame.name, frame.message, "server"))
          return
        }
        conn.pending.delete(frame.id)
        pending.cancelTimer()
        return pending.reject(new WeftError(frame.code, frame.name, frame.message, "server", pending.details))
      }
      case "message":
        if (conn.info === undefined) return
        return deliver(frame, conn.info.user)
      case "ping":
        return sendRaw(conn, encode(frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id }, {}))
      case "pong":
        return
      case "goodbye": {
        const advice: GoodbyeAdvice = { reason: frame.reason, reconnect: frame.reconnect, ...(frame.after === undefined ? {} : { after: frame.after }) }
        conn.goodbye = advice
        return events.emit("goodbye", advice)
      }
      case "refresh-required":
        if (conn.info === undefined) return
        events.emit("refreshRequired", { expiresAt: frame.expiresAt, deadline: frame.deadline })
        return refreshWithToken(conn, frame.deadline)
      case "unsubscribed":
        return onUnsubscribed(frame.channel, frame.reason)
    }
  }

  // -------------------------------------------------------------------------
  // Credentials
  // -------------------------------------------------------------------------

  /** Sends `refresh` on `conn`; resolves with the new expiry, which the connection's info takes. */
  const sendRefresh = (conn: Connection, token: string): Promise<{ readonly expiresAt?: number }> =>
    new Promise((resolve, reject) => {
      sendRequest(conn, (id) => ({ type: "refresh", id, token }), requestTimeoutMs, {}, (answer) => {
        const expiresAt = answer.type === "ack" ? answer.expiresAt : undefined
        if (conn.info !== undefined) {
          const { expiresAt: _previous, ...rest } = conn.info
          conn.info = expiresAt === undefined ? rest : { ...rest, expiresAt }
        }
        resolve(expiresAt === undefined ? {} : { expiresAt })
      }, reject)
    })

  const emitRefresh = (event: RefreshEvent) => events.emit("refresh", event)

  /**
   * The answer to `refresh-required` when the app gave `getToken`: a new JWT, sent as `refresh`.
   * A transient failure (the server unavailable, no answer, `getToken` failing) is retried with
   * backoff while the deadline allows; a refusal (`invalid_credentials`, `wrong_user`) is not: the
   * connection then expires and the client reconnects with a new ticket.
   */
  const refreshWithToken = (conn: Connection, deadline: number) => {
    const getToken = options.getToken
    if (getToken === undefined || conn.refreshing) return
    conn.refreshing = true
    let retries = 0
    const failed = (error: WeftError) => {
      emitRefresh({ ok: false, error })
      const delayMs = backoffDelay(retries++, backoff, random)
      if (conn.ended || !isRetryableRefresh(error) || clock.now() + delayMs >= deadline) {
        conn.refreshing = false
        return
      }
      schedule(conn, delayMs, () => void run())
    }
    const run = async (): Promise<void> => {
      let token: string
      try {
        token = await withTimeout(
          Promise.resolve().then(getToken),
          connectTimeoutMs,
          () => clientError("token_failed", `getToken did not answer within ${connectTimeoutMs} ms`)
        )
      } catch (cause) {
        if (conn.ended) return
        return failed(cause instanceof WeftError && cause.name === "token_failed" ? cause : clientError("token_failed", `getToken failed: ${describeError(cause)}`, { cause }))
      }
      if (conn.ended || current !== conn) return
      try {
        const renewed = await sendRefresh(conn, token)
        conn.refreshing = false
        emitRefresh({ ok: true, ...renewed })
      } catch (error) {
        if (conn.ended) return
        failed(error instanceof WeftError ? error : clientError("protocol_error", describeError(error)))
      }
    }
    void run()
  }

  /** The server ended a subscription: its handlers stop, and it says why. */
  const onUnsubscribed = (channel: string, reason: string) => {
    const error = new WeftError(
      ServerErrorCodes.forbidden,
      "forbidden",
      `the server ended the subscription to ${channel} (${reason}): the connection's credentials no longer allow it`,
      "server",
      { channel }
    )
    const entry = channels.get(channel)
    if (entry !== undefined) {
      channels.delete(channel)
      entry.cancelRetry()
      entry.ended = error
      entry.rejectReady(error)
    }
    events.emit("unsubscribed", { channel, reason, error })
  }

  const onWelcome = (conn: Connection, welcome: Extract<ServerFrame, { readonly type: "welcome" }>) => {
    if (conn.info !== undefined) return
    const info: ConnectionInfo = {
      conn: welcome.conn,
      user: welcome.user,
      ...(welcome.device === undefined ? {} : { device: welcome.device }),
      node: welcome.node,
      heartbeat: welcome.heartbeat,
      limits: { ...welcome.limits },
      url: conn.url,
      ...(welcome.expiresAt === undefined ? {} : { expiresAt: welcome.expiresAt })
    }
    conn.info = info
    conn.connectedAt = clock.now()
    // The connect timer has done its job.
    for (const cancel of Array.from(conn.timers)) cancel()
    conn.timers.clear()
    failures = 0
    const reconnected = everConnected
    everConnected = true
    // Subscribe frames go before queued publishes: the server handles a connection's frames in order.
    for (const entry of channels.values()) sendSubscribe(conn, entry)
    flushQueue(conn)
    startHeartbeat(conn, info)
    setState("connected")
    events.emit("connected", { info, reconnected })
    resolveConnectWaiters(info)
  }

  // -------------------------------------------------------------------------
  // Heartbeat and liveness
  // -------------------------------------------------------------------------

  /** Pings and expects some frame within the timeout; none means the connection is dead. */
  const probe = (conn: Connection, timeoutMs: number) => {
    const receivedBefore = conn.received
    nextPingId = nextPingId >= maxId ? 0 : nextPingId + 1
    sendRaw(conn, encode({ type: "ping", id: nextPingId }, {}))
    schedule(conn, timeoutMs, () => {
      if (conn.received > receivedBefore) return
      onSocketClosed(conn, clientCloseCode, `no frame within ${timeoutMs} ms of a ping: the connection is dead`)
    })
  }

  const livenessTimeout = (info: ConnectionInfo): number => heartbeat?.timeoutMs ?? info.heartbeat

  const startHeartbeat = (conn: Connection, info: ConnectionInfo) => {
    if (heartbeat === undefined) return
    const ceiling = Math.max(1, Math.floor(info.heartbeat / 2))
    const intervalMs = Math.max(1, Math.min(heartbeat.intervalMs ?? ceiling, ceiling))
    const timeoutMs = livenessTimeout(info)
    const tick = () => {
      probe(conn, timeoutMs)
      schedule(conn, intervalMs, tick)
    }
    schedule(conn, intervalMs, tick)
  }

  const onHint = (hint: Hint) => {
    if (state === "closed" || state === "idle" || state === "disconnected") return
    const conn = current
    if (hint === "offline") {
      if (state === "reconnecting" && !waitingForNetwork) {
        cancelReconnect()
        cancelReconnect = noop
        waitingForNetwork = true
        setState("reconnecting", { attempt: failures, waitingForNetwork: true })
      } else if (state === "connected" && conn?.info !== undefined) {
        probe(conn, livenessTimeout(conn.info))
      }
      return
    }
    if (hint === "online" || hint === "visible") {
      // Back: try now rather than at the end of the backoff; a live-looking connection is checked.
      if (state === "reconnecting") void attempt()
      else if (state === "connected" && conn?.info !== undefined) probe(conn, livenessTimeout(conn.info))
    }
  }

  // -------------------------------------------------------------------------
  // The public surface
  // -------------------------------------------------------------------------

  const connect = (): Promise<ConnectionInfo> => {
    if (state === "closed") return Promise.reject(clientError("closed", "the client is closed"))
    if (state === "connected" && current?.info !== undefined) return Promise.resolve(current.info)
    const waiter = deferred<ConnectionInfo>()
    connectWaiters.push(waiter)
    if (state === "idle" || state === "disconnected") {
      if (state === "idle" && hints !== undefined) stopHints = hints.subscribe(onHint)
      failures = 0
      void attempt()
    }
    return waiter.promise
  }

  const publish = (channel: string, data: unknown, requestOptions: RequestOptions = {}): Promise<PublishAck> => {
    const details = { channel }
    if (!Channel.isChannel(channel)) {
      return Promise.reject(localCatalogueError("invalid_channel", `not a valid channel name: ${JSON.stringify(channel)}`, details))
    }
    // `undefined` has no wire form: publish nil, as the protocol asks for "nothing".
    const payload = data === undefined ? null : data
    return request((id) => ({ type: "publish", id, channel, data: payload }), requestOptions, details).then((answer) =>
      answer.type === "ack" && answer.position !== undefined ? { position: answer.position } : {}
    )
  }


  const refresh = (token: string): Promise<{ readonly expiresAt?: number }> => {
    const conn = current
    if (state !== "connected" || conn === undefined || conn.info === undefined || conn.ended) {
      return Promise.reject(clientError(state === "closed" ? "closed" : "disconnected", "not connected: the next connection uses a new ticket"))
    }
    return sendRefresh(conn, token).then(
      (renewed) => {
        emitRefresh({ ok: true, ...renewed })
        return renewed
      },
      (error: unknown) => {
        const failure = error instanceof WeftError ? error : clientError("protocol_error", describeError(error))
        emitRefresh({ ok: false, error: failure })
        throw failure
      }
    )
  }

  const close = (): Promise<void> => {
    if (state === "closed") return Promise.resolve()
    generation += 1
    cancelReconnect()
    cancelReconnect = noop
    stopHints()
    stopHints = noop
    const error = clientError("closed", "the client was closed")
    setState("closed", { error })
    const conn = current
    let closed = Promise.resolve()
    if (conn !== undefined) {
      endConnection(conn, 1000, "client closed", error, "stop")
      closed = conn.closed
    }
    rejectQueue((details) => clientError("closed", "the client was closed", details))
    rejectConnectWaiters(error)
    for (const entry of channels.values()) {
      entry.cancelRetry()
      entry.rejectReady(clientError("closed", "the client was closed", { channel: entry.channel }))
    }
    channels.clear()
    return withTimeout(closed, 1000, () => clientError("timeout", "the socket did not close in time")).catch(noop)
  }

  return {
    get state() {
      return state
    },
    get info() {
      return state === "connected" ? current?.info : undefined
    },
    connect,
    subscribe,
    publish,
    rpc,
    refresh,
    rooms,
    notifications: notificationMethods(rpc),
    signal: sendSignal(rpc),
    on: (type, listener) => events.on(type, listener),
    off: (type, listener) => events.off(type, listener),
    close
  }
}
