/**
 * Every process a chaos scenario starts is registered here and killed when the test process
 * exits, however it exits: a worker ended by a hook's timeout runs no `afterAll`, and a Bun node
 * or redis-server left behind would load the machine for everyone after it.
 */
import type { ChildProcess } from "node:child_process"

const children = new Set<ChildProcess>()

const killAll = (): void => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue
    try {
      child.kill("SIGCONT")
      child.kill("SIGKILL")
    } catch {
      // Already gone.
    }
  }
  children.clear()
}

process.once("exit", killAll)

/** Kills `child` (SIGKILL) when this process exits, unless it exited first. */
export const reap = (child: ChildProcess): void => {
  children.add(child)
  child.once("exit", () => children.delete(child))
}

/** Resolves with `promise`, or after `ms` with `undefined`: for clean-up that must not hang. */
export const within = <A>(ms: number, promise: Promise<A>): Promise<A | undefined> =>
  Promise.race([promise, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())])
