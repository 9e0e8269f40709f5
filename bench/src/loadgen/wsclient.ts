/**
 * A minimal WebSocket client (RFC 6455) on Bun's TCP sockets, for the load
 * generator only. Bun's `WebSocket` costs ~10 us of CPU per received message
 * (an event object each); this parses frames straight from the socket's bytes,
 * several per read, so one load generator process can take several hundred
 * thousand deliveries a second and the contenders, not the client, set the
 * figures. Every contender is driven through it (Socket.IO through its wire
 * protocol on top, socketio.ts).
 *
 * What it does: the HTTP/1.1 upgrade (with `Sec-WebSocket-Accept` checked and an
 * optional subprotocol), masked client frames, unmasked server frames of any length,
 * fragmented messages, ping (answered with pong) and close. Not: extensions
 * (no permessage-deflate is offered) or TLS (the bench is loopback only).
 */
import type { Socket } from "bun"
import { createHash, randomBytes } from "node:crypto"

export interface WsHandlers {
  readonly onOpen: () => void
  /** One complete message: `text` true for opcode 1. The bytes are only valid during the call. */
  readonly onMessage: (payload: Uint8Array, text: boolean) => void
  /** The connection ended (after open: a close frame or the TCP connection; before: the reason). */
  readonly onClose: (code: number, reason: string) => void
}

export interface WsConnection {
  readonly sendText: (text: string) => void
  readonly sendBinary: (bytes: Uint8Array) => void
  /** Closes the TCP connection at once (no close handshake): what a crash or a dropped network looks like. */
  readonly terminate: () => void
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
const encoder = new TextEncoder()

interface State {
  handlers: WsHandlers
  handshake: boolean
  expectedAccept: string
  /** Unparsed bytes (a partial frame or the HTTP response so far). */
  pending: Uint8Array | undefined
  /** Fragments of a message in progress. */
  fragments: Array<Uint8Array> | undefined
  fragmentText: boolean
  /** Bytes the socket did not take yet (written on drain). */
  outbox: Array<Uint8Array>
  closed: boolean
}

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/** A client frame: FIN, the opcode, the mask bit, the length and the masked payload. */
const frame = (opcode: number, payload: Uint8Array): Uint8Array => {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const out = new Uint8Array(headerLength + 4 + length)
  out[0] = 0x80 | opcode
  if (length < 126) out[1] = 0x80 | length
  else if (length < 65536) {
    out[1] = 0x80 | 126
    out[2] = length >> 8
    out[3] = length & 0xff
  } else {
    out[1] = 0x80 | 127
    new DataView(out.buffer).setBigUint64(2, BigInt(length))
  }
  const mask = out.subarray(headerLength, headerLength + 4)
  crypto.getRandomValues(mask)
  for (let i = 0; i < length; i++) out[headerLength + 4 + i] = payload[i]! ^ mask[i & 3]!
  return out
}

const write = (socket: Socket<State>, bytes: Uint8Array): void => {
  const state = socket.data
  if (state.closed) return
  if (state.outbox.length > 0) {
    state.outbox.push(bytes)
    return
  }
  const written = socket.write(bytes)
  if (written < bytes.length) state.outbox.push(bytes.subarray(Math.max(0, written)))
}

const finish = (socket: Socket<State>, code: number, reason: string): void => {
  const state = socket.data
  if (state.closed) return
  state.closed = true
  socket.end()
  state.handlers.onClose(code, reason)
}

/** Parses as many whole frames as `bytes` holds; returns what is left of a partial one. */
const parseFrames = (socket: Socket<State>, bytes: Uint8Array): Uint8Array | undefined => {
  const state = socket.data
  let offset = 0
  while (offset + 2 <= bytes.length && !state.closed) {
    const b0 = bytes[offset]!
    const b1 = bytes[offset + 1]!
    let length = b1 & 0x7f
    let header = 2
    if (length === 126) {
      if (offset + 4 > bytes.length) break
      length = (bytes[offset + 2]! << 8) | bytes[offset + 3]!
      header = 4
    } else if (length === 127) {
      if (offset + 10 > bytes.length) break
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + offset + 2, 8).getBigUint64(0))
      header = 10
    }
    const masked = (b1 & 0x80) !== 0
    const start = offset + header + (masked ? 4 : 0)
    if (start + length > bytes.length) break
    let payload = bytes.subarray(start, start + length)
    if (masked) {
      const mask = bytes.subarray(offset + header, offset + header + 4)
      payload = payload.map((b, i) => b ^ mask[i & 3]!)
    }
    offset = start + length
    const fin = (b0 & 0x80) !== 0
    const opcode = b0 & 0x0f
    switch (opcode) {
      case 0x0: // continuation
        if (state.fragments === undefined) return finish(socket, 1002, "continuation without a start"), undefined
        state.fragments.push(payload.slice())
        if (fin) {
          const whole = state.fragments.reduce(concat)
          state.fragments = undefined
          state.handlers.onMessage(whole, state.fragmentText)
        }
        break
      case 0x1:
      case 0x2:
        if (fin) state.handlers.onMessage(payload, opcode === 0x1)
        else {
          state.fragments = [payload.slice()]
          state.fragmentText = opcode === 0x1
        }
        break
      case 0x8: {
        const code = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1005
        const reason = payload.length > 2 ? new TextDecoder().decode(payload.subarray(2)) : ""
        write(socket, frame(0x8, payload.subarray(0, 2)))
        finish(socket, code, reason)
        return undefined
      }
      case 0x9:
        write(socket, frame(0xa, payload))
        break
      case 0xa:
        break
      default:
        finish(socket, 1002, `unknown opcode ${opcode}`)
        return undefined
    }
  }
  return offset < bytes.length ? bytes.slice(offset) : undefined
}

const headerEnd = (bytes: Uint8Array): number => {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) return i + 1
  }
  return -1
}

/**
 * Opens `ws://host:port/path`. `onClose` before `onOpen` means the attempt failed; its reason
 * is `HTTP <status>` when the server answered without upgrading.
 */
export const connectWs = (url: string, protocol: string | undefined, handlers: WsHandlers): WsConnection => {
  const parsed = new URL(url)
  const key = randomBytes(16).toString("base64")
  const state: State = {
    handlers,
    handshake: false,
    expectedAccept: createHash("sha1").update(key + GUID).digest("base64"),
    pending: undefined,
    fragments: undefined,
    fragmentText: false,
    outbox: [],
    closed: false
  }
  let socket: Socket<State> | undefined
  let terminated = false
  const request = encoder.encode(
    `GET ${parsed.pathname}${parsed.search} HTTP/1.1\r\n` +
      `Host: ${parsed.host}\r\n` +
      "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      (protocol === undefined ? "" : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
      "\r\n"
  )
  Bun.connect<State>({
    hostname: parsed.hostname,
    port: Number(parsed.port),
    data: state,
    socket: {
      open(s) {
        socket = s
        if (terminated) return void s.end()
        write(s, request)
      },
      data(s, chunk) {
        let bytes: Uint8Array = s.data.pending === undefined ? chunk : concat(s.data.pending, chunk)
        s.data.pending = undefined
        if (!s.data.handshake) {
          const end = headerEnd(bytes)
          if (end === -1) {
            s.data.pending = bytes.slice()
            return
          }
          const head = new TextDecoder().decode(bytes.subarray(0, end))
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
          if (status !== 101) return finish(s, 1006, `HTTP ${status}`)
          const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1]
          if (accept !== s.data.expectedAccept) return finish(s, 1006, "bad Sec-WebSocket-Accept")
          s.data.handshake = true
          s.data.handlers.onOpen()
          bytes = bytes.subarray(end)
          if (bytes.length === 0) return
        }
        // A partial frame is kept as a copy (`slice`): `chunk` is Bun's to reuse after this call.
        s.data.pending = parseFrames(s, bytes)
      },
      drain(s) {
        const outbox = s.data.outbox
        while (outbox.length > 0) {
          const next = outbox[0]!
          const written = s.write(next)
          if (written < next.length) {
            outbox[0] = next.subarray(Math.max(0, written))
            return
          }
          outbox.shift()
        }
      },
      close(s) {
        finish(s, 1006, s.data.handshake ? "connection closed" : "connection closed before the upgrade")
      },
      error(s, error) {
        finish(s, 1006, error.message)
      },
      connectError(_s, error) {
        state.closed = true
        handlers.onClose(1006, `connect: ${error.message}`)
      }
    }
  }).catch((error: unknown) => {
    if (state.closed) return
    state.closed = true
    handlers.onClose(1006, `connect: ${error instanceof Error ? error.message : String(error)}`)
  })
  return {
    sendText: (text) => {
      if (socket !== undefined && state.handshake) write(socket, frame(0x1, encoder.encode(text)))
    },
    sendBinary: (bytes) => {
      if (socket !== undefined && state.handshake) write(socket, frame(0x2, bytes))
    },
    terminate: () => {
      terminated = true
      if (socket !== undefined && !state.closed) {
        state.closed = true
        socket.terminate()
      }
    }
  }
}
