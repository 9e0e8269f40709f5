/**
 * Revocation through the service API, on real Bun nodes with real WebSocket clients:
 * `users.disconnect` drops a user's connections on both nodes of a cluster (or one device's, or
 * one connection), each with goodbye `revoked` and close 4004, leaving other users alone; with
 * `banForSeconds` the user is also banned (goodbye `banned`): their ticket requests and
 * upgrades are refused with 403 on every node until the ban ends or `users.unban` lifts it.
 * Bans live in Redis for a cluster and in memory on the embedded single node: both are run.
 */
import { ApiError, makeWeftClient, type WeftApiClient } from "@weft/api"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { type GatewayCluster, startGatewayCluster, startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { waitUntil } from "../support/wait.ts"
import {
  type Claims,
  type Client,
  closeAll,
  connectAs,
  connectWithTicket,
  type FrameOf,
  isRefusal,
  makeJwt,
  requestTicket,
  ticketFor,
  tryConnect,
  wsUrl
} from "../support/wsClient.ts"

const serviceKey = "moderation-e2e-key-0123456789abcdefghijkl"
const serviceArgs = ["--service-keys", `moderation=${serviceKey}`]

const clusters: Array<GatewayCluster> = []
const nodes: Array<RunningNode> = []
const clients: Array<Client> = []
afterAll(async () => {
  await closeAll(clients)
  await stopNodes(nodes)
  await Promise.all(clusters.map((cluster) => cluster.stop()))
})

const withApi = <A, E>(node: RunningNode, use: (weft: WeftApiClient) => Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(makeWeftClient({ url: node.url(), credential: serviceKey }), use)))

const disconnect = (node: RunningNode, payload: Parameters<WeftApiClient["users"]["disconnect"]>[0]) =>
  withApi(node, (weft) => weft.users.disconnect(payload))

const device = (sub: string, name: string): Claims => ({ sub, weft: { device: name } })

const connect = async (node: RunningNode, claims: Claims) => {
  const opened = await connectAs(node.url(), claims)
  clients.push(opened.client)
  return opened
}

const goodbyesOf = (client: Client) => client.frames.filter((frame): frame is FrameOf<"goodbye"> => frame.type === "goodbye")

/** The socket was closed by the server with 4004, after a goodbye with `reason` telling it not to come back. */
const expectRevoked = async (client: Client, reason: "revoked" | "banned") => {
  expect((await client.closed).code).toBe(4004)
  expect(goodbyesOf(client)).toEqual([{ type: "goodbye", reason, reconnect: false }])
}

let pings = 50_000
const expectAlive = (client: Client) => client.ping(pings++)

const connectionsOf = (node: RunningNode, userId: string) =>
  withApi(node, (weft) => weft.presence.user({ userId })).then((presence) => presence.connections)

/** `POST /v1/tickets` for `user`: the status, and the body and Retry-After of a refusal. */
const ticketAnswer = async (node: RunningNode, user: string) => {
  const response = await requestTicket(node.url(), await makeJwt({ sub: user }))
  const body: unknown = await response.json()
  return { status: response.status, body, retryAfter: response.headers.get("retry-after") }
}

const upgradeStatus = async (node: RunningNode, ticket: string) => {
  const opened = await tryConnect(wsUrl(node.url(), ticket), { protocols: ["weft.v1.msgpack"] })
  if (!isRefusal(opened)) {
    opened.terminate()
    return 101
  }
  return opened.status
}

describe("revocation across a cluster of two nodes (Redis)", () => {
  let nodeA: RunningNode
  let nodeB: RunningNode
  beforeAll(async () => {
    const cluster = await startGatewayCluster("revoke", 2, serviceArgs)
    clusters.push(cluster)
    ;[nodeA, nodeB] = [cluster.nodes[0]!, cluster.nodes[1]!]
  }, 90_000)

  it("a user disconnected through the service API is dropped on both nodes; other users stay", async () => {
    const { client: phone } = await connect(nodeA, device("victor", "phone"))
    const { client: laptop } = await connect(nodeB, device("victor", "laptop"))
    const { client: otherOnA } = await connect(nodeA, device("bystander", "phone"))
    const { client: otherOnB } = await connect(nodeB, device("bystander", "laptop"))
    expect(await connectionsOf(nodeA, "victor")).toBe(2)

    const answer = await disconnect(nodeA, { userId: "victor", reason: "logged out everywhere" })
    expect(answer).toEqual({ disconnected: 2 })
    await Promise.all([expectRevoked(phone, "revoked"), expectRevoked(laptop, "revoked")])
    await Promise.all([expectAlive(otherOnA), expectAlive(otherOnB)])
    await waitUntil("victor has no connection left", async () => (await connectionsOf(nodeB, "victor")) === 0)
    // Not a ban: the user may connect again (the app decides; the SDK does not by itself).
    const { client: back } = await connect(nodeB, device("victor", "phone"))
    await expectAlive(back)
  })

  it("one device, or one connection, is dropped alone", async () => {
    const { client: phone } = await connect(nodeA, device("wendy", "phone"))
    const { client: laptop } = await connect(nodeB, device("wendy", "laptop"))
    const { client: tablet, welcome } = await connect(nodeB, device("wendy", "tablet"))
    const { welcome: someoneElse } = await connect(nodeB, device("xavier", "tablet"))

    expect(await disconnect(nodeB, { userId: "wendy", device: "laptop" })).toEqual({ disconnected: 1 })
    await expectRevoked(laptop, "revoked")
    expect(await disconnect(nodeA, { userId: "wendy", conn: welcome.conn })).toEqual({ disconnected: 1 })
    await expectRevoked(tablet, "revoked")
    // A connection of another user is not this user's to drop.
    expect(await disconnect(nodeA, { userId: "wendy", conn: someoneElse.conn })).toEqual({ disconnected: 0 })
    expect(await disconnect(nodeA, { userId: "nobody-here" })).toEqual({ disconnected: 0 })
    await expectAlive(phone)
    expect(goodbyesOf(phone)).toEqual([])
  })

  it("a banned user is dropped, and cannot get a ticket or connect on any node until the ban ends", async () => {
    const { client: phone } = await connect(nodeA, device("bob", "phone"))
    // A ticket issued before the ban, to try after it.
    const early = await ticketFor(nodeB.url(), device("bob", "laptop"))
    const earlier = await ticketFor(nodeA.url(), device("bob", "tablet"))

    const started = Date.now()
    const answer = await disconnect(nodeB, { userId: "bob", banForSeconds: 3, reason: "spam" })
    expect(answer.disconnected).toBe(1)
    const until = answer.bannedUntil!
    expect(until).toBeGreaterThanOrEqual(started + 3000)
    await expectRevoked(phone, "banned")

    for (const node of [nodeA, nodeB]) {
      const refused = await ticketAnswer(node, "bob")
      expect(refused.status).toBe(403)
      expect(refused.body).toEqual({ error: "banned", until })
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1)
    }
    expect(await upgradeStatus(nodeB, early)).toBe(403)
    // Others are not concerned.
    expect((await ticketAnswer(nodeA, "carol")).status).toBe(200)

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now()) + 200))
    for (const node of [nodeA, nodeB]) expect((await ticketAnswer(node, "bob")).status).toBe(200)
    const { client: back } = await connect(nodeB, device("bob", "phone"))
    await expectAlive(back)
    // A ticket is single-use whatever happened to it: the one refused at the upgrade is spent...
    expect(await upgradeStatus(nodeB, early)).toBe(401)
    // ...but one never presented still works once the ban is over.
    const { client: late } = await connectWithTicket(nodeA.url(), earlier)
    clients.push(late)
    await expectAlive(late)
  })

  it("users.unban lifts a ban at once; a ban takes no device or conn", async () => {
    const banned = await disconnect(nodeA, { userId: "dan", banForSeconds: 3600 })
    expect(banned).toEqual({ disconnected: 0, bannedUntil: expect.any(Number) })
    expect((await ticketAnswer(nodeB, "dan")).status).toBe(403)
    expect(await withApi(nodeB, (weft) => weft.users.unban({ userId: "dan" }))).toEqual({ unbanned: true })
    expect((await ticketAnswer(nodeA, "dan")).status).toBe(200)
    expect(await withApi(nodeB, (weft) => weft.users.unban({ userId: "dan" }))).toEqual({ unbanned: false })

    const refused = await withApi(nodeA, (weft) => Effect.either(weft.users.disconnect({ userId: "dan", device: "phone", banForSeconds: 60 })))
    expect(Either.isLeft(refused) && refused.left instanceof ApiError && refused.left.reason).toBe("invalid")
    expect((await ticketAnswer(nodeA, "dan")).status).toBe(200)
  })
})

describe("revocation on the embedded single node (bans in memory)", () => {
  let node: RunningNode
  beforeAll(async () => {
    node = await startGatewayNode(["--node-id", "revoke-single", ...serviceArgs])
    nodes.push(node)
  })

  it("a ban drops the user, refuses tickets and upgrades, and ends with users.unban", async () => {
    const { client } = await connect(node, device("eve", "phone"))
    const ticket = await ticketFor(node.url(), device("eve", "laptop"))
    const answer = await disconnect(node, { userId: "eve", banForSeconds: 600 })
    expect(answer).toEqual({ disconnected: 1, bannedUntil: expect.any(Number) })
    await expectRevoked(client, "banned")
    expect(await ticketAnswer(node, "eve")).toEqual({ status: 403, body: { error: "banned", until: answer.bannedUntil }, retryAfter: expect.any(String) })
    expect(await upgradeStatus(node, ticket)).toBe(403)
    expect(await withApi(node, (weft) => weft.users.unban({ userId: "eve" }))).toEqual({ unbanned: true })
    const { client: back } = await connect(node, device("eve", "phone"))
    await expectAlive(back)
  })
})
