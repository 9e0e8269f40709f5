/** A client wired to the fakes: manual clock, scripted random, in-memory sockets. */
import { type ClientOptions, createClient, type StateEvent, type TicketContext, type WeftClient, type WeftError } from "../../src/index.ts"
import { fakeWebSocket, flush, ManualClock, welcomeFrame } from "./fakes.ts"

export interface Harness {
  readonly client: WeftClient
  readonly clock: ManualClock
  readonly ws: ReturnType<typeof fakeWebSocket>
  readonly ticketCalls: Array<TicketContext>
  readonly states: Array<StateEvent>
  readonly errors: Array<WeftError>
  /** Connects and accepts the first socket; resolves once connected. */
  readonly connectNow: (welcome?: Parameters<ReturnType<typeof fakeWebSocket>["sockets"][number]["accept"]>[0]) => Promise<void>
}

export const harness = (overrides: Omit<Partial<ClientOptions>, "clock" | "WebSocket"> = {}): Harness => {
  const clock = new ManualClock()
  const ws = fakeWebSocket()
  const ticketCalls: Array<TicketContext> = []
  const client = createClient({
    url: "ws://127.0.0.1:1/v1/ws",
    getTicket: (context) => {
      ticketCalls.push(context)
      return `ticket-${ticketCalls.length}`
    },
    random: () => 0.5,
    hints: false,
    ...overrides,
    WebSocket: ws.WebSocket,
    clock
  })
  const states: Array<StateEvent> = []
  const errors: Array<WeftError> = []
  client.on("state", (event) => states.push(event))
  client.on("error", (error) => errors.push(error))
  const connectNow: Harness["connectNow"] = async (welcome = welcomeFrame()) => {
    const connected = client.connect()
    await flush()
    ws.last().accept(welcome)
    await connected
  }
  return { client, clock, ws, ticketCalls, states, errors, connectNow }
}

/** Runs due timers, then lets the client's promise steps run, `rounds` times. */
export const advance = async (h: Harness, ms: number): Promise<void> => {
  h.clock.advance(ms)
  await flush()
}
