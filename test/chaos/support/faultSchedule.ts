/**
 * A seeded random schedule of faults: the same seed gives the same faults, on the same nodes,
 * with the same durations, so a failure replays with `CHAOS_SEED=<seed>`. The generator is
 * mulberry32 (32-bit state, good enough to pick faults; not for anything secret).
 */

export type Fault =
  | { readonly kind: "kill"; readonly node: number; readonly downMs: number }
  | { readonly kind: "pause"; readonly node: number; readonly pausedMs: number }
  | { readonly kind: "redis-restart"; readonly downMs: number }
  | { readonly kind: "network-delay"; readonly delayMs: number; readonly forMs: number }

/** A generator of numbers in [0, 1) from `seed`. */
export const mulberry32 = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const kinds = ["kill", "pause", "redis-restart", "network-delay"] as const

/**
 * `count` faults for a cluster of `nodes` nodes whose leases last `leaseMs`. Every kind comes up
 * once before any repeats (in a seeded order), so even a short schedule covers them all.
 */
export const faultSchedule = (seed: number, count: number, nodes: number, leaseMs: number): ReadonlyArray<Fault> => {
  const random = mulberry32(seed)
  const between = (low: number, high: number) => Math.round(low + random() * (high - low))
  const order: Array<Fault["kind"]> = [...kinds]
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return Array.from({ length: count }, (_, i): Fault => {
    const kind = i < order.length ? order[i]! : kinds[Math.floor(random() * kinds.length)]!
    switch (kind) {
      case "kill":
        return { kind, node: Math.floor(random() * nodes), downMs: between(500, 3000) }
      case "pause":
        // Past the lease, so that its shards move while it is frozen.
        return { kind, node: Math.floor(random() * nodes), pausedMs: between(2 * leaseMs, 4 * leaseMs) }
      case "redis-restart":
        return { kind, downMs: between(500, 4000) }
      case "network-delay":
        return { kind, delayMs: between(20, 300), forMs: between(2000, 6000) }
    }
  })
}

export const describeFault = (fault: Fault): string => {
  switch (fault.kind) {
    case "kill":
      return `kill -9 node ${fault.node}, restart after ${fault.downMs} ms`
    case "pause":
      return `SIGSTOP node ${fault.node} for ${fault.pausedMs} ms`
    case "redis-restart":
      return `kill -9 Redis, start it after ${fault.downMs} ms`
    case "network-delay":
      return `${fault.delayMs} ms each way between the nodes and Redis for ${fault.forMs} ms`
  }
}
