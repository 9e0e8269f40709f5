/**
 * A small TCP proxy on 127.0.0.1 that forwards to a target port, adding a latency that can be
 * changed while it runs: the "slow network" fault between the nodes and Redis. Bytes keep their
 * order in each direction (each chunk leaves no earlier than the one before it), and closing
 * either side closes the other.
 */
import { once } from "node:events"
import { createServer, type Server, Socket } from "node:net"

export interface LatencyProxy {
  readonly port: number
  readonly url: string
  /** One-way delay (ms) for bytes from now on, in both directions. */
  readonly setDelay: (ms: number) => void
  readonly delay: () => number
  /** Closes the listener and every connection through it. */
  readonly close: () => Promise<void>
}

/** Forwards `from` to `to`, each chunk `delay()` ms late, never overtaking the previous chunk. */
const pipeDelayed = (from: Socket, to: Socket, delay: () => number): void => {
  let lastDue = 0
  from.on("data", (chunk: Buffer) => {
    const due = Math.max(Date.now() + delay(), lastDue)
    lastDue = due
    const wait = due - Date.now()
    if (wait <= 0 && !to.destroyed) to.write(chunk)
    else setTimeout(() => {
      if (!to.destroyed) to.write(chunk)
    }, wait)
  })
  from.on("end", () => {
    setTimeout(() => to.end(), Math.max(0, lastDue - Date.now()))
  })
}

export const startLatencyProxy = async (targetPort: number): Promise<LatencyProxy> => {
  let delayMs = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = new Socket()
    sockets.add(client)
    sockets.add(upstream)
    const closeBoth = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on("error", closeBoth)
    upstream.on("error", closeBoth)
    client.on("close", closeBoth)
    upstream.on("close", closeBoth)
    upstream.connect(targetPort, "127.0.0.1")
    pipeDelayed(client, upstream, () => delayMs)
    pipeDelayed(upstream, client, () => delayMs)
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("the proxy has no TCP address")
  return {
    port: address.port,
    url: `redis://127.0.0.1:${address.port}`,
    setDelay: (ms) => {
      delayMs = Math.max(0, ms)
    },
    delay: () => delayMs,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
