/**
 * The online users the delivery benches send to (bench:api, bench:ingest): raw WebSocket test
 * clients, one per user, each subscribed to its own `user:` channel and kept alive, and a
 * listener for the notifications a measured run sends them.
 */
import { Codec } from "@weft/protocol"
import { Either } from "effect"
import { type Client, connectAs, rawBytes, request, requestId } from "../../test/support/wsClient.ts"

/**
 * Every 5 s, until the returned function is called: each client pings, as real devices do (a
 * socket silent for twice --heartbeat-ms is closed), and its frame list is emptied (the benches
 * read receipts from their own listener, and a run's thousands of frames would pile up there).
 * `clients` is read at each tick, so clients added later are kept alive too.
 */
export const keepAlive = (clients: ReadonlyArray<Client>): (() => void) => {
  const timer = setInterval(() => {
    for (const client of clients) {
      client.frames.length = 0
      if (client.socket.readyState === client.socket.OPEN) client.send({ type: "ping", id: requestId() })
    }
  }, 5000)
  return () => clearInterval(timer)
}

/**
 * `user` connected to `baseUrl` as a phone and subscribed to `user:<user>`. A loaded machine may
 * refuse a registration now and then (503): up to 5 attempts, waiting longer after each.
 */
export const connectUser = async (baseUrl: string, user: string): Promise<Client> => {
  let connected: Client | undefined
  for (let attempt = 1; connected === undefined; attempt++) {
    connected = await connectAs(baseUrl, { sub: user, weft: { device: "phone" } }).then(
      (opened) => opened.client,
      async (error: unknown) => {
        if (attempt >= 5) throw error
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt))
        return undefined
      }
    )
  }
  const answer = await request(connected, (id) => ({ type: "subscribe", id, channel: `user:${user}` }))
  if (answer.type !== "ack") throw new Error(`subscribe: ${JSON.stringify(answer)}`)
  return connected
}

/**
 * Beside the test client's own listener: calls `receipt` with the `data` of each notification
 * `client` receives (a msgpack `message` frame whose payload has an object `data`) and the time
 * `clock` gave as the frame arrived, before it was decoded (each bench keeps its own clock).
 */
export const onNotification = (
  client: Client,
  clock: () => number,
  receipt: (event: object, receivedAt: number) => void
): void => {
  client.socket.on("message", (data, isBinary) => {
    const receivedAt = clock()
    if (!isBinary) return
    const frame = Codec.decodeServerFrame(rawBytes(data), "msgpack")
    if (Either.isLeft(frame) || frame.right.type !== "message") return
    const payload = frame.right.data
    if (typeof payload !== "object" || payload === null || !("data" in payload)) return
    const event = payload.data
    if (typeof event === "object" && event !== null) receipt(event, receivedAt)
  })
}
