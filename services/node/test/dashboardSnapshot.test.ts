import type { NodeStats } from "@weft/cluster"
import { describe, expect, it } from "vitest"
import * as DashboardSnapshot from "../src/web/DashboardSnapshot.ts"

const report = (node: string, at: number, extra: Partial<NodeStats.Report> = {}): NodeStats.Report => ({
  node,
  roles: ["gateway", "chat"],
  ready: true,
  connections: 0,
  actors: [],
  at,
  ...extra
})

/** Cumulative buckets at 1, 2, 5 and 10 ms from per-bucket counts (the rest past 10 ms). */
const latency = (perBucket: readonly [number, number, number, number], beyond = 0) => {
  const bounds = [0.001, 0.002, 0.005, 0.01]
  let cumulative = 0
  const buckets = bounds.map((le, i) => [le, (cumulative += perBucket[i]!)] as const)
  return { count: cumulative + beyond, buckets }
}

describe("the dashboard's figures", () => {
  it("computes rates from two reports of a node, and none from one", () => {
    const first = DashboardSnapshot.next(DashboardSnapshot.initial, [report("a", 1000, { messagesIn: 10, messagesOut: 100 })], 1000, "a")
    expect(first.frame.nodes[0]).toMatchObject({ messagesInPerSecond: null, messagesOutPerSecond: null })
    expect(first.frame.totals.messagesInPerSecond).toBeNull()

    const second = DashboardSnapshot.next(first.state, [report("a", 3000, { messagesIn: 30, messagesOut: 500 })], 3500, "a")
    expect(second.frame.nodes[0]).toMatchObject({ messagesInPerSecond: 10, messagesOutPerSecond: 200 })

    // The same report again (the feed ticks faster than nodes report): the rate stays.
    const third = DashboardSnapshot.next(second.state, [report("a", 3000, { messagesIn: 30, messagesOut: 500 })], 4000, "a")
    expect(third.frame.nodes[0]).toMatchObject({ messagesInPerSecond: 10, messagesOutPerSecond: 200 })
  })

  it("gives no rate across a restart (a counter going down) or a long gap, nor for a node that does not report it", () => {
    expect(DashboardSnapshot.ratePerSecond(50, 10, 2000)).toBeNull()
    expect(DashboardSnapshot.ratePerSecond(undefined, 10, 2000)).toBeNull()
    expect(DashboardSnapshot.ratePerSecond(10, 30, 2000)).toBe(10)
    const first = DashboardSnapshot.next(DashboardSnapshot.initial, [report("a", 1000, { messagesIn: 10 })], 1000, "a")
    const later = DashboardSnapshot.next(first.state, [report("a", 1000 + DashboardSnapshot.maxIntervalMs + 1, { messagesIn: 20 })], 0, "a")
    expect(later.frame.nodes[0]!.messagesInPerSecond).toBeNull()
    const old = DashboardSnapshot.next(first.state, [report("a", 3000)], 3000, "a")
    expect(old.frame.nodes[0]).toMatchObject({ messagesInPerSecond: null, restarts: null, fanoutP99Ms: null })
  })

  it("takes the p99 over the interval between two reports, per node and for the cluster", () => {
    // Before: 100 values at <= 1 ms. Then 100 more: 98 at <= 1 ms, 2 between 5 and 10 ms.
    const before = latency([100, 0, 0, 0])
    const after = latency([198, 0, 0, 2])
    const delta = DashboardSnapshot.histogramDelta(before, after)!
    expect(delta.count).toBe(100)
    // Rank 99 of 100 falls in the 5-10 ms bucket (values 99 and 100): half way through it.
    expect(DashboardSnapshot.quantile(delta, 0.99)).toBeCloseTo(0.0075, 6)
    expect(DashboardSnapshot.quantile(delta, 0.5)).toBeCloseTo(0.001 * (50 / 98), 6)
    expect(DashboardSnapshot.quantile({ count: 0, buckets: delta.buckets }, 0.99)).toBeNull()
    // Past the last finite bucket: that bucket's bound.
    expect(DashboardSnapshot.quantile(latency([0, 0, 0, 0], 5), 0.99)).toBe(0.01)

    const first = DashboardSnapshot.next(
      DashboardSnapshot.initial,
      [report("a", 1000, { fanoutLatency: before }), report("b", 1000, { fanoutLatency: latency([0, 0, 0, 0]) })],
      1000,
      "a"
    )
    const second = DashboardSnapshot.next(
      first.state,
      [report("a", 3000, { fanoutLatency: after }), report("b", 3000, { fanoutLatency: latency([0, 100, 0, 0]) })],
      3000,
      "a"
    )
    const [a, b] = second.frame.nodes
    expect(a!.fanoutP99Ms).toBeCloseTo(7.5, 3)
    expect(b!.fanoutP99Ms).toBeCloseTo(1.99, 3)
    // The cluster: 200 values, 198 at <= 2 ms, 2 in 5-10 ms; rank 198 is the last in the 1-2 ms bucket.
    expect(second.frame.totals.fanoutP99Ms).toBeCloseTo(2, 3)
  })

  it("sums the nodes, merges actors by kind and lists the largest rooms of every node", () => {
    const { frame } = DashboardSnapshot.next(
      DashboardSnapshot.initial,
      [
        report("b", 1000, {
          connections: 3,
          ready: false,
          restarts: 2,
          actors: [{ kind: "conn", alive: 3, mailboxDepth: 1 }],
          rooms: { active: 2, top: [{ room: "general", members: 3, users: 2 }, { room: "quiet", members: 0, users: 0 }] }
        }),
        report("a", 1000, {
          connections: 2,
          restarts: 1,
          actors: [{ kind: "conn", alive: 2, mailboxDepth: 0 }, { kind: "room", alive: 1, mailboxDepth: 4 }],
          rooms: { active: 1, top: [{ room: "random", members: 5, users: 5 }] }
        })
      ],
      1000,
      "a"
    )
    expect(frame.nodes.map((node) => node.node)).toEqual(["a", "b"])
    expect(frame.totals).toMatchObject({ nodes: 2, ready: 1, connections: 5, restarts: 3 })
    expect(frame.totals.actors).toEqual([{ kind: "conn", alive: 5, mailboxDepth: 1 }, { kind: "room", alive: 1, mailboxDepth: 4 }])
    expect(frame.rooms).toEqual({
      active: 3,
      top: [
        { room: "random", members: 5, users: 5, node: "a" },
        { room: "general", members: 3, users: 2, node: "b" },
        { room: "quiet", members: 0, users: 0, node: "b" }
      ]
    })
  })

  it("forgets nodes that no longer report", () => {
    const first = DashboardSnapshot.next(DashboardSnapshot.initial, [report("a", 1000), report("b", 1000)], 1000, "a")
    const second = DashboardSnapshot.next(first.state, [report("a", 3000)], 3000, "a")
    expect(second.frame.nodes.map((node) => node.node)).toEqual(["a"])
    expect(second.state.reports.has("b")).toBe(false)
  })
})
