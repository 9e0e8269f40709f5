/**
 * The demo page: sign in as any name (dev mode) or with a JWT, join rooms,
 * chat (send, edit your own, reply, pin), see who is here and who is typing,
 * and send and read notifications. Plain DOM on the client SDK
 * (`packages/client`): `subscribe` for the room, presence and user channels,
 * `rpc` for the room and notification methods. Bundled by the node with
 * `Bun.build` (services/node/src/web/Pages.ts).
 *
 * Times come from the server in UTC ms (`at`) and are shown in the browser's
 * own time zone.
 */
import {
  type ChannelMessage,
  createClient,
  isWeftError,
  type Position,
  type Subscription,
  ticketFromJwt,
  type WeftClient
} from "../../../packages/client/src/index.ts"

// ---------------------------------------------------------------------------
// Page elements
// ---------------------------------------------------------------------------

const element = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`missing #${id}`)
  return found as T
}

const ui = {
  mode: element("mode"),
  status: element("status"),
  whoami: element("whoami"),
  signin: element("signin"),
  signinNote: element("signin-note"),
  signinForm: element<HTMLFormElement>("signin-form"),
  name: element<HTMLInputElement>("name"),
  jwtForm: element<HTMLFormElement>("jwt-form"),
  jwt: element<HTMLInputElement>("jwt"),
  signinError: element("signin-error"),
  app: element("app"),
  joinForm: element<HTMLFormElement>("join-form"),
  roomName: element<HTMLInputElement>("room-name"),
  roomList: element("room-list"),
  presence: element("presence"),
  presenceCount: element("presence-count"),
  pins: element("pins"),
  roomTitle: element("room-title"),
  messages: element("messages"),
  typing: element("typing"),
  replyBar: element("reply-bar"),
  replyPreview: element("reply-preview"),
  replyCancel: element<HTMLButtonElement>("reply-cancel"),
  sendForm: element<HTMLFormElement>("send-form"),
  messageInput: element<HTMLInputElement>("message-input"),
  sendButton: element<HTMLButtonElement>("send-button"),
  chatError: element("chat-error"),
  unread: element("unread"),
  readAll: element<HTMLButtonElement>("read-all"),
  notifications: element("notifications"),
  notifyNote: element("notify-note"),
  notifyForm: element<HTMLFormElement>("notify-form"),
  notifyUser: element<HTMLInputElement>("notify-user"),
  notifyType: element<HTMLInputElement>("notify-type"),
  notifyText: element<HTMLInputElement>("notify-text"),
  notifyResult: element("notify-result")
}

/** Makes an element with text (never HTML: names and messages are other people's input). */
const make = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { readonly className?: string; readonly text?: string; readonly title?: string } = {},
  ...children: ReadonlyArray<Node | string>
): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag)
  if (props.className !== undefined) node.className = props.className
  if (props.text !== undefined) node.textContent = props.text
  if (props.title !== undefined) node.title = props.title
  node.append(...children)
  return node
}

const button = (text: string, action: string, onClick: () => void): HTMLButtonElement => {
  const node = make("button", { text })
  node.type = "button"
  node.dataset["action"] = action
  node.addEventListener("click", onClick)
  return node
}

/** `at` (UTC ms) in the browser's local time: the time of day, and the full date on hover. */
const localTime = (at: number): HTMLTimeElement => {
  const date = new Date(at)
  const node = make("time", {
    text: date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    title: date.toLocaleString()
  })
  node.dateTime = date.toISOString()
  return node
}

const describe = (error: unknown): string =>
  isWeftError(error) ? `${error.name}: ${error.message}` : error instanceof Error ? error.message : String(error)

/** A message body as text: `{ text }` from this page, anything else as JSON. */
const textOf = (body: unknown): string =>
  typeof body === "object" && body !== null && "text" in body && typeof body.text === "string" ? body.text : JSON.stringify(body)

const validName = (name: string): boolean => /^[A-Za-z0-9._-]{1,64}$/.test(name)

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

interface Message {
  readonly id: string
  readonly offset: number
  readonly from: string
  readonly at: number
  body: unknown
  /** Offset of the latest edit applied (edits can arrive out of order: live first, then history). */
  editOffset: number
  editedAt: number | undefined
  readonly replyTo: string | undefined
  deleted: boolean
}

interface Room {
  readonly name: string
  readonly messages: Map<string, Message>
  /** user → devices */
  readonly presence: Map<string, number>
  readonly pins: Map<string, { readonly by: string; readonly at: number }>
  /** user → until (ms) */
  readonly typing: Map<string, number>
  /** Room notifications from services (`notify.toRoom`), shown between the messages. */
  readonly notices: Array<{ readonly at: number; readonly from: string; readonly text: string }>
  subscriptions: ReadonlyArray<Subscription>
}

interface Notification {
  readonly id: string
  readonly type: string
  readonly data: unknown
  readonly sender: string
  readonly at: number
  read: boolean
}

const dev = document.body.dataset["dev"] === "true"
const device = sessionStorage.getItem("weft-demo-device") ?? `web-${Math.random().toString(36).slice(2, 6)}`
sessionStorage.setItem("weft-demo-device", device)
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone

let client: WeftClient | undefined
let me = ""
const rooms = new Map<string, Room>()
let current: Room | undefined
let replyTo: string | undefined
let editing: string | undefined
const notifications = new Map<string, Notification>()
let unread = 0
let lastTypingSent = 0

/** Messages kept per room. */
const keepMessages = 200

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

const renderRooms = (): void => {
  ui.roomList.replaceChildren(
    ...Array.from(rooms.values(), (room) => {
      const item = make("li", { className: room === current ? "selected" : "" })
      item.dataset["room"] = room.name
      const open = make("a", { text: `#${room.name}` })
      open.href = "#"
      open.addEventListener("click", (event) => {
        event.preventDefault()
        select(room)
      })
      item.append(open, " ", button("leave", "leave", () => void leave(room)))
      return item
    })
  )
}

const renderPresence = (): void => {
  const room = current
  const users = room === undefined ? [] : Array.from(room.presence).sort(([a], [b]) => a.localeCompare(b))
  ui.presenceCount.textContent = room === undefined ? "" : String(users.length)
  ui.presence.replaceChildren(
    ...users.map(([user, devices]) => {
      const item = make("li", { text: user === me ? `${user} (you)` : user })
      item.dataset["user"] = user
      if (devices > 1) item.append(make("span", { className: "note", text: ` ${devices} devices` }))
      return item
    })
  )
}

const renderPins = (): void => {
  const room = current
  const pins = room === undefined ? [] : Array.from(room.pins).sort(([, a], [, b]) => a.at - b.at)
  ui.pins.replaceChildren(
    ...pins.map(([id, pin]) => {
      const message = room?.messages.get(id)
      const item = make("li", { text: message === undefined ? id : `${message.from}: ${textOf(message.body)}` })
      item.dataset["id"] = id
      item.append(make("span", { className: "note", text: ` pinned by ${pin.by}` }))
      return item
    })
  )
}

const renderTyping = (): void => {
  const room = current
  const now = Date.now()
  const typing = room === undefined ? [] : Array.from(room.typing).filter(([, until]) => until > now).map(([user]) => user)
  ui.typing.textContent = typing.length === 0 ? "" : `${typing.join(", ")} ${typing.length === 1 ? "is" : "are"} typing…`
}

const messageItem = (room: Room, message: Message): HTMLLIElement => {
  const item = make("li", { className: `message${message.from === me ? " mine" : ""}${message.deleted ? " deleted" : ""}` })
  item.dataset["id"] = message.id
  item.dataset["from"] = message.from
  const meta = make("div", { className: "meta" }, make("span", { className: "from", text: message.from }), " ", localTime(message.at))
  if (message.editedAt !== undefined) meta.append(" ", make("span", { className: "edited", text: "(edited)", title: new Date(message.editedAt).toLocaleString() }))
  if (room.pins.has(message.id)) meta.append(" ", make("span", { className: "pinned", text: "pinned" }))
  item.append(meta)
  if (message.replyTo !== undefined) {
    const quoted = room.messages.get(message.replyTo)
    item.append(make("blockquote", { className: "quote", text: quoted === undefined ? "↪ an earlier message" : `↪ ${quoted.from}: ${textOf(quoted.body)}` }))
  }
  if (message.deleted) {
    item.append(make("div", { className: "text note", text: "deleted" }))
    return item
  }
  if (editing === message.id) {
    const input = make("input", { className: "edit-input" })
    input.value = textOf(message.body)
    const form = make("form", { className: "inline" }, input, make("button", { text: "Save" }))
    form.addEventListener("submit", (event) => {
      event.preventDefault()
      void edit(room, message, input.value)
    })
    form.append(button("Cancel", "cancel-edit", () => {
      editing = undefined
      renderMessages()
    }))
    item.append(form)
    queueMicrotask(() => input.focus())
    return item
  }
  item.append(make("div", { className: "text", text: textOf(message.body) }))
  const actions = make("div", { className: "actions" })
  actions.append(button("Reply", "reply", () => startReply(message)))
  if (message.from === me) {
    actions.append(button("Edit", "edit", () => {
      editing = message.id
      renderMessages()
    }))
  }
  actions.append(
    room.pins.has(message.id)
      ? button("Unpin", "unpin", () => void call("room.unpin", { room: room.name, id: message.id }))
      : button("Pin", "pin", () => void call("room.pin", { room: room.name, id: message.id }))
  )
  item.append(actions)
  return item
}

const renderMessages = (): void => {
  const room = current
  if (room === undefined) {
    ui.messages.replaceChildren()
    return
  }
  const stick = ui.messages.scrollTop + ui.messages.clientHeight >= ui.messages.scrollHeight - 20
  const messages = Array.from(room.messages.values()).sort((a, b) => a.offset - b.offset)
  // Stored messages keep the room's order; service notices (not stored) slot in by time.
  const notices = [...room.notices]
  const items: Array<HTMLLIElement> = []
  const notice = (entry: Room["notices"][number]) =>
    make("li", { className: "notice" }, make("span", { text: `${entry.from}: ${entry.text} ` }), localTime(entry.at))
  for (const message of messages) {
    while (notices.length > 0 && notices[0]!.at < message.at) items.push(notice(notices.shift()!))
    items.push(messageItem(room, message))
  }
  items.push(...notices.map(notice))
  ui.messages.replaceChildren(...items)
  if (stick) ui.messages.scrollTop = ui.messages.scrollHeight
}

const renderNotifications = (): void => {
  ui.unread.textContent = String(unread)
  ui.unread.classList.toggle("hot", unread > 0)
  const list = Array.from(notifications.values()).sort((a, b) => b.at - a.at)
  ui.notifications.replaceChildren(
    ...list.map((notification) => {
      const item = make("li", { className: `notification${notification.read ? "" : " unread"}` })
      item.dataset["id"] = notification.id
      item.append(
        make("b", { text: notification.type }),
        " ",
        make("span", { className: "text", text: textOf(notification.data) }),
        " ",
        make("span", { className: "note", text: `from ${notification.sender} ` }),
        localTime(notification.at)
      )
      if (!notification.read) item.append(" ", button("Mark read", "read", () => void markRead([notification.id])))
      return item
    })
  )
}

const renderAll = (): void => {
  renderRooms()
  renderPresence()
  renderPins()
  renderMessages()
  renderTyping()
  ui.roomTitle.textContent = current === undefined ? "Join a room" : `#${current.name}`
  ui.messageInput.disabled = current === undefined
  ui.sendButton.disabled = current === undefined
}

setInterval(renderTyping, 1000)

// ---------------------------------------------------------------------------
// Rooms
// ---------------------------------------------------------------------------

const call = async (method: string, params: unknown): Promise<unknown> => {
  if (client === undefined) throw new Error("not connected")
  try {
    const result = await client.rpc(method, params)
    ui.chatError.textContent = ""
    return result
  } catch (error) {
    ui.chatError.textContent = `${method}: ${describe(error)}`
    throw error
  }
}

interface RoomEventData {
  readonly kind?: unknown
  readonly id?: unknown
  readonly body?: unknown
  readonly by?: unknown
  readonly replyTo?: unknown
  readonly type?: unknown
  readonly data?: unknown
}

/** Applies one room event (live, or from history: the same shapes); repeats are ignored. */
const apply = (room: Room, data: RoomEventData, from: string, at: number, position: Position | undefined): void => {
  const id = typeof data.id === "string" ? data.id : undefined
  switch (data.kind) {
    case "message": {
      if (id === undefined || position === undefined || room.messages.has(id)) return
      room.messages.set(id, {
        id,
        offset: position.offset,
        from,
        at,
        body: data.body,
        editOffset: 0,
        editedAt: undefined,
        replyTo: typeof data.replyTo === "string" ? data.replyTo : undefined,
        deleted: false
      })
      room.typing.delete(from)
      // Bounded: the oldest go first.
      if (room.messages.size > keepMessages) {
        const oldest = Array.from(room.messages.values()).sort((a, b) => a.offset - b.offset).slice(0, room.messages.size - keepMessages)
        for (const message of oldest) room.messages.delete(message.id)
      }
      return
    }
    case "edit": {
      const message = id === undefined ? undefined : room.messages.get(id)
      if (message === undefined || position === undefined || position.offset <= message.editOffset) return
      message.body = data.body
      message.editOffset = position.offset
      message.editedAt = at
      return
    }
    case "delete": {
      const message = id === undefined ? undefined : room.messages.get(id)
      if (message !== undefined) message.deleted = true
      if (id !== undefined) room.pins.delete(id)
      return
    }
    case "pin":
      if (id !== undefined) room.pins.set(id, { by: typeof data.by === "string" ? data.by : from, at })
      return
    case "unpin":
      if (id !== undefined) room.pins.delete(id)
      return
    case "typing":
      if (from !== me) room.typing.set(from, Date.now() + 4000)
      return
    case "notification":
      room.notices.push({ at, from, text: `${String(data.type)} ${JSON.stringify(data.data)}` })
      if (room.notices.length > 20) room.notices.shift()
      return
  }
}

const onRoomMessage = (room: Room) => (message: ChannelMessage): void => {
  if (typeof message.data !== "object" || message.data === null) return
  apply(room, message.data as RoomEventData, message.from ?? "", message.at, message.position)
  if (room === current) {
    renderMessages()
    renderPins()
    renderTyping()
  }
}

const onPresence = (room: Room) => (message: ChannelMessage): void => {
  const data = message.data as { readonly kind?: unknown; readonly user?: unknown; readonly devices?: unknown } | null
  if (data === null || typeof data !== "object" || typeof data.user !== "string") return
  if (data.kind === "join") room.presence.set(data.user, typeof data.devices === "number" ? data.devices : 1)
  else if (data.kind === "leave") room.presence.delete(data.user)
  if (room === current) renderPresence()
}

interface HistoryPage {
  readonly messages: ReadonlyArray<{ readonly data: unknown; readonly from?: string; readonly at: number; readonly position?: Position }>
}

/** The room's latest stored events, its presence and its pins, after the subscriptions are live (the rest arrives live). */
const load = async (room: Room): Promise<void> => {
  const [history, presence, pins] = await Promise.all([
    call("room.history", { room: room.name, limit: 100 }) as Promise<HistoryPage>,
    call("room.presence", { room: room.name }) as Promise<ReadonlyArray<{ readonly user: string; readonly devices: number }>>,
    call("room.pins", { room: room.name }) as Promise<ReadonlyArray<{ readonly id: string; readonly by: string; readonly at: number }>>
  ])
  for (const frame of history.messages) {
    const data = frame.data as RoomEventData
    // Pins come from room.pins, the current list; replaying old pin events could undo a newer live one.
    if (data.kind === "pin" || data.kind === "unpin") continue
    apply(room, data, frame.from ?? "", frame.at, frame.position)
  }
  for (const entry of presence) room.presence.set(entry.user, entry.devices)
  for (const pin of pins) if (!room.pins.has(pin.id)) room.pins.set(pin.id, { by: pin.by, at: pin.at })
}

const select = (room: Room): void => {
  current = room
  replyTo = undefined
  editing = undefined
  ui.replyBar.hidden = true
  renderAll()
}

const join = async (name: string): Promise<void> => {
  if (client === undefined) return
  if (!validName(name)) {
    ui.chatError.textContent = "a room name is 1-64 letters, digits, '.', '_' or '-'"
    return
  }
  const existing = rooms.get(name)
  if (existing !== undefined) return select(existing)
  const room: Room = {
    name,
    messages: new Map(),
    presence: new Map(),
    pins: new Map(),
    typing: new Map(),
    notices: [],
    subscriptions: []
  }
  rooms.set(name, room)
  const messages = client.subscribe(`room:${name}`, onRoomMessage(room))
  const presence = client.subscribe(`presence:room:${name}`, onPresence(room))
  room.subscriptions = [messages, presence]
  select(room)
  try {
    await Promise.all([messages.ready, presence.ready])
    await load(room)
  } catch (error) {
    ui.chatError.textContent = `could not join #${name}: ${describe(error)}`
  }
  if (room === current) renderAll()
}

const leave = async (room: Room): Promise<void> => {
  rooms.delete(room.name)
  if (current === room) current = rooms.values().next().value
  renderAll()
  await Promise.all(room.subscriptions.map((subscription) => subscription.unsubscribe().catch(() => undefined)))
}

const startReply = (message: Message): void => {
  replyTo = message.id
  ui.replyPreview.textContent = `${message.from}: ${textOf(message.body)}`
  ui.replyBar.hidden = false
  ui.messageInput.focus()
}

const edit = async (room: Room, message: Message, text: string): Promise<void> => {
  editing = undefined
  renderMessages()
  if (text.trim() === "" || text === textOf(message.body)) return
  await call("room.edit", { room: room.name, id: message.id, body: { text } }).catch(() => undefined)
}

const send = async (): Promise<void> => {
  const room = current
  const text = ui.messageInput.value
  if (room === undefined || text.trim() === "") return
  ui.messageInput.value = ""
  const params = { room: room.name, body: { text }, ...(replyTo === undefined ? {} : { replyTo }) }
  replyTo = undefined
  ui.replyBar.hidden = true
  await call("room.send", params).catch(() => {
    ui.messageInput.value = text
  })
}

// ---------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------

interface NotificationData {
  readonly kind?: unknown
  readonly id?: unknown
  readonly type?: unknown
  readonly data?: unknown
  readonly sender?: unknown
  readonly ids?: unknown
  readonly unread?: unknown
}

const addNotification = (data: NotificationData, at: number, read: boolean): boolean => {
  if (typeof data.id !== "string" || notifications.has(data.id)) return false
  notifications.set(data.id, {
    id: data.id,
    type: String(data.type),
    data: data.data,
    sender: typeof data.sender === "string" ? data.sender : "",
    at,
    read
  })
  return true
}

const onUserMessage = (message: ChannelMessage): void => {
  const data = message.data as NotificationData | null
  if (data === null || typeof data !== "object") return
  if (data.kind === "notification") {
    if (addNotification(data, message.at, false)) unread++
  } else if (data.kind === "read") {
    const ids = Array.isArray(data.ids) ? data.ids : []
    for (const id of ids) {
      const known = typeof id === "string" ? notifications.get(id) : undefined
      if (known !== undefined) known.read = true
    }
    if (typeof data.unread === "number") unread = data.unread
  }
  renderNotifications()
}

interface InboxPage {
  readonly entries: ReadonlyArray<{ readonly at: number; readonly read: boolean; readonly notification: NotificationData }>
  readonly unread: number
}

const loadNotifications = async (): Promise<void> => {
  const page = (await call("notifications.list", { limit: 50 })) as InboxPage
  for (const entry of page.entries) addNotification(entry.notification, entry.at, entry.read)
  unread = page.unread
  renderNotifications()
}

const markRead = async (ids: ReadonlyArray<string> | "all"): Promise<void> => {
  const result = (await call("notifications.read", ids === "all" ? { all: true } : { ids }).catch(() => undefined)) as
    | { readonly unread: number }
    | undefined
  if (result === undefined) return
  // The `read` message on the user channel says the same to every device; this one need not wait for it.
  for (const notification of notifications.values()) if (ids === "all" || ids.includes(notification.id)) notification.read = true
  unread = result.unread
  renderNotifications()
}

const sendNotification = async (): Promise<void> => {
  const user = ui.notifyUser.value.trim()
  if (!validName(user)) {
    ui.notifyResult.textContent = "a user name is 1-64 letters, digits, '.', '_' or '-'"
    return
  }
  const response = await fetch("/v1/dev/notify", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user, type: ui.notifyType.value.trim() || "demo.hello", data: { text: ui.notifyText.value } })
  }).catch((error: unknown) => error)
  if (!(response instanceof Response)) {
    ui.notifyResult.textContent = `not sent: ${describe(response)}`
    return
  }
  const body = (await response.json().catch(() => ({}))) as { readonly status?: string; readonly devices?: number; readonly message?: string }
  ui.notifyResult.textContent = !response.ok
    ? `not sent: ${body.message ?? response.status}`
    : body.status === "delivered"
    ? `delivered to ${body.devices} device${body.devices === 1 ? "" : "s"} of ${user}`
    : `stored in ${user}'s inbox (${body.status})`
  if (response.ok) ui.notifyText.value = ""
}

// ---------------------------------------------------------------------------
// Signing in
// ---------------------------------------------------------------------------

const devToken = async (user: string): Promise<string> => {
  const response = await fetch("/v1/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user, device, tz: timeZone })
  })
  const body = (await response.json().catch(() => ({}))) as { readonly token?: string; readonly message?: string }
  if (!response.ok || body.token === undefined) throw new Error(`no dev token: ${body.message ?? `HTTP ${response.status}`}`)
  return body.token
}

const start = async (jwt: () => Promise<string>): Promise<void> => {
  ui.signinError.textContent = ""
  // `getToken`: the connection is refreshed before its (15-minute) JWT expires, without reconnecting.
  const next = createClient({ url: location.origin, getTicket: ticketFromJwt({ jwt }), getToken: jwt })
  next.on("state", (event) => {
    ui.status.textContent = event.state
    ui.status.dataset["state"] = event.state
  })
  next.on("error", (error) => console.warn("weft:", error))
  // A room whose missed messages could not be replayed after a reconnect: reload it.
  next.on("subscribed", (event) => {
    if (event.recovery !== "failed" || !event.channel.startsWith("room:")) return
    const room = rooms.get(event.channel.slice("room:".length))
    if (room !== undefined) {
      room.messages.clear()
      void load(room).then(() => room === current && renderAll(), () => undefined)
    }
  })
  try {
    const info = await next.connect()
    client = next
    me = info.user
  } catch (error) {
    await next.close()
    ui.signinError.textContent = `could not connect: ${describe(error)}`
    return
  }
  ui.whoami.textContent = `signed in as ${me}`
  ui.signin.hidden = true
  ui.app.hidden = false
  client.subscribe(`user:${me}`, onUserMessage)
  renderAll()
  await loadNotifications().catch(() => undefined)
  await join(ui.roomName.value.trim() || "general")
}

// ---------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------

ui.mode.textContent = dev ? "dev mode" : "production mode"
ui.mode.classList.toggle("warn", dev)
ui.signinNote.textContent = dev
  ? "Dev mode: pick any name. This node issues a short-lived dev JWT for it; anyone who can reach it can be anyone."
  : "Sign-in is unavailable: this node is not in dev mode, so it issues no tokens. Start it with `npm start` (dev mode), or connect with a JWT your identity provider issued."
ui.signinForm.hidden = !dev
ui.notifyNote.textContent = dev ? "" : "Sending needs dev mode; services notify users through the service API."
ui.notifyForm.hidden = !dev

ui.signinForm.addEventListener("submit", (event) => {
  event.preventDefault()
  const name = ui.name.value.trim()
  if (!validName(name)) {
    ui.signinError.textContent = "a name is 1-64 letters, digits, '.', '_' or '-'"
    return
  }
  // A fresh token for every ticket (first connection and each reconnect): a dev token is short-lived.
  void start(() => devToken(name))
})
ui.jwtForm.addEventListener("submit", (event) => {
  event.preventDefault()
  const jwt = ui.jwt.value.trim()
  void start(() => Promise.resolve(jwt))
})
ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault()
  void join(ui.roomName.value.trim())
})
ui.sendForm.addEventListener("submit", (event) => {
  event.preventDefault()
  void send()
})
ui.messageInput.addEventListener("input", () => {
  const room = current
  if (room === undefined || client === undefined || Date.now() - lastTypingSent < 3000) return
  lastTypingSent = Date.now()
  void client.rpc("room.typing", { room: room.name }).catch(() => undefined)
})
ui.replyCancel.addEventListener("click", () => {
  replyTo = undefined
  ui.replyBar.hidden = true
})
ui.readAll.addEventListener("click", () => void markRead("all"))
ui.notifyForm.addEventListener("submit", (event) => {
  event.preventDefault()
  void sendNotification()
})
