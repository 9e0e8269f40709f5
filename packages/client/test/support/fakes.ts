/**
 * Test doubles for the client's unit tests: a manual clock, scripted random
 * numbers, and an in-memory WebSocket that speaks the real codec (frames the
 * client sends are decoded with @weft/protocol, frames it receives are encoded
 * with it), so no test needs a network or a real timer.
 */
import { Codec, type ClientFrame, type ServerFrame } from "@weft/protocol"
import type { Clock, WebSocketLike } from "../../src/index.ts"

interface Task {
  readonly at: number
  readonly seq: number
  readonly callback: () => void
  cancelled: boolean
}

/** Time that moves only when the test says so. */
export class ManualClock implements Clock {
  private time = 0
  private seq = 0
  private tasks: Array<Task> = []

  readonly now = (): number => this.time

  readonly schedule = (callback: () => void, ms: number): (() => void) => {
    const task: Task = { at: this.time + Math.max(0, ms), seq: this.seq++, callback, cancelled: false }
    this.tasks.push(task)
    return () => {
      task.cancelled = true
    }
  }

  /** Delays (from now) of the timers still pending, soonest first. */
  pending(): Array<number> {
    return this.live().map((task) => task.at - this.time)
  }

  /** Moves time forward, running every timer that falls due, in order (bounded). */
  advance(ms: number): void {
    const until = this.time + ms
    for (let guard = 0; guard < 100_000; guard++) {
      const next = this.live()[0]
      if (next === undefined || next.at > until) break
      this.time = next.at
      next.cancelled = true
      next.callback()
    }
    this.time = until
  }

  private live(): Array<Task> {
    this.tasks = this.tasks.filter((task) => !task.cancelled)
    return [...this.tasks].sort((a, b) => a.at - b.at || a.seq - b.seq)
  }
}

/** Returns the given numbers in turn, then keeps returning the last one. */
export const scriptedRandom = (values: ReadonlyArray<number>): (() => number) => {
  let index = 0
  return () => values[Math.min(index++, values.length - 1)] ?? 0.5
}

/** Lets pending promise callbacks run (the client awaits getUrl/getTicket between steps). */
export const flush = async (rounds = 5): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

export const welcomeFrame = (node = "node-a", heartbeat = 25_000, maxFrameBytes = 65_536): ServerFrame => ({
  type: "welcome",
  protocol: "weft.v1",
  conn: `conn/${node}/1`,
  user: "alice",
  node,
  heartbeat,
  limits: { maxFrameBytes, maxSubscriptions: 100, ratePerSecond: 100 }
})

export interface FakeSocket extends WebSocketLike {
  readonly url: string
  readonly protocols: ReadonlyArray<string>
  /** Frames the client sent, decoded with the protocol codec. */
  readonly sent: Array<ClientFrame>
  readonly undecodable: Array<string>
  closedByClient: { readonly code: number | undefined; readonly reason: string | undefined } | undefined
  /** The server accepts the upgrade and sends `welcome`. */
  accept(welcome?: ServerFrame): void
  /** The upgrade fails (refused, 401, network): error then close 1006. */
  refuse(): void
  receive(frame: ServerFrame): void
  receiveRaw(data: unknown): void
  /** The server (or the network) closes the socket. */
  serverClose(code: number, reason?: string): void
  /** The ticket in the URL. */
  ticket(): string | null
}

/** A WebSocket constructor whose sockets the test drives by hand. */
export const fakeWebSocket = () => {
  const sockets: Array<FakeSocket> = []
  class Fake implements FakeSocket {
    binaryType = "blob"
    protocol = ""
    readyState = 0
    onopen: WebSocketLike["onopen"] = null
    onmessage: WebSocketLike["onmessage"] = null
    onclose: WebSocketLike["onclose"] = null
    onerror: WebSocketLike["onerror"] = null
    readonly sent: Array<ClientFrame> = []
    readonly undecodable: Array<string> = []
    readonly protocols: ReadonlyArray<string>
    closedByClient: FakeSocket["closedByClient"] = undefined

    constructor(readonly url: string, protocols?: string | Array<string>) {
      this.protocols = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : [...protocols]
      sockets.push(this)
    }

    private get encoding(): Codec.Encoding {
      return this.protocols.includes(Codec.subprotocols.json) ? "json" : "msgpack"
    }

    send(data: string | Uint8Array): void {
      if (this.readyState !== 1) throw new Error(`send in readyState ${this.readyState}`)
      const decoded = Codec.decodeClientFrame(data, this.encoding)
      if (decoded._tag === "Left") this.undecodable.push(decoded.left.detail)
      else this.sent.push(decoded.right)
    }

    close(code?: number, reason?: string): void {
      if (this.readyState === 3) return
      this.closedByClient = { code, reason }
      this.readyState = 3
      queueMicrotask(() => this.onclose?.({ code: code ?? 1005, reason: reason ?? "" }))
    }

    accept(welcome: ServerFrame = welcomeFrame()): void {
      this.readyState = 1
      this.protocol = this.protocols[0] ?? ""
      this.onopen?.({})
      this.receive(welcome)
    }

    refuse(): void {
      this.readyState = 3
      this.onerror?.({})
      this.onclose?.({ code: 1006, reason: "" })
    }

    receive(frame: ServerFrame): void {
      const raw = Codec.encodeServerFrame(frame, this.encoding)
      // A fresh ArrayBuffer, as a socket with binaryType "arraybuffer" delivers.
      this.receiveRaw(typeof raw === "string" ? raw : new Uint8Array(raw).buffer)
    }

    receiveRaw(data: unknown): void {
      if (this.readyState !== 1) throw new Error(`receive in readyState ${this.readyState}`)
      this.onmessage?.({ data })
    }

    serverClose(code: number, reason = ""): void {
      this.readyState = 3
      this.onclose?.({ code, reason })
    }

    ticket(): string | null {
      return new URL(this.url).searchParams.get("ticket")
    }
  }
  return {
    WebSocket: Fake,
    sockets,
    last: (): FakeSocket => {
      const socket = sockets[sockets.length - 1]
      if (socket === undefined) throw new Error("no socket yet")
      return socket
    }
  }
}

/** The frames of one type a fake socket received from the client. */
export const sentOfType = <T extends ClientFrame["type"]>(socket: FakeSocket, type: T): Array<Extract<ClientFrame, { readonly type: T }>> =>
  socket.sent.filter((frame): frame is Extract<ClientFrame, { readonly type: T }> => frame.type === type)
