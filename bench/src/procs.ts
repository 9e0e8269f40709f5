/**
 * The processes a bench run starts: contenders, Weft nodes, the load generator.
 * Every one is recorded here and killed when its scenario ends, when the bench
 * exits, on an error, on Ctrl-C (SIGINT) and on SIGTERM. A watchdog shell
 * kills what is recorded if the bench itself dies without a chance to clean up
 * (SIGKILL), and the bench's own helper programs also exit when their parent
 * is gone. CPU and RSS of any of them are read from /proc.
 */
import type { Subprocess } from "bun"
import { execFileSync, spawn as nodeSpawn } from "node:child_process"
import { appendFileSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface Child {
  readonly name: string
  readonly pid: number
  readonly process: Subprocess<"ignore", "pipe", "pipe">
  readonly exited: Promise<number>
  /** The last lines it wrote to stdout and stderr, for error messages. */
  readonly tail: Array<string>
  /** Resolves with the first stdout line matching, rejects if it exits first or after `timeoutMs`. */
  readonly waitForLine: (predicate: (line: string) => boolean, timeoutMs: number) => Promise<string>
  readonly kill: () => Promise<void>
  readonly alive: () => boolean
}

const children = new Set<Child>()
const pidFile = join(tmpdir(), `weft-bench-${process.pid}.pids`)
let watchdogStarted = false

/** A detached shell that outlives a killed bench for at most a second and then kills what it left. */
const startWatchdog = (): void => {
  if (watchdogStarted) return
  watchdogStarted = true
  writeFileSync(pidFile, "")
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
    `if [ -f '${pidFile}' ]; then for p in $(cat '${pidFile}'); do kill -9 "$p" 2>/dev/null; done; rm -f '${pidFile}'; fi`
  const watchdog = nodeSpawn("sh", ["-c", script], { detached: true, stdio: "ignore" })
  watchdog.unref()
}

const readLines = async (stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> => {
  const decoder = new TextDecoder()
  let buffered = ""
  const reader = stream.getReader()
  try {
    for (;;) {
      const { done, value: chunk } = await reader.read()
      if (done) break
      buffered += decoder.decode(chunk, { stream: true })
      let newline = buffered.indexOf("\n")
      while (newline !== -1) {
        onLine(buffered.slice(0, newline))
        buffered = buffered.slice(newline + 1)
        newline = buffered.indexOf("\n")
      }
    }
  } catch {
    // the process went away
  }
  if (buffered.length > 0) onLine(buffered)
}

export interface SpawnOptions {
  readonly env?: Record<string, string>
  readonly cwd?: string
  /** Bun IPC (the load generator). */
  readonly ipc?: (message: unknown) => void
}

export const spawnChild = (name: string, command: ReadonlyArray<string>, options: SpawnOptions = {}): Child => {
  startWatchdog()
  const proc = Bun.spawn([...command], {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { ...process.env, ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    ...(options.ipc === undefined ? {} : { ipc: options.ipc, serialization: "advanced" as const })
  })
  appendFileSync(pidFile, `${proc.pid}\n`)
  const tail: Array<string> = []
  const listeners = new Set<(line: string) => void>()
  const onLine = (line: string) => {
    tail.push(line)
    if (tail.length > 40) tail.shift()
    for (const listener of listeners) listener(line)
  }
  void readLines(proc.stdout, onLine)
  void readLines(proc.stderr, onLine)
  let exitedAlready = false
  const exited = proc.exited.then((code) => {
    exitedAlready = true
    return code
  })
  const child: Child = {
    name,
    pid: proc.pid,
    process: proc,
    exited,
    tail,
    waitForLine: (predicate, timeoutMs) =>
      new Promise((resolve, reject) => {
        const found = tail.find(predicate)
        if (found !== undefined) return resolve(found)
        const cleanup = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        const check = (line: string) => {
          if (!predicate(line)) return
          cleanup()
          resolve(line)
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`${name}: no expected output within ${timeoutMs} ms; last lines:\n${tail.join("\n")}`))
        }, timeoutMs)
        listeners.add(check)
        void exited.then((code) => {
          cleanup()
          reject(new Error(`${name} exited (${code}) before it was ready; last lines:\n${tail.join("\n")}`))
        })
      }),
    kill: async () => {
      children.delete(child)
      if (!exitedAlready) {
        proc.kill("SIGKILL")
        await exited
      }
    },
    alive: () => !exitedAlready
  }
  children.add(child)
  return child
}

/** Kills every process the bench started (synchronously: also usable in an `exit` handler). */
export const killAll = (): void => {
  for (const child of children) {
    try {
      child.process.kill("SIGKILL")
    } catch {
      // already gone
    }
  }
  children.clear()
}

let handlersInstalled = false
/** Ctrl-C, SIGTERM, an uncaught error or a normal exit: nothing the bench started survives it. */
export const installCleanup = (): void => {
  if (handlersInstalled) return
  handlersInstalled = true
  const finish = (code: number) => {
    killAll()
    rmSync(pidFile, { force: true })
    process.exit(code)
  }
  process.on("SIGINT", () => {
    process.stderr.write("\ninterrupted: stopping every process the bench started\n")
    finish(130)
  })
  process.on("SIGTERM", () => finish(143))
  process.on("exit", () => {
    killAll()
    rmSync(pidFile, { force: true })
  })
}

// ---------------------------------------------------------------------------
// CPU and memory from /proc
// ---------------------------------------------------------------------------

let ticksPerSecond: number | undefined
const clockTicks = (): number => {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** CPU seconds (user + system) used so far by `pid`, or undefined when it is gone. */
export const cpuSeconds = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // After the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (Number(fields[11]) + Number(fields[12])) / clockTicks()
  } catch {
    return undefined
  }
}

/** Resident set size of `pid` in bytes, or undefined when it is gone. */
export const rssBytes = (pid: number): number | undefined => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const match = /VmRSS:\s+(\d+) kB/.exec(status)
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

/** The soft and hard open-files limits of `pid` (default: this process). */
export const fdLimits = (pid: number | "self" = "self"): { soft: number; hard: number } => {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith("Max open files"))
    const [, soft, hard] = line?.split(/\s{2,}/) ?? []
    const parse = (value: string | undefined) => (value === undefined || value === "unlimited" ? Number.POSITIVE_INFINITY : Number(value))
    return { soft: parse(soft), hard: parse(hard) }
  } catch {
    return { soft: Number.POSITIVE_INFINITY, hard: Number.POSITIVE_INFINITY }
  }
}

/** The kernel's ephemeral port range: how many client sockets one address pair can have. */
export const ephemeralPorts = (): number => {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number)
    return high! - low! + 1
  } catch {
    return 28_232
  }
}

export interface ProcessUsage {
  readonly name: string
  readonly pid: number
  /** Average CPU over the window, in cores (1.0 = one core busy all the time). */
  readonly cpu: number
  readonly rssPeakBytes: number
  readonly rssEndBytes: number
}

/** Samples CPU and RSS of some processes from `start` until `stop` (RSS every 250 ms, for the peak). */
export const sampler = (targets: ReadonlyArray<{ readonly name: string; readonly pid: number }>) => {
  const startCpu = new Map<number, number>()
  const peak = new Map<number, number>()
  let startedAt = 0
  let timer: ReturnType<typeof setInterval> | undefined
  const sample = () => {
    for (const target of targets) {
      const rss = rssBytes(target.pid)
      if (rss !== undefined) peak.set(target.pid, Math.max(peak.get(target.pid) ?? 0, rss))
    }
  }
  return {
    start: () => {
      startedAt = performance.now()
      for (const target of targets) startCpu.set(target.pid, cpuSeconds(target.pid) ?? 0)
      sample()
      timer = setInterval(sample, 250)
    },
    stop: (): Array<ProcessUsage> => {
      if (timer !== undefined) clearInterval(timer)
      sample()
      const seconds = (performance.now() - startedAt) / 1000
      return targets.map((target) => ({
        name: target.name,
        pid: target.pid,
        cpu: seconds > 0 ? ((cpuSeconds(target.pid) ?? 0) - (startCpu.get(target.pid) ?? 0)) / seconds : 0,
        rssPeakBytes: peak.get(target.pid) ?? 0,
        rssEndBytes: rssBytes(target.pid) ?? 0
      }))
    }
  }
}
