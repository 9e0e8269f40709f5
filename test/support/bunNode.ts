/**
 * Starts real Bun node processes for end-to-end tests and reads their JSON
 * logs. Every process listens on 127.0.0.1 and is killed when the test ends.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { join } from "node:path"
import { createInterface } from "node:readline"

export const repoRoot = join(import.meta.dirname, "..", "..")
export const bunBinary = join(repoRoot, "node_modules", ".bin", "bun")
export const nodeEntry = join(repoRoot, "services", "node", "src", "main.ts")

export interface LogLine {
  readonly message: unknown
  readonly logLevel?: string
  readonly annotations?: Record<string, unknown>
  readonly [key: string]: unknown
}

export interface RunningNode {
  readonly process: ChildProcess
  readonly logs: Array<LogLine>
  readonly stderr: Array<string>
  /** Resolves with the first log line matching, or rejects when the process exits first or after `timeoutMs`. */
  readonly waitForLog: (predicate: (line: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly url: () => string
  readonly kill: (signal?: NodeJS.Signals) => void
}

const parse = (text: string): LogLine | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && "message" in value ? (value as LogLine) : undefined
  } catch {
    return undefined
  }
}

/** Spawns `bun services/node/src/main.ts` with the given flags and environment. */
export const startNode = (args: ReadonlyArray<string>, env: Record<string, string> = {}): RunningNode => {
  const child = spawn(bunBinary, [nodeEntry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const logs: Array<LogLine> = []
  const stderr: Array<string> = []
  const listeners = new Set<() => void>()
  createInterface({ input: child.stdout! }).on("line", (text) => {
    const line = parse(text)
    if (line !== undefined) {
      logs.push(line)
      for (const listener of listeners) listener()
    }
  })
  createInterface({ input: child.stderr! }).on("line", (text) => {
    stderr.push(text)
  })
  const exited = once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null
  }))
  let listening: LogLine | undefined
  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = logs.find(predicate)
        if (found === undefined) return
        cleanup()
        resolve(found)
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.join("\n")}`))
      }, timeoutMs)
      const onExit = () => {
        cleanup()
        reject(new Error(`node exited before the log line; stderr: ${stderr.join("\n")}`))
      }
      const cleanup = () => {
        clearTimeout(timer)
        listeners.delete(check)
        child.off("exit", onExit)
      }
      listeners.add(check)
      child.once("exit", onExit)
      check()
    })
  void waitForLog((line) => line.message === "listening").then((line) => {
    listening = line
  }, () => undefined)
  return {
    process: child,
    logs,
    stderr,
    waitForLog,
    exited,
    url: () => {
      const url = listening?.annotations?.["url"]
      if (typeof url !== "string") throw new Error("node is not listening yet")
      return url
    },
    kill: (signal = "SIGKILL") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    }
  }
}

/** Starts a node on a free loopback port and waits until it listens; a node that does not is killed. */
export const startListeningNode = async (args: ReadonlyArray<string> = [], env: Record<string, string> = {}) => {
  const node = startNode(["--host", "127.0.0.1", "--port", "0", ...args], env)
  try {
    await node.waitForLog((line) => line.message === "listening")
  } catch (error) {
    node.kill()
    throw error
  }
  return node
}
