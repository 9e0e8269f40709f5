/**
 * Contender "ws": a plain `ws` server on Node with a hand-rolled room map
 * (room -> Set of sockets). The same three JSON frames as bun-raw.ts:
 *
 *   {"op":"sub","room":"r"}            -> {"op":"subd","room":"r"}
 *   {"op":"pub","room":"r","data":...} -> every socket in r gets {"op":"msg","room":"r","data":...}
 *
 * A publish is encoded once and the same string is sent to each member.
 * `node bench/contenders/ws.mjs --port <p> [--parent <pid>]`; prints `{"listening":<port>}`.
 * Plain JavaScript: Node 20 runs it as is. Binds 127.0.0.1 only.
 */
import { createServer } from "node:http"
import { WebSocketServer } from "ws"
import { arg, watchParent } from "./parent.mjs"

const rooms = new Map()
const http = createServer((request, response) => {
  response.writeHead(request.url === "/healthz" ? 200 : 400).end(request.url === "/healthz" ? "ok" : "expected a WebSocket upgrade")
})
// perMessageDeflate is off by default in ws 8; maxPayload stays at its default (100 MiB).
const wss = new WebSocketServer({ server: http, clientTracking: false })

wss.on("connection", (socket) => {
  const joined = new Set()
  socket.on("message", (raw, isBinary) => {
    let frame
    try {
      frame = JSON.parse(isBinary ? Buffer.from(raw).toString("utf8") : raw.toString())
    } catch {
      return
    }
    if (typeof frame?.room !== "string") return
    if (frame.op === "sub") {
      let members = rooms.get(frame.room)
      if (members === undefined) rooms.set(frame.room, (members = new Set()))
      members.add(socket)
      joined.add(frame.room)
      socket.send(JSON.stringify({ op: "subd", room: frame.room }))
    } else if (frame.op === "pub") {
      const members = rooms.get(frame.room)
      if (members === undefined) return
      const text = JSON.stringify({ op: "msg", room: frame.room, data: frame.data })
      for (const member of members) if (member.readyState === 1) member.send(text)
    }
  })
  socket.on("close", () => {
    for (const room of joined) {
      const members = rooms.get(room)
      members?.delete(socket)
      if (members?.size === 0) rooms.delete(room)
    }
  })
  socket.on("error", () => {})
})

http.listen(Number(arg("port", "0")), "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: http.address().port }))
})
watchParent(() => http.close())
