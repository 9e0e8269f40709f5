/**
 * The node's live WebSockets, by connection key, and the one place frames
 * are written to them. A connection actor finds its socket here; the Bun
 * server itself is set once it listens (fan-out publishes through it).
 */
import type { Grant } from "@weft/auth"
import type { ActorRef } from "@weft/actor"
import { type Encoding, Codec, type ServerFrame } from "@weft/protocol"
import type { Server, ServerWebSocket } from "bun"
import { Context, Effect, Layer } from "effect"
import * as GatewayMetrics from "./GatewayMetrics.ts"
import type { Bucket } from "./RateLimit.ts"
import type { ConnectionMessage } from "./ConnectionActor.ts"

/** What Bun keeps on each socket (`ws.data`). */
export interface SocketState {
  /** `<node>/<n>`: the connection actor's key; its address is `conn/<key>`. */
  readonly key: string
  /** The connection's credentials: the ticket's grant, replaced by each successful `refresh`. */
  grant: Grant
  readonly encoding: Encoding
  /** Whether the client offered a subprotocol (the upgrade then echoes the chosen one). */
  readonly bucket: Bucket
  /** Request ids accepted and not yet answered. */
  readonly inFlight: Set<number>
  lastFrameAt: number
  /** The connection actor, set when the socket opens. */
  actor: ActorRef<ConnectionMessage> | undefined
  closing: boolean
}

export type Socket = ServerWebSocket<SocketState>

export interface SocketsService {
  readonly get: (key: string) => Socket | undefined
  readonly add: (socket: Socket) => void
  readonly remove: (socket: Socket) => void
  readonly all: () => IterableIterator<Socket>
  readonly count: () => number
  /** Encodes and writes a frame; `false` when the socket dropped it (backpressure limit) or is closing. */
  readonly send: (socket: Socket, frame: ServerFrame) => boolean
  /** The listening server, once there is one. */
  readonly server: () => Server<SocketState> | undefined
  readonly setServer: (server: Server<SocketState> | undefined) => void
}

export class Sockets extends Context.Tag("@weft/gateway/Sockets")<Sockets, SocketsService>() {}

export const make = (): SocketsService => {
  const sockets = new Map<string, Socket>()
  let server: Server<SocketState> | undefined
  return {
    get: (key) => sockets.get(key),
    add: (socket) => {
      sockets.set(socket.data.key, socket)
      GatewayMetrics.setConnections(sockets.size)
    },
    remove: (socket) => {
      if (sockets.get(socket.data.key) === socket) sockets.delete(socket.data.key)
      GatewayMetrics.setConnections(sockets.size)
    },
    all: () => sockets.values(),
    count: () => sockets.size,
    send: (socket, frame) => {
      if (socket.data.closing) return false
      const raw = Codec.encodeServerFrame(frame, socket.data.encoding)
      // 0: dropped past the backpressure limit; -1: queued under backpressure; >0: written.
      const sent = (typeof raw === "string" ? socket.sendText(raw) : socket.sendBinary(raw)) !== 0
      if (sent) GatewayMetrics.recordOut(frame.type, 1)
      else GatewayMetrics.recordDropped(frame.type)
      return sent
    },
    server: () => server,
    setServer: (next) => {
      server = next
    }
  }
}

export const layer: Layer.Layer<Sockets> = Layer.sync(Sockets, make)

/** Answers a request: writes the frame and frees its id. */
export const answer = (sockets: SocketsService, socket: Socket, id: number | undefined, frame: ServerFrame): Effect.Effect<void> =>
  Effect.sync(() => {
    if (id !== undefined) socket.data.inFlight.delete(id)
    sockets.send(socket, frame)
  })
