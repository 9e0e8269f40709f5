/**
 * The bench's side of the load generator: starts `loadgen/main.ts` as a Bun
 * process of its own and calls its commands over IPC.
 */
import { join } from "node:path"
import { type Child, spawnChild } from "../procs.ts"
import type { Command, ConnectArgs, ConnectResult, RunArgs, RunResult, Status, StormResult, ToParent } from "./protocol.ts"

export interface Progress {
  readonly phase: string
  readonly open: number
  readonly deliveries: number
  readonly sent: number
  readonly at: number
}

export interface LoadGenerator {
  readonly pid: number
  readonly fdLimit: number
  readonly connect: (args: ConnectArgs) => Promise<ConnectResult>
  readonly run: (args: RunArgs) => Promise<RunResult>
  readonly arm: () => Promise<void>
  readonly awaitBack: (since: number, timeoutMs: number) => Promise<StormResult>
  readonly reset: () => Promise<void>
  readonly status: () => Promise<Status>
  readonly stop: () => Promise<void>
}

export const start = async (onProgress: (progress: Progress) => void): Promise<LoadGenerator> => {
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  let ready: ((fdLimit: number) => void) | undefined
  const readyPromise = new Promise<number>((resolve) => (ready = resolve))
  let child: Child | undefined
  child = spawnChild("load generator", [process.execPath, join(import.meta.dirname, "main.ts")], {
    ipc: (raw) => {
      const message = raw as ToParent
      if (message.type === "progress") onProgress(message)
      else if (message.type === "ready") ready?.(message.fdLimit)
      else {
        const waiter = pending.get(message.id)
        pending.delete(message.id)
        if (waiter === undefined) return
        if (message.ok) waiter.resolve(message.result)
        else waiter.reject(new Error(`load generator: ${message.error}`))
      }
    }
  })
  void child.exited.then((code) => {
    for (const waiter of pending.values()) {
      waiter.reject(new Error(`the load generator exited (${code}); last lines:\n${child?.tail.join("\n")}`))
    }
    pending.clear()
  })
  const fdLimit = await Promise.race([
    readyPromise,
    child.exited.then((code) => Promise.reject(new Error(`the load generator exited (${code}) at start; last lines:\n${child?.tail.join("\n")}`)))
  ])
  let nextId = 0
  const call = <A>(command: Command): Promise<A> =>
    new Promise<A>((resolve, reject) => {
      const id = ++nextId
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      child!.process.send({ ...command, id })
    })
  return {
    pid: child.pid,
    fdLimit,
    connect: (args) => call({ cmd: "connect", args }),
    run: (args) => call({ cmd: "run", args }),
    arm: () => call({ cmd: "arm", args: {} }),
    awaitBack: (since, timeoutMs) => call({ cmd: "awaitBack", args: { since, timeoutMs } }),
    reset: () => call({ cmd: "reset", args: {} }),
    status: () => call({ cmd: "status", args: {} }),
    stop: async () => {
      await child?.kill()
    }
  }
}
