/**
 * The dashboard page: renders the frames of the node's dashboard feed
 * (`/v1/dashboard/feed`, JSON, about one a second; the shape is
 * `DashboardSnapshot.Frame` in services/node/src/web), reconnecting with
 * backoff when the feed drops. Plain DOM; times in the browser's local time.
 */
import type { Frame, NodeRow } from "../src/web/DashboardSnapshot.ts"

const element = (id: string): HTMLElement => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`missing #${id}`)
  return found
}

const ui = {
  mode: element("mode"),
  status: element("feed-status"),
  updated: element("updated"),
  nodes: element("nodes"),
  actors: element("actors"),
  rooms: element("rooms"),
  totalNodes: element("total-nodes"),
  totalConnections: element("total-connections"),
  totalIn: element("total-in"),
  totalOut: element("total-out"),
  totalP99: element("total-p99"),
  totalRestarts: element("total-restarts"),
  totalRooms: element("total-rooms")
}

const dev = document.body.dataset["dev"] === "true"
ui.mode.textContent = dev ? "dev mode: open to anyone" : "--dashboard: open to anyone who reaches this port"
ui.mode.classList.toggle("warn", true)

const cell = (text: string, className?: string): HTMLTableCellElement => {
  const td = document.createElement("td")
  td.textContent = text
  if (className !== undefined) td.className = className
  return td
}

const row = (...cells: ReadonlyArray<HTMLTableCellElement>): HTMLTableRowElement => {
  const tr = document.createElement("tr")
  tr.append(...cells)
  return tr
}

const number = (value: number): string => value.toLocaleString()
/** Rates and latencies: "–" when there is none yet (a node reports every 2 s; a rate needs two reports). */
const rate = (value: number | null): string => (value === null ? "–" : value < 10 ? value.toFixed(1) : number(Math.round(value)))
const ms = (value: number | null): string => (value === null ? "–" : `${value < 10 ? value.toFixed(2) : number(Math.round(value))} ms`)
const count = (value: number | null): string => (value === null ? "–" : number(value))
const ago = (at: number, now: number): string => `${Math.max(0, Math.round((now - at) / 1000))} s ago`

const nodeRow = (node: NodeRow, now: number): HTMLTableRowElement => {
  const tr = row(
    cell(node.node),
    cell(node.roles.join(", ")),
    cell(node.ready ? "ready" : "not ready", node.ready ? "ok" : "bad"),
    cell(number(node.connections), "num"),
    cell(rate(node.messagesInPerSecond), "num"),
    cell(rate(node.messagesOutPerSecond), "num"),
    cell(ms(node.fanoutP99Ms), "num"),
    cell(count(node.restarts), "num"),
    cell(node.actors.map((actor) => `${actor.kind} ${actor.alive} / ${actor.mailboxDepth}`).join(", ") || "–"),
    cell(ago(node.reportedAt, now))
  )
  tr.dataset["node"] = node.node
  return tr
}

const render = (frame: Frame): void => {
  const now = Date.now()
  const { totals } = frame
  ui.totalNodes.textContent = `${totals.ready} / ${totals.nodes}`
  ui.totalConnections.textContent = number(totals.connections)
  ui.totalIn.textContent = rate(totals.messagesInPerSecond)
  ui.totalOut.textContent = rate(totals.messagesOutPerSecond)
  ui.totalP99.textContent = ms(totals.fanoutP99Ms)
  ui.totalRestarts.textContent = count(totals.restarts)
  ui.totalRooms.textContent = number(frame.rooms.active)
  ui.nodes.replaceChildren(...frame.nodes.map((node) => nodeRow(node, now)))
  ui.actors.replaceChildren(
    ...totals.actors.map((actor) => row(cell(actor.kind), cell(number(actor.alive), "num"), cell(number(actor.mailboxDepth), "num")))
  )
  ui.rooms.replaceChildren(
    ...(frame.rooms.top.length === 0
      ? [row(cell("no active rooms", "note"))]
      : frame.rooms.top.map((room) => {
        const tr = row(cell(room.room), cell(number(room.members), "num"), cell(number(room.users), "num"), cell(room.node))
        tr.dataset["room"] = room.room
        return tr
      }))
  )
  const at = new Date(frame.at)
  ui.updated.textContent = `updated ${at.toLocaleTimeString()} by ${frame.servedBy}`
  ui.updated.title = at.toLocaleString()
}

let retryMs = 500

const connect = (): void => {
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/v1/dashboard/feed`
  const socket = new WebSocket(url)
  ui.status.textContent = "connecting"
  socket.addEventListener("open", () => {
    retryMs = 500
    ui.status.textContent = "live"
    ui.status.dataset["state"] = "connected"
  })
  socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string") return
    try {
      const frame = JSON.parse(event.data) as Frame
      if (frame.type === "snapshot") render(frame)
    } catch (error) {
      console.warn("dashboard: unreadable frame", error)
    }
  })
  socket.addEventListener("close", () => {
    ui.status.textContent = `reconnecting in ${Math.round(retryMs / 1000)} s`
    ui.status.dataset["state"] = "reconnecting"
    setTimeout(connect, retryMs)
    retryMs = Math.min(10_000, retryMs * 2)
  })
}

connect()
