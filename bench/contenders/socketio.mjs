/**
 * Contender "Socket.IO": Socket.IO 4 on Node with rooms, its default engine
 * (`ws`) and default parser (JSON). With `--redis <url> --prefix <key>` it uses
 * @socket.io/redis-adapter (pub/sub on ioredis) so several processes share
 * rooms: the cross-node scenario.
 *
 *   client emits "join" (room, ack)   -> socket.join(room); ack()
 *   client emits "chat" (room, data)  -> io.to(room).emit("chat", room, data)  (the packet is encoded once per broadcast)
 *
 * `node bench/contenders/socketio.mjs --port <p> [--redis <url> --prefix <key>] [--parent <pid>]`;
 * prints `{"listening":<port>}`. Plain JavaScript: Node 20 runs it as is. Binds 127.0.0.1 only.
 */
import { createServer } from "node:http"
import { Server } from "socket.io"
import { arg, watchParent } from "./parent.mjs"

const http = createServer((request, response) => {
  if (request.url === "/healthz") response.writeHead(200).end("ok")
})
// Defaults otherwise: ws engine, perMessageDeflate off, pingInterval 25 s, pingTimeout 20 s.
const io = new Server(http, { serveClient: false, cors: undefined })

const redisUrl = arg("redis", undefined)
let closeRedis = () => {}
if (redisUrl !== undefined) {
  const { Redis } = await import("ioredis")
  const { createAdapter } = await import("@socket.io/redis-adapter")
  const pub = new Redis(redisUrl, { lazyConnect: false })
  const sub = pub.duplicate()
  io.adapter(createAdapter(pub, sub, { key: arg("prefix", "socket.io") }))
  closeRedis = () => {
    pub.disconnect()
    sub.disconnect()
  }
}

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string") return
    socket.join(room)
    if (typeof ack === "function") ack(room)
  })
  socket.on("chat", (room, data) => {
    if (typeof room !== "string") return
    io.to(room).emit("chat", room, data)
  })
})

http.listen(Number(arg("port", "0")), "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: http.address().port }))
})
watchParent(() => {
  closeRedis()
  io.close()
})
