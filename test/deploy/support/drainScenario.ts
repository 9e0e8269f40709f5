/**
 * What both balancer tests check, with SDK clients that only ever see the balancer's TLS entry:
 * the edge (TLS, redirect, private /metrics), affinity, chat across nodes, and a drain: one node
 * gets SIGTERM, the balancer takes it out, and its clients come back through the balancer to the
 * other nodes with no acknowledged message lost.
 */
import { expect } from "vitest"
import { eventually, nextEvent, roomMessages } from "../../../packages/client/test/support/nodes.ts"
import type { RunningNode } from "../../support/bunNode.ts"
import { allArrived, expectNothingLost, publishing } from "../../support/publishing.ts"
import { waitUntil } from "../../support/wait.ts"
import type { Upstream } from "./balancerConfig.ts"
import type { RunningBalancer } from "./balancerProcess.ts"
import { httpsFetch, type TlsClient, tlsSdkClient } from "./tlsClient.ts"

/** A node of the test cluster with the name it logs and reports (`--node-id`). */
export interface NamedNode {
  readonly name: string
  readonly node: RunningNode
}

export const portOf = (node: RunningNode): number => Number(new URL(node.url()).port)

export const upstreamsOf = (nodes: ReadonlyArray<NamedNode>): ReadonlyArray<Upstream> =>
  nodes.map(({ name, node }) => ({ name, port: portOf(node) }))

const weft = { subscribe: ["room:*"], publish: ["room:*"] }
const unique = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 8)}`
const reconnect = { reconnect: { baseMs: 200, capMs: 1000 } }

/** The WebSocket URL through the balancer, with the affinity key the configs hash on. */
const socketUrl = (balancer: RunningBalancer, key: string): string =>
  `${balancer.entry.replace(/^https:/, "wss:")}/v1/ws?affinity=${encodeURIComponent(key)}`

const client = (balancer: RunningBalancer, user: string): TlsClient & { readonly user: string } => ({
  user,
  ...tlsSdkClient(socketUrl(balancer, user), { sub: user, weft }, balancer.ca, reconnect)
})

const nodeOf = (recorded: TlsClient): string | undefined => recorded.client.info?.node

/** TLS through the entry, plain HTTP redirected to it, /readyz passed on, /metrics only on the nodes. */
export const checkEdge = async (balancer: RunningBalancer, nodes: ReadonlyArray<NamedNode>): Promise<void> => {
  const get = httpsFetch(balancer.ca)
  const ready = await get(`${balancer.entry}/readyz`, { signal: AbortSignal.timeout(5000) })
  expect(ready.status).toBe(200)
  expect(await ready.json()).toMatchObject({ ready: true })
  expect((await get(`${balancer.entry}/metrics`, { signal: AbortSignal.timeout(5000) })).status).toBe(404)
  for (const { node } of nodes) {
    expect((await fetch(`${node.url()}/metrics`, { signal: AbortSignal.timeout(5000) })).status).toBe(200)
  }
  const plain = await fetch(`${balancer.plain}/v1/ws`, { redirect: "manual", signal: AbortSignal.timeout(5000) })
  expect(plain.status).toBe(308)
  expect(plain.headers.get("location")).toMatch(/^https:\/\/127\.0\.0\.1(:\d+)?\/v1\/ws$/)
}

/**
 * The scenario. `tookOut` waits (bounded) until the balancer has taken the draining node out of
 * its pool, and checks it did so because of the node's answers (not because it was gone).
 */
export const drainThroughBalancer = async (
  balancer: RunningBalancer,
  nodes: ReadonlyArray<NamedNode>,
  tookOut: (victim: NamedNode) => Promise<void>
): Promise<void> => {
  const subscribers = Array.from({ length: 12 }, (_, i) => client(balancer, unique(`sub${i}`)))
  const publisher = client(balancer, unique("pub"))
  await Promise.all([...subscribers, publisher].map((recorded) => recorded.client.connect()))
  const landed = subscribers.map(nodeOf)
  expect(landed.every((name) => nodes.some((node) => node.name === name))).toBe(true)
  // The keys spread the users over the nodes, so the room's messages cross nodes.
  expect(new Set(landed).size).toBeGreaterThan(1)

  // Affinity: a user's next connection (a new ticket) lands on the same node.
  for (const subscriber of subscribers.slice(0, 3)) {
    const again = client(balancer, subscriber.user)
    await again.client.connect()
    expect(nodeOf(again)).toBe(nodeOf(subscriber))
    await again.client.close()
  }

  const room = `room:${unique("lb")}`
  const rooms = subscribers.map(() => roomMessages())
  await Promise.all(subscribers.map((subscriber, i) => subscriber.client.subscribe(room, rooms[i]!.handler).ready))

  // The node most users landed on is drained.
  const victim = nodes
    .map((node) => ({ node, users: landed.filter((name) => name === node.name).length }))
    .sort((x, y) => y.users - x.users)[0]!.node
  const moving = subscribers.filter((subscriber) => nodeOf(subscriber) === victim.name)

  const feed = publishing((n) => publisher.client.publish(room, n, { timeoutMs: 15_000 }))
  try {
    await eventually("every subscriber receives", () => rooms.every(({ received }) => received.length >= 5))
    const restored = moving.map((subscriber) =>
      nextEvent(subscriber.client, "subscribed", (event) => event.channel === room && event.restored, 40_000))
    victim.node.kill("SIGTERM")
    await waitUntil("the drained node's /readyz says 503", async () =>
      (await fetch(`${victim.node.url()}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 503, 5000)

    // While it drains, a new connection whose key hashes to it is served by another node, at its
    // first attempt: the balancer retried the refused handshake elsewhere, the client saw nothing.
    const probe = client(balancer, moving[0]!.user)
    await probe.client.connect()
    expect(nodeOf(probe)).not.toBe(victim.name)
    expect(probe.tickets).toHaveLength(1)
    await tookOut(victim)

    for (const event of await Promise.all(restored)) expect(event).toMatchObject({ recovery: "ok" })
    for (const subscriber of moving) {
      expect(nodeOf(subscriber)).not.toBe(victim.name)
      expect(subscriber.disconnects.some((event) => event.code === 1001)).toBe(true)
    }
    expect(await victim.node.exited).toEqual({ code: 0, signal: null })
    const counts = rooms.map(({ received }) => received.length)
    await eventually("messages keep coming after the move", () =>
      rooms.every(({ received }, i) => received.length >= counts[i]! + 10), 20_000)
  } finally {
    await feed.stop()
  }
  expect(feed.failed).toEqual([])
  expect(feed.acked.length).toBeGreaterThan(20)
  await eventually("every acknowledged publish arrived", () => allArrived(rooms, feed.acked), 20_000)
  for (const { received } of rooms) expectNothingLost(received, feed.acked)
}
