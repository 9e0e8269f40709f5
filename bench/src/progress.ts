/**
 * Where a run is, on stderr (stdout keeps the tables): on a terminal one line
 * rewritten in place (scenario, contender, phase, connections open,
 * deliveries/s over the last second); otherwise a plain line at each phase
 * change and every 5 seconds within a long phase.
 */
import type { Progress } from "./loadgen/handle.ts"

const tty = process.stderr.isTTY === true
let scenario = ""
let contender = ""
let phase = ""
let open = 0
let rate = 0
let lastPlainAt = 0
let lastPlainPhase = ""
const recent: Array<{ at: number; deliveries: number }> = []

const line = (): string =>
  `[${scenario}] ${contender.padEnd(9)} ${phase.padEnd(34)} open ${String(open).padStart(6)}  deliveries/s ${Math.round(rate).toLocaleString("en-US").padStart(9)}`

const render = (): void => {
  if (tty) {
    process.stderr.write(`\r\x1b[K${line()}`)
    return
  }
  const now = performance.now()
  if (phase !== lastPlainPhase || now - lastPlainAt >= 5000) {
    lastPlainPhase = phase
    lastPlainAt = now
    process.stderr.write(`${line()}\n`)
  }
}

export const setScenario = (name: string): void => {
  scenario = name
}

export const setContender = (name: string): void => {
  contender = name
  recent.length = 0
  rate = 0
  open = 0
}

/** A phase the bench itself is in (starting servers, restarting, ...). */
export const setPhase = (text: string): void => {
  phase = text
  render()
}

/** A report from the load generator (every 250 ms). */
export const fromLoadGenerator = (progress: Progress): void => {
  open = progress.open
  if (progress.phase !== "idle") phase = progress.phase
  recent.push({ at: progress.at, deliveries: progress.deliveries })
  while (recent.length > 1 && progress.at - recent[0]!.at > 1000) recent.shift()
  const first = recent[0]!
  rate = progress.at > first.at ? ((progress.deliveries - first.deliveries) * 1000) / (progress.at - first.at) : 0
  render()
}

/** Ends the in-place line before other output. */
export const clear = (): void => {
  if (tty) process.stderr.write("\r\x1b[K")
}

/** A message that stays (a limit hit, a contender that failed). */
export const note = (text: string): void => {
  clear()
  process.stderr.write(`${text}\n`)
}
