/**
 * Steady chat load with real SDK clients (Node, over `ws`): `connections` users, one
 * connection each, spread over `rooms` rooms; every member subscribes to its room and records
 * what it receives, and the first `publishersPerRoom` members of each room publish numbered
 * messages one after the other (the next once the previous is answered). A publish the server
 * acknowledged is recorded with its position; a failed one with its error. Nothing is retried by
 * the load: what is acknowledged was accepted exactly once.
 */
import type { ConnectedEvent, MessageHandler, Position } from "../../../packages/client/src/index.ts"
import { type Received, type Recorded, roomMessages, sdkClient } from "../../../packages/client/test/support/nodes.ts"

export interface LoadOptions {
  /** Names users and rooms, so that two loads never share them. */
  readonly label: string
  readonly connections: number
  readonly rooms: number
  readonly publishersPerRoom: number
  /** Pause between one publisher's publishes (after the previous answer). */
  readonly publishIntervalMs: number
  /** The URLs client `i` tries, in turn (it starts on the first). */
  readonly urlsFor: (i: number) => ReadonlyArray<string>
  /** Clients connected at once while the load starts. */
  readonly connectBatch?: number
  /**
   * Client `i`'s pings. Default: every 5 s (a killed node's sockets close at once; pings only
   * matter for a frozen node, and a thousand clients pinging every second load the machine).
   */
  readonly heartbeat?: (i: number) => { readonly intervalMs: number; readonly timeoutMs: number }
}

export interface Connection {
  readonly at: number
  readonly node: string
  readonly reconnected: boolean
}

export interface Member {
  readonly index: number
  readonly user: string
  readonly room: string
  readonly channel: string
  readonly recorded: Recorded
  readonly received: Array<Received>
  /** Every connection the client made, in order (from the `connected` event). */
  readonly connections: Array<Connection>
  /** The last state changes, errors and closes with their times (ms since 1970), for failure reports. */
  readonly timeline: Array<string>
  /** The close codes of established connections that ended (a failed attempt is not counted). */
  readonly ended: Array<number>
}

export interface Acked {
  readonly key: string
  readonly position: Position | undefined
}

export interface Publisher {
  readonly member: Member
  readonly acked: Array<Acked>
  readonly failed: Array<string>
}

export interface ChatLoad {
  readonly members: ReadonlyArray<Member>
  readonly publishers: ReadonlyArray<Publisher>
  readonly rooms: ReadonlyArray<string>
  /** Starts the publishers (once). */
  readonly startPublishing: () => void
  /** Stops the publishers and waits for their last answers. */
  readonly stopPublishing: () => Promise<void>
  readonly ackedCount: () => number
  /** Acknowledged publishes by room id. */
  readonly ackedByRoom: () => Map<string, Array<Acked>>
  readonly close: () => Promise<void>
}

/** The body a publisher sends: who and which. */
export interface Body {
  readonly p: string
  readonly n: number
}

export const isBody = (value: unknown): value is Body =>
  typeof value === "object" && value !== null && "p" in value && typeof value.p === "string" && "n" in value && typeof value.n === "number"

/** A body's identity: `<publisher>#<n>`. */
export const keyOf = (value: unknown): string | undefined => (isBody(value) ? `${value.p}#${value.n}` : undefined)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A new member (not connected yet) and the subscription handler that records its room's messages. */
const member = (options: LoadOptions, index: number, rooms: ReadonlyArray<string>): { readonly member: Member; readonly handler: MessageHandler } => {
  const room = rooms[index % rooms.length]!
  const user = `${options.label}-u${index}`
  const recorded = sdkClient(options.urlsFor(index), {
    sub: user,
    weft: { subscribe: ["room:*", "presence:room:*"], publish: ["room:*"] }
  }, {
    // Short waits: after a node dies its clients should be back within seconds.
    reconnect: { baseMs: 200, capMs: 1000 },
    heartbeat: options.heartbeat?.(index) ?? { intervalMs: 5000, timeoutMs: 2000 },
    requestTimeoutMs: 20_000,
  })
  const { received, handler } = roomMessages()
  const connections: Array<Connection> = []
  const timeline: Array<string> = []
  const note = (what: string) => {
    timeline.push(`${Date.now()} ${what}`)
    if (timeline.length > 20) timeline.shift()
  }
  const ended: Array<number> = []
  let established = false
  recorded.client.on("connected", (event: ConnectedEvent) => {
    established = true
    connections.push({ at: Date.now(), node: event.info.node, reconnected: event.reconnected })
    note(`connected to ${event.info.node}`)
  })
  recorded.client.on("state", (event) => note(`${event.state}${event.delayMs === undefined ? "" : ` in ${Math.round(event.delayMs)} ms`}`))
  recorded.client.on("error", (error) => note(`error ${error.name}: ${error.message}`))
  recorded.client.on("disconnected", (event) => {
    if (established) ended.push(event.code)
    established = false
    note(`closed ${event.code} ${event.reason}`)
  })
  return { member: { index, user, room, channel: `room:${room}`, recorded, received, connections, timeline, ended }, handler }
}

/** Connects every client and subscribes it to its room, `connectBatch` at a time. */
export const startChatLoad = async (options: LoadOptions): Promise<ChatLoad> => {
  const rooms = Array.from({ length: options.rooms }, (_, i) => `${options.label}-r${i}`)
  const members: Array<Member> = []
  const batch = options.connectBatch ?? 50
  for (let start = 0; start < options.connections; start += batch) {
    const created = Array.from({ length: Math.min(batch, options.connections - start) }, (_, k) => member(options, start + k, rooms))
    await Promise.all(created.map(async ({ member, handler }) => {
      const { client } = member.recorded
      await client.connect()
      await client.subscribe(member.channel, handler).ready
    }))
    members.push(...created.map((entry) => entry.member))
  }
  const publishers: Array<Publisher> = members
    .filter((m) => Math.floor(m.index / rooms.length) < options.publishersPerRoom)
    .map((m) => ({ member: m, acked: [], failed: [] }))
  let running = false
  let loops: Array<Promise<void>> = []
  const publishLoop = async (publisher: Publisher) => {
    const { client } = publisher.member.recorded
    // Bounded: a scenario stops it long before.
    for (let n = 1; running && n <= 1_000_000; n++) {
      const body: Body = { p: publisher.member.user, n }
      const sentAt = Date.now()
      await client.publish(publisher.member.channel, body, { timeoutMs: 20_000 }).then(
        (ack) => {
          publisher.acked.push({ key: `${body.p}#${n}`, position: ack.position })
        },
        (error: unknown) => {
          publisher.failed.push(`${body.p}#${n}: ${error instanceof Error ? error.message : String(error)} (after ${Date.now() - sentAt} ms)`)
        }
      )
      await sleep(options.publishIntervalMs)
    }
  }
  return {
    members,
    publishers,
    rooms,
    startPublishing: () => {
      if (running || loops.length > 0) return
      running = true
      // Spread the publishers' starts over one interval so the load is steady, not in waves.
      loops = publishers.map(async (publisher, i) => {
        await sleep((i * options.publishIntervalMs) / Math.max(1, publishers.length))
        await publishLoop(publisher)
      })
    },
    stopPublishing: async () => {
      running = false
      await Promise.all(loops)
    },
    ackedCount: () => publishers.reduce((sum, publisher) => sum + publisher.acked.length, 0),
    ackedByRoom: () => {
      const byRoom = new Map<string, Array<Acked>>(rooms.map((room) => [room, []]))
      for (const publisher of publishers) byRoom.get(publisher.member.room)!.push(...publisher.acked)
      return byRoom
    },
    close: async () => {
      running = false
      await Promise.all(loops)
      await Promise.all(members.map((m) => m.recorded.client.close()))
    }
  }
}

/** One member's recent history, for a failure message: connections, states, errors, closes. */
export const describeMember = (m: Member): string =>
  JSON.stringify({
    user: m.user,
    timeline: m.timeline.slice(-10),
    sockets: m.recorded.socketUrls.slice(-3).map((url) => url.replace(/ticket=[^&]+/, "ticket=…"))
  })
