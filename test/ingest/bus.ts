/**
 * Buses for the ingest tests and benchmark, without vitest: whether a server
 * answers, the publisher process (`publisher.mjs`, plain Node with the bus's
 * own client library), and a node's metrics.
 */
import { spawn } from "node:child_process"
import { once } from "node:events"
import { Socket } from "node:net"
import { join } from "node:path"
import type { RunningNode } from "../support/bunNode.ts"
import { parse } from "../support/prometheus.ts"

export type BusName = "nats" | "amqp" | "redis"

/** One message as the publisher sends it. */
export interface Published {
  readonly subject: string
  readonly body: string
  /** The bus's message id (NATS `Nats-Msg-Id`, AMQP `message-id`); Redis gives its own. */
  readonly id?: string
}

export interface DeadLetter {
  readonly reason: string
  readonly message: string
  readonly body: string
}

/** One bus, set up for one run of the suite. */
export interface BusFixture {
  readonly bus: BusName
  /** The node flags that make it consume this bus. */
  readonly flags: ReadonlyArray<string>
  /** The publisher's config (`publisher.mjs`). */
  readonly publisherConfig: Record<string, unknown>
  /** Subjects (routing keys) start with this, so that runs never meet. */
  readonly prefix: string
  /** Nothing waiting in the bus for the consumers and nothing taken but unacknowledged. */
  readonly drained: (cluster: string) => Promise<boolean>
  readonly deadLetters: () => Promise<ReadonlyArray<DeadLetter>>
  readonly cleanup: () => Promise<void>
}

/** Whether something answers on a loopback TCP port. */
export const answers = (port: number, host = "127.0.0.1"): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = new Socket()
    socket.setTimeout(1000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
    socket.once("error", () => resolve(false))
    socket.connect(port, host)
  })

/** Runs `publisher.mjs` with plain Node and resolves once the bus acknowledged every message. */
export const publish = async (
  bus: BusName,
  config: Record<string, unknown>,
  messages: ReadonlyArray<Published>,
  timeoutMs = 60_000
): Promise<number> => {
  // Plain Node even when the caller runs on Bun (the benchmark).
  const node = process.versions["bun"] === undefined ? process.execPath : "node"
  const child = spawn(node, [join(import.meta.dirname, "publisher.mjs"), bus, JSON.stringify(config)], {
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)))
  child.stdin.end(messages.map((message) => JSON.stringify(message)).join("\n") + "\n")
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
  const [code] = await once(child, "exit")
  clearTimeout(timer)
  if (code !== 0) throw new Error(`the publisher exited with ${String(code)}: ${stderr}`)
  const line = stdout.trim().split("\n").at(-1) ?? ""
  const match = /"published":(\d+)/.exec(line)
  if (match === null) throw new Error(`the publisher said ${stdout}; stderr: ${stderr}`)
  return Number(match[1])
}

/** The value of a metric series on a node (0 when absent). */
export const metric = async (node: RunningNode, name: string, labels: Record<string, string>): Promise<number> => {
  const response = await fetch(`${node.url()}/metrics`, { signal: AbortSignal.timeout(5000) })
  return parse(await response.text()).total(name, labels)
}
