/**
 * What the bench (parent) and the load generator (child process) say to each
 * other over Bun's IPC channel: commands with an id, one answer each, and
 * progress reports in between.
 */

/** How the load generator speaks to a contender. `raw` is the JSON protocol of bun-raw.ts and ws.mjs. */
export type ClientKind = "weft" | "raw" | "socketio"

/** One client connection to open: whose, on which server (index into `urls`), in which rooms. */
export interface ClientSpec {
  readonly user: string
  readonly device: string
  readonly node: number
  readonly rooms: ReadonlyArray<string>
}

export interface ConnectArgs {
  readonly kind: ClientKind
  /** Base URLs (`http://127.0.0.1:<port>`), one per server process. */
  readonly urls: ReadonlyArray<string>
  /** Weft only: the HS256 secret the nodes were started with (`--jwt-secret`). */
  readonly jwtSecret?: string
  readonly clients: ReadonlyArray<ClientSpec>
  /** Connection attempts in flight at once. */
  readonly concurrency: number
  /** Per client: ticket, upgrade, welcome and every subscription acknowledged within this. */
  readonly timeoutMs: number
  /** Stop starting new attempts after the first failure (the capacity scenario). */
  readonly stopOnFailure: boolean
  /** Stop starting new attempts after this long (ms): every connect loop is bounded in time. */
  readonly deadlineMs?: number
}

export interface ConnectResult {
  readonly opened: number
  readonly failed: number
  readonly seconds: number
  /** Failures by reason (`ticket HTTP 429`, `closed 1006 before welcome`, `timeout`, ...). */
  readonly failures: Record<string, number>
  readonly firstFailure?: string
  /** Open connections in the pool after this call (all calls so far). */
  readonly open: number
  /** Clients not attempted because `deadlineMs` passed. */
  readonly skipped: number
}

/** A publisher: the connection (pool index) that sends, and the room it sends to. */
export interface Publisher {
  readonly conn: number
  readonly room: string
}

export interface RunArgs {
  readonly label: string
  /** `fixed`: `rate` messages/s in total; `max`: as fast as deliveries complete, at most `window` deliveries outstanding. */
  readonly mode: "fixed" | "max"
  readonly rate?: number
  readonly window?: number
  /** Each message goes from a publisher picked in turn (round robin). */
  readonly publishers: ReadonlyArray<Publisher>
  readonly warmupMs: number
  readonly durationMs: number
  /** After the measured window, how long to wait for the last deliveries before counting the rest lost. */
  readonly drainMs: number
}

export interface LatencySummary {
  readonly count: number
  readonly min: number
  readonly mean: number
  readonly p50: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  /** [percentile, microseconds] pairs for the percentile curve. */
  readonly curve: ReadonlyArray<readonly [number, number]>
}

export interface RunResult {
  readonly label: string
  /** The rate asked for (`fixed` runs). */
  readonly askedRate?: number
  readonly seconds: number
  /** Messages published during the measured window. */
  readonly published: number
  readonly publishedPerSecond: number
  /** Deliveries of this run's messages received during the measured window. */
  readonly deliveries: number
  readonly deliveriesPerSecond: number
  /** Deliveries owed for messages published in the window that never came within `drainMs`. */
  readonly lost: number
  /** Deliveries that came after their message was given up on. */
  readonly late: number
  /** publish -> deliver, microseconds, every delivery of this run's messages received in the measured window. */
  readonly latencyUs: LatencySummary
  readonly errors: Record<string, number>
  /** The load generator's own CPU over the window (1.0 = one core busy). */
  readonly loadgenCpu: number
  /** Publisher connections found closed before the run and opened again (a server closed them earlier). */
  readonly publishersReconnected: number
  /** Deliveries of earlier runs' messages that arrived during this one (not in its figures). */
  readonly stale: number
}

export interface StormResult {
  readonly total: number
  readonly back: number
  /** Wall-clock ms (Date.now()) of the first close seen, and when the last client was back and resubscribed. */
  readonly firstCloseAt: number | undefined
  readonly allBackAt: number | undefined
  /** ms after `since` at which 50%, 90%, 99% and all clients were back and resubscribed. */
  readonly backAfterMs: { readonly p50?: number; readonly p90?: number; readonly p99?: number; readonly all?: number }
  readonly attempts: number
  readonly failures: Record<string, number>
}

export type Command =
  | { readonly cmd: "connect"; readonly args: ConnectArgs }
  | { readonly cmd: "run"; readonly args: RunArgs }
  | { readonly cmd: "arm"; readonly args: Record<string, never> }
  | { readonly cmd: "awaitBack"; readonly args: { readonly since: number; readonly timeoutMs: number } }
  | { readonly cmd: "reset"; readonly args: Record<string, never> }
  | { readonly cmd: "status"; readonly args: Record<string, never> }

export interface Status {
  readonly open: number
  readonly subscribed: number
  readonly rssBytes: number
  readonly errors: Record<string, number>
}

export type Request = Command & { readonly id: number }

export type ToParent =
  | { readonly type: "answer"; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly type: "answer"; readonly id: number; readonly ok: false; readonly error: string }
  | { readonly type: "progress"; readonly phase: string; readonly open: number; readonly deliveries: number; readonly sent: number; readonly at: number }
  | { readonly type: "ready"; readonly fdLimit: number }
