/** Free loopback ports and throwaway Redis servers for tests. Everything binds 127.0.0.1. */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer, Socket } from "node:net"
import { once } from "node:events"

/** A port that was free a moment ago (the OS may hand it out again; good enough on loopback). */
export const freePort = async (): Promise<number> => {
  const server = createServer()
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (port === 0) throw new Error("could not find a free port")
  return port
}

export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** A cluster name no other test run uses. */
export const uniqueCluster = (label: string): string => `t-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
}

const waitForPing = async (port: number, up: boolean, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = new Socket()
      socket.setTimeout(500)
      socket.once("error", () => resolve(false))
      socket.once("timeout", () => {
        socket.destroy()
        resolve(false)
      })
      socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"))
      socket.once("data", (data) => {
        socket.destroy()
        resolve(data.toString().startsWith("+PONG"))
      })
    })
    if (answered === up) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`redis on ${port} did not ${up ? "start" : "stop"} within ${timeoutMs} ms`)
}

/** Starts a dedicated `redis-server` (no persistence) on a free port; stop/start keep the port. */
export const startRedisServer = async (): Promise<RedisServer> => {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
    await waitForPing(port, true)
  }
  const stop = async () => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    running.kill("SIGKILL")
    await once(running, "exit")
    await waitForPing(port, false)
  }
  await start()
  return { port, url: `redis://127.0.0.1:${port}`, start, stop }
}
