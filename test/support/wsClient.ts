/**
 * A test client for the gateway: JWTs, tickets, and WebSockets (the `ws`
 * package, as Node 20 has no global WebSocket) that collect decoded frames.
 */
import { encode } from "@msgpack/msgpack"
import { Codec, type ClientFrame, type ServerFrame } from "@weft/protocol"
import { Either } from "effect"
import { Socket } from "node:net"
import WebSocket from "ws"
import { type Claims, makeJwt } from "./jwt.ts"

export { type Claims, jwtSecret, makeJwt } from "./jwt.ts"

export const requestTicket = async (baseUrl: string, jwt: string | undefined): Promise<Response> =>
  fetch(`${baseUrl}/v1/tickets`, {
    method: "POST",
    headers: jwt === undefined ? {} : { authorization: `Bearer ${jwt}` },
    signal: AbortSignal.timeout(10_000)
  })

export const ticketFor = async (baseUrl: string, claims: Claims): Promise<string> => {
  const response = await requestTicket(baseUrl, await makeJwt(claims))
  if (response.status !== 200) throw new Error(`ticket: HTTP ${response.status} ${await response.text()}`)
  const body: unknown = await response.json()
  const ticket = typeof body === "object" && body !== null && "ticket" in body ? body.ticket : undefined
  if (typeof ticket !== "string") throw new Error(`ticket: unexpected body ${JSON.stringify(body)}`)
  return ticket
}

export const wsUrl = (baseUrl: string, ticket: string | undefined): string =>
  `${baseUrl.replace(/^http/, "ws")}/v1/ws${ticket === undefined ? "" : `?ticket=${encodeURIComponent(ticket)}`}`

export interface Refusal {
  readonly status: number
  readonly body: string
}

export const isRefusal = (value: WebSocket | Refusal): value is Refusal => !(value instanceof WebSocket)

/**
 * What a socket received before `wrap` took it over. The server speaks first (`welcome`), often
 * in the same TCP segment as the 101, and `ws` emits that message before a promise continuation
 * that waited for `open` can add its listener: without this buffer the welcome could be lost.
 */
interface Early {
  readonly messages: Array<{ readonly data: WebSocket.RawData; readonly isBinary: boolean }>
  closed: { readonly code: number; readonly reason: string } | undefined
  readonly onMessage: (data: WebSocket.RawData, isBinary: boolean) => void
  readonly onClose: (code: number, reason: Buffer) => void
}

const early = new WeakMap<WebSocket, Early>()

const bufferEarly = (socket: WebSocket): void => {
  const state: Early = {
    messages: [],
    closed: undefined,
    onMessage: (data, isBinary) => void state.messages.push({ data, isBinary }),
    onClose: (code, reason) => {
      state.closed = { code, reason: reason.toString() }
    }
  }
  socket.on("message", state.onMessage)
  socket.once("close", state.onClose)
  early.set(socket, state)
}

export interface ConnectOptions {
  /** Subprotocols to offer; none (no `Sec-WebSocket-Protocol` header) when absent or empty. */
  readonly protocols?: ReadonlyArray<string>
  readonly origin?: string
}

/**
 * Tries to open a WebSocket; resolves with the HTTP refusal if the server answers without
 * upgrading. Messages that arrive before `wrap` are kept for it.
 */
export const tryConnect = (url: string, options: ConnectOptions = {}): Promise<WebSocket | Refusal> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options.protocols === undefined ? [] : [...options.protocols], {
      ...(options.origin === undefined ? {} : { origin: options.origin }),
      handshakeTimeout: 10_000
    })
    bufferEarly(socket)
    socket.once("open", () => resolve(socket))
    socket.once("unexpected-response", (_request, response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => (body += chunk.toString()))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
    })
    socket.once("error", reject)
  })

/** The bytes of a `ws` message (the default `nodebuffer` binary type gives a Buffer). */
export const rawBytes = (data: WebSocket.RawData): Uint8Array =>
  Array.isArray(data) ? new Uint8Array(Buffer.concat(data)) : data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data)

export type FrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { readonly type: T }>

export interface Client {
  readonly socket: WebSocket
  readonly encoding: Codec.Encoding
  readonly frames: Array<ServerFrame>
  /** The kind of every message received, in order. */
  readonly kinds: Array<"binary" | "text">
  /** Frames the client could not decode (must stay empty). */
  readonly undecodable: Array<string>
  readonly send: (frame: ClientFrame) => void
  /** Sends bytes or text as is (for bad-input tests). */
  readonly sendRaw: (data: string | Uint8Array) => void
  /** Sends any value, not checked against the frame schemas, in the client's encoding (for bad-input tests). */
  readonly sendUnchecked: (value: unknown) => void
  /** The first frame (received so far or later) matching, removed from `frames`. */
  readonly next: (predicate: (frame: ServerFrame) => boolean, timeoutMs?: number) => Promise<ServerFrame>
  /** `next` for one frame type, typed. */
  readonly nextOf: <T extends ServerFrame["type"]>(
    type: T,
    predicate?: (frame: FrameOf<T>) => boolean,
    timeoutMs?: number
  ) => Promise<FrameOf<T>>
  /** The answer (`ack`, `reply` or `error`) to the request `id`. */
  readonly answer: (id: number, timeoutMs?: number) => Promise<FrameOf<"ack" | "reply" | "error">>
  /** Sends `ping` with `id` and waits for the `pong` with that id: the connection is usable. */
  readonly ping: (id: number, timeoutMs?: number) => Promise<void>
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>
  readonly close: () => void
}

/** Frames for an error message: short, whatever they carry. */
const describeFrames = (frames: ReadonlyArray<ServerFrame>): string => {
  const text = JSON.stringify(frames.slice(0, 20), (_key, value: unknown) =>
    value instanceof Uint8Array ? `<${value.length} bytes>` : value)
  return `${frames.length} frames: ${text.length > 2000 ? `${text.slice(0, 2000)}...` : text}`
}

const isType = <T extends ServerFrame["type"]>(type: T) => (frame: ServerFrame): frame is FrameOf<T> => frame.type === type

export const wrap = (socket: WebSocket, encoding: Codec.Encoding): Client => {
  const frames: Array<ServerFrame> = []
  const kinds: Array<"binary" | "text"> = []
  const undecodable: Array<string> = []
  const waiters = new Set<() => void>()
  const onMessage = (data: WebSocket.RawData, isBinary: boolean) => {
    const bytes = rawBytes(data)
    kinds.push(isBinary ? "binary" : "text")
    const raw = isBinary ? bytes : Buffer.from(bytes).toString("utf8")
    const decoded = Codec.decodeServerFrame(raw, encoding)
    if (Either.isLeft(decoded)) undecodable.push(decoded.left.detail)
    else frames.push(decoded.right)
    for (const waiter of waiters) waiter()
  }
  const buffered = early.get(socket)
  early.delete(socket)
  if (buffered !== undefined) {
    socket.off("message", buffered.onMessage)
    socket.off("close", buffered.onClose)
    for (const message of buffered.messages) onMessage(message.data, message.isBinary)
  }
  socket.on("message", onMessage)
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    if (buffered?.closed !== undefined) return resolve(buffered.closed)
    socket.once("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))
  })
  const next = (predicate: (frame: ServerFrame) => boolean, timeoutMs = 10_000): Promise<ServerFrame> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const index = frames.findIndex(predicate)
        if (index === -1) return
        const [frame] = frames.splice(index, 1)
        cleanup()
        resolve(frame!)
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`no matching frame within ${timeoutMs} ms; have ${describeFrames(frames)}`))
      }, timeoutMs)
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  const nextOf = async <T extends ServerFrame["type"]>(
    type: T,
    predicate: (frame: FrameOf<T>) => boolean = () => true,
    timeoutMs?: number
  ): Promise<FrameOf<T>> => {
    const is = isType(type)
    const frame = await next((candidate) => is(candidate) && predicate(candidate), timeoutMs)
    if (!is(frame)) throw new Error(`expected a ${type} frame, got ${JSON.stringify(frame)}`)
    return frame
  }
  const isAnswer = (frame: ServerFrame): frame is FrameOf<"ack" | "reply" | "error"> =>
    frame.type === "ack" || frame.type === "reply" || frame.type === "error"
  const answer = async (id: number, timeoutMs?: number) => {
    const frame = await next((candidate) => isAnswer(candidate) && candidate.id === id, timeoutMs)
    if (!isAnswer(frame)) throw new Error(`expected an answer, got ${JSON.stringify(frame)}`)
    return frame
  }
  const send = (frame: ClientFrame) => socket.send(Codec.encodeClientFrame(frame, encoding))
  return {
    socket,
    encoding,
    frames,
    kinds,
    undecodable,
    send,
    sendRaw: (data) => socket.send(data),
    sendUnchecked: (value) => socket.send(encoding === "msgpack" ? encode(value) : JSON.stringify(value)),
    next,
    nextOf,
    answer,
    ping: async (id, timeoutMs) => {
      send({ type: "ping", id })
      await nextOf("pong", (frame) => frame.id === id, timeoutMs)
    },
    closed,
    close: () => socket.close()
  }
}

export type Encoding = Codec.Encoding | "none"

const protocolsFor = (encoding: Encoding): ReadonlyArray<string> => (encoding === "none" ? [] : [Codec.subprotocols[encoding]])

/** Connects with a ticket and the encoding's subprotocol (`none`: no header, msgpack by default) and waits for the welcome. */
export const connectWithTicket = async (
  baseUrl: string,
  ticket: string,
  encoding: Encoding = "msgpack",
  options: { readonly origin?: string } = {}
): Promise<{ readonly client: Client; readonly welcome: FrameOf<"welcome"> }> => {
  const opened = await tryConnect(wsUrl(baseUrl, ticket), { protocols: protocolsFor(encoding), ...options })
  if (isRefusal(opened)) throw new Error(`refused: ${opened.status} ${opened.body}`)
  const client = wrap(opened, encoding === "none" ? Codec.defaultEncoding : encoding)
  const welcome = await client.nextOf("welcome")
  return { client, welcome }
}

/** Gets a ticket for `claims`, connects with the encoding's subprotocol and waits for the welcome. */
export const connectAs = async (
  baseUrl: string,
  claims: Claims,
  encoding: Encoding = "msgpack"
): Promise<{ readonly client: Client; readonly welcome: FrameOf<"welcome"> }> =>
  connectWithTicket(baseUrl, await ticketFor(baseUrl, claims), encoding)

let lastRequestId = 0

/** A request id no other request of this test process uses. */
export const requestId = (): number => ++lastRequestId

/** Sends the request built with a fresh id and returns its answer (`ack`, `reply` or `error` with that id). */
export const request = (
  client: Client,
  frame: (id: number) => ClientFrame,
  timeoutMs = 20_000
): Promise<FrameOf<"ack" | "reply" | "error">> => {
  const id = requestId()
  client.send(frame(id))
  return client.answer(id, timeoutMs)
}

/** `request` of an `rpc` frame. */
export const rpc = (client: Client, method: string, params: unknown): Promise<FrameOf<"ack" | "reply" | "error">> =>
  request(client, (id) => ({ type: "rpc", id, method, params }))

/** Closes every client given (ignoring those already closed) and waits until they are. */
export const closeAll = async (clients: ReadonlyArray<Client>): Promise<void> => {
  for (const client of clients) {
    if (client.socket.readyState === WebSocket.OPEN || client.socket.readyState === WebSocket.CONNECTING) client.socket.terminate()
  }
  await Promise.all(clients.map((client) => client.closed))
}

// ---------------------------------------------------------------------------
// Below the `ws` API: raw frames and the TCP socket
// ---------------------------------------------------------------------------

/** The TCP socket under a `ws` WebSocket (to pause reading, or to write frames in one segment). */
export const tcpSocket = (socket: WebSocket): Socket => {
  const inner: unknown = Reflect.get(socket, "_socket")
  if (!(inner instanceof Socket)) throw new Error("the WebSocket has no TCP socket (not open yet?)")
  return inner
}

/** One masked client frame (RFC 6455 §5.2): FIN set, opcode 1 (text) or 2 (binary). */
export const clientFrameBytes = (payload: Uint8Array | string, opcode: 1 | 2 = typeof payload === "string" ? 1 : 2): Buffer => {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload)
  const length = body.length
  const header = length < 126
    ? Buffer.from([0x80 | opcode, 0x80 | length])
    : length < 65536
    ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff])
    : (() => {
      const long = Buffer.alloc(10)
      long[0] = 0x80 | opcode
      long[1] = 0x80 | 127
      long.writeBigUInt64BE(BigInt(length), 2)
      return long
    })()
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = body[i]! ^ mask[i % 4]!
  return Buffer.concat([header, mask, masked])
}

/**
 * Writes several client frames with one TCP write, so that the server reads them in one go and
 * handles them back to back, before any I/O it starts for the first can complete.
 */
export const sendTogether = (client: Client, frames: ReadonlyArray<ClientFrame>): void => {
  const bytes = frames.map((frame) => clientFrameBytes(Codec.encodeClientFrame(frame, client.encoding)))
  tcpSocket(client.socket).write(Buffer.concat(bytes))
}
