/**
 * Contender "raw Bun": `Bun.serve` WebSockets with Bun's native topic publish.
 * No actors, no auth, no protocol beyond three JSON text frames (the same as
 * `ws.mjs`):
 *
 *   client -> server  {"op":"sub","room":"r"}            joins room r; answered {"op":"subd","room":"r"}
 *   client -> server  {"op":"pub","room":"r","data":...}  every socket in r gets {"op":"msg","room":"r","data":...}
 *   server -> client  {"op":"msg","room":"r","data":...}  encoded once per publish, sent with server.publish
 *
 * `bun bench/contenders/bun-raw.ts --port <p> [--parent <pid>]`; prints one line
 * `{"listening":<port>}` when ready. Binds 127.0.0.1 only. Exits when its parent does.
 */
import { arg, watchParent } from "./parent.mjs"

interface Data {
  readonly rooms: Set<string>
}

const server = Bun.serve<Data, never>({
  hostname: "127.0.0.1",
  port: Number(arg("port", "0")),
  fetch(request, server) {
    if (new URL(request.url).pathname === "/healthz") return new Response("ok")
    if (server.upgrade(request, { data: { rooms: new Set() } })) return undefined
    return new Response("expected a WebSocket upgrade", { status: 400 })
  },
  websocket: {
    // Bun's defaults, stated: 16 MiB frames, 120 s idle (its own pings keep idle clients alive).
    idleTimeout: 120,
    sendPings: true,
    perMessageDeflate: false,
    message(ws, raw) {
      let frame: { op?: unknown; room?: unknown; data?: unknown }
      try {
        frame = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw))
      } catch {
        return
      }
      if (typeof frame.room !== "string") return
      if (frame.op === "sub") {
        ws.subscribe(frame.room)
        ws.data.rooms.add(frame.room)
        ws.send(JSON.stringify({ op: "subd", room: frame.room }))
      } else if (frame.op === "pub") {
        server.publish(frame.room, JSON.stringify({ op: "msg", room: frame.room, data: frame.data }))
      }
    }
  }
})

console.log(JSON.stringify({ listening: server.port }))
watchParent(() => server.stop(true))
