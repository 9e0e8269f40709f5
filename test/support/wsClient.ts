/**
 * A test client for the gateway: JWTs, tickets, and WebSockets (the `ws`
 * package, as Node 20 has no global WebSocket) that collect decoded frames.
 */
import { Codec, type ClientFrame, type ServerFrame } from "@weft/protocol"
import { Either } from "effect"
import { SignJWT } from "jose"
import WebSocket from "ws"

export const jwtSecret = "test-secret-that-is-long-enough-for-hs256!"

export interface Claims {
  readonly sub: string
  readonly weft?: { readonly device?: string; readonly subscribe?: ReadonlyArray<string>; readonly publish?: ReadonlyArray<string> }
  readonly expiresIn?: string
}

/** An HS256 JWT signed with `jwtSecret`. */
export const makeJwt = (claims: Claims, secret = jwtSecret): Promise<string> => {
  const { expiresIn, sub, ...rest } = claims
  return new SignJWT({ ...rest })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn ?? "10m")
    .sign(new TextEncoder().encode(secret))
}

export const requestTicket = async (baseUrl: string, jwt: string | undefined): Promise<Response> =>
  fetch(`${baseUrl}/v1/tickets`, {
    method: "POST",
    headers: jwt === undefined ? {} : { authorization: `Bearer ${jwt}` }
  })

export const ticketFor = async (baseUrl: string, claims: Claims): Promise<string> => {
  const response = await requestTicket(baseUrl, await makeJwt(claims))
  if (response.status !== 200) throw new Error(`ticket: HTTP ${response.status} ${await response.text()}`)
  const body = (await response.json()) as { ticket: string }
  return body.ticket
}

export const wsUrl = (baseUrl: string, ticket: string | undefined): string =>
  `${baseUrl.replace(/^http/, "ws")}/v1/ws${ticket === undefined ? "" : `?ticket=${encodeURIComponent(ticket)}`}`

export interface Refusal {
  readonly status: number
  readonly body: string
}

/**
 * Messages that arrive before `wrap` attaches its listener: the server's first frame can
 * come in the same packet as the upgrade response, and `ws` emits it right after `open`.
 */
const early = new WeakMap<WebSocket, Array<{ readonly data: Buffer; readonly isBinary: boolean }>>()

/** Tries to open a WebSocket; resolves with the HTTP refusal if the server answers without upgrading. */
export const tryConnect = (
  url: string,
  options: { readonly protocols?: ReadonlyArray<string>; readonly origin?: string } = {}
): Promise<WebSocket | Refusal> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options.protocols === undefined ? [] : [...options.protocols], {
      ...(options.origin === undefined ? {} : { origin: options.origin })
    })
    const buffered: Array<{ readonly data: Buffer; readonly isBinary: boolean }> = []
    early.set(socket, buffered)
    socket.on("message", function buffer(data: Buffer, isBinary: boolean) {
      if (early.get(socket) === buffered) buffered.push({ data, isBinary })
      else socket.off("message", buffer)
    })
    socket.once("open", () => resolve(socket))
    socket.once("unexpected-response", (_request, response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => (body += chunk.toString()))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
    })
    socket.once("error", reject)
  })

export interface Client {
  readonly socket: WebSocket
  readonly encoding: Codec.Encoding
  readonly frames: Array<ServerFrame>
  /** Frames the client could not decode (must stay empty). */
  readonly undecodable: Array<string>
  readonly send: (frame: ClientFrame) => void
  /** Sends bytes or text as is (for bad-input tests). */
  readonly sendRaw: (data: string | Uint8Array) => void
  /** The first frame (received so far or later) matching, removed from `frames`. */
  readonly next: (predicate: (frame: ServerFrame) => boolean, timeoutMs?: number) => Promise<ServerFrame>
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>
  readonly close: () => void
}

export const wrap = (socket: WebSocket, encoding: Codec.Encoding): Client => {
  const frames: Array<ServerFrame> = []
  const undecodable: Array<string> = []
  const waiters = new Set<() => void>()
  const receive = (data: Buffer, isBinary: boolean) => {
    const raw = isBinary ? new Uint8Array(data) : data.toString("utf8")
    const decoded = Codec.decodeServerFrame(raw, encoding)
    if (Either.isLeft(decoded)) undecodable.push(decoded.left.detail)
    else frames.push(decoded.right)
    for (const waiter of waiters) waiter()
  }
  for (const message of early.get(socket) ?? []) receive(message.data, message.isBinary)
  early.delete(socket)
  socket.on("message", receive)
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
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
        reject(new Error(`no matching frame within ${timeoutMs} ms; have ${JSON.stringify(frames)}`))
      }, timeoutMs)
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  return {
    socket,
    encoding,
    frames,
    undecodable,
    send: (frame) => socket.send(Codec.encodeClientFrame(frame, encoding)),
    sendRaw: (data) => socket.send(data),
    next,
    closed,
    close: () => socket.close()
  }
}

/** Gets a ticket for `claims`, connects with the encoding's subprotocol and waits for the welcome. */
export const connectAs = async (
  baseUrl: string,
  claims: Claims,
  encoding: Codec.Encoding = "msgpack"
): Promise<{ readonly client: Client; readonly welcome: ServerFrame }> => {
  const ticket = await ticketFor(baseUrl, claims)
  const opened = await tryConnect(wsUrl(baseUrl, ticket), { protocols: [Codec.subprotocols[encoding]] })
  if (!(opened instanceof WebSocket)) throw new Error(`refused: ${opened.status} ${opened.body}`)
  const client = wrap(opened, encoding)
  const welcome = await client.next((frame) => frame.type === "welcome")
  return { client, welcome }
}
