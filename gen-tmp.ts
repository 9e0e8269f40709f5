import { Codec, type ClientFrame, type ServerFrame } from "@weft/protocol"
import { readFileSync, writeFileSync } from "node:fs"
const hexOf = (raw: string | Uint8Array) => {
  const b = typeof raw === "string" ? new TextEncoder().encode(raw) : raw
  const parts = Array.from(b, (x) => x.toString(16).padStart(2, "0"))
  const lines: string[] = []
  for (let i = 0; i < parts.length; i += 16) lines.push(parts.slice(i, i + 16).join(" "))
  return lines.join("\n")
}
const client: Record<string, ClientFrame> = {
  "subscribe": { type: "subscribe", id: 1, channel: "room:general" },
  "subscribe since": { type: "subscribe", id: 8, channel: "room:general", since: { epoch: "k3x9", offset: 41 } },
  "unsubscribe": { type: "unsubscribe", id: 5, channel: "room:general" },
  "publish": { type: "publish", id: 2, channel: "room:general", data: { text: "hello", n: 1 } },

  "rpc": { type: "rpc", id: 3, method: "conn.info" },
  "rpc params": { type: "rpc", id: 6, method: "chat.history", params: { channel: "room:general", limit: 20 } },
  "ping": { type: "ping", id: 7 },
  "ping noid": { type: "ping" },
  "pong": { type: "pong" },
  "pong id": { type: "pong", id: 12 },
}
const server: Record<string, ServerFrame> = {
  "welcome": { type: "welcome", protocol: "weft.v1", conn: "conn/node-a/17", user: "alice", device: "phone", node: "node-a", heartbeat: 25000, limits: { maxFrameBytes: 65536, maxSubscriptions: 100, ratePerSecond: 100 } },
  "ack": { type: "ack", id: 1 },
  "ack position": { type: "ack", id: 8, position: { epoch: "k3x9", offset: 42 } },
  "reply": { type: "reply", id: 3, result: { conn: "conn/node-a/17", user: "alice", device: "phone", node: "node-a", subscriptions: ["room:general"] } },
  "error": { type: "error", id: 5, code: 2001, name: "not_subscribed", message: "not subscribed to room:general" },
  "error noid": { type: "error", code: 1000, name: "malformed_frame", message: "not valid msgpack" },
  "message": { type: "message", channel: "room:general", data: { text: "hello", n: 1 }, from: "alice", at: 1764072000000 },
  "message binary": { type: "message", channel: "sensor:42", data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]), from: "bob", at: 1764072000123 },
  "message position": { type: "message", channel: "room:general", data: "hi", position: { epoch: "k3x9", offset: 43 }, at: 1764072000456 },
  "ping": { type: "ping" },
  "pong": { type: "pong", id: 7 },
  "goodbye": { type: "goodbye", reason: "draining", reconnect: true, after: 2000 },
  "goodbye replaced": { type: "goodbye", reason: "replaced", reconnect: false },
}
const tmpl = readFileSync("/tmp/protocol.tmpl.md", "utf8")
const used = new Set<string>()
const out = tmpl.replace(/^@@EX (client|server) (.+)@@$/gm, (_m, dir: string, name: string) => {
  used.add(`${dir} ${name}`)
  const raw = dir === "client" ? client[name] : server[name]
  if (raw === undefined) throw new Error(`no example ${dir} ${name}`)
  const json = dir === "client" ? Codec.encodeClientFrame(raw as ClientFrame, "json") : Codec.encodeServerFrame(raw as ServerFrame, "json")
  const mp = dir === "client" ? Codec.encodeClientFrame(raw as ClientFrame, "msgpack") : Codec.encodeServerFrame(raw as ServerFrame, "msgpack")
  return "```json " + dir + " " + name + "\n" + json + "\n```\n\n```msgpack-hex " + dir + " " + name + "\n" + hexOf(mp) + "\n```"
}).replace(/^@@HEX ([0-9a-f ]+)@@$/gm, (_m, h: string) => hexOf(Uint8Array.from(h.trim().split(/\s+/).map((x) => parseInt(x, 16)))))
for (const k of Object.keys(client)) if (!used.has("client " + k)) console.error("unused client", k)
for (const k of Object.keys(server)) if (!used.has("server " + k)) console.error("unused server", k)
writeFileSync("docs/protocol.md", out)
