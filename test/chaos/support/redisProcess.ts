/**
 * A dedicated `redis-server` for one chaos scenario, on its own loopback port, with the
 * append-only file fsynced on every write (`appendfsync always`) in a throwaway directory.
 * That is the durability a deployment must configure for Weft's guarantee to hold across a
 * Redis restart: a write Redis acknowledged is on disk, so a message the room acknowledged
 * (its history append answered) survives even `kill -9` of Redis. `restart` keeps the port
 * and the data directory.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { mkdtempSync, rmSync } from "node:fs"
import { Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../../support/ports.ts"
import { reap } from "./reaper.ts"

export interface RedisProcess {
  readonly port: number
  readonly url: string
  /** Whether the server answers now (as far as this helper knows: started and not stopped). */
  readonly running: () => boolean
  /** Stops it with `signal` (SIGKILL: a crash; SIGTERM: a clean shutdown) and waits until the port is closed. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<void>
  /** Starts it again on the same port and directory, and waits until it answers PING. */
  readonly start: () => Promise<void>
  /** Stops it for good and removes its directory. */
  readonly dispose: () => Promise<void>
}

/** Resolves whether Redis on `port` answers PING within 500 ms. */
const pings = (port: number): Promise<boolean> =>
  new Promise<boolean>((resolve) => {
    const socket = new Socket()
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(500)
    socket.once("error", () => done(false))
    socket.once("timeout", () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"))
  })

const waitForPing = async (port: number, up: boolean, timeoutMs = 15_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await pings(port)) === up) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`redis on ${port} did not ${up ? "start" : "stop"} within ${timeoutMs} ms`)
}

export const startRedisProcess = async (): Promise<RedisProcess> => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "weft-chaos-redis-"))
  let child: ChildProcess | undefined
  const start = async () => {
    if (child !== undefined) return
    child = spawn("redis-server", [
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--dir", dir,
      "--save", "",
      "--appendonly", "yes",
      "--appendfsync", "always"
    ], { stdio: "ignore" })
    reap(child)
    await waitForPing(port, true)
  }
  const stop = async (signal: NodeJS.Signals = "SIGKILL") => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = once(running, "exit")
    running.kill(signal)
    await exited
    await waitForPing(port, false)
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    running: () => child !== undefined,
    stop,
    start,
    dispose: async () => {
      await stop("SIGKILL").catch(() => undefined)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
