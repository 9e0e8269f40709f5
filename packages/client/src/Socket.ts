/**
 * The part of the Web-standard `WebSocket` the SDK uses. Browsers, Bun, Deno
 * and Node 22+ have it as a global; on Node 20 pass the `ws` package's
 * constructor (`import WebSocket from "ws"`), which implements the same API.
 */

/**
 * An event handler property. Declared through a method so that parameter
 * types are compared both ways: the DOM's `(ev: MessageEvent) => any` and
 * `ws`'s `(event: WebSocket.MessageEvent) => void` both fit.
 */
export type SocketHandler<E> = { bivarianceHack(event: E): void }["bivarianceHack"]

export interface WebSocketLike {
  binaryType: string
  readonly protocol: string
  readonly readyState: number
  onopen: SocketHandler<unknown> | null
  onmessage: SocketHandler<{ readonly data: unknown }> | null
  onclose: SocketHandler<{ readonly code: number; readonly reason: string }> | null
  onerror: SocketHandler<unknown> | null
  send(data: string | Uint8Array): void
  close(code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, protocols?: string | Array<string>) => WebSocketLike

/** The global `WebSocket`, when the runtime has one. */
export const globalWebSocket = (): WebSocketConstructor | undefined =>
  typeof globalThis.WebSocket === "function" ? globalThis.WebSocket : undefined

/** A message payload as the codec takes it: text, or the bytes of a binary message. */
export const payloadOf = (data: unknown): string | Uint8Array | undefined => {
  if (typeof data === "string") return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  // Node's Buffer (a `ws` socket left on its default binaryType) and any other view.
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return undefined
}

export const OPEN = 1
