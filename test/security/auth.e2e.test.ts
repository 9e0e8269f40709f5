/**
 * Nobody gets in with a bad credential, on real nodes. The verifier's own unit tests
 * (services/auth/test/jwt.test.ts) cover each JWT check; test/gateway/tickets.test.ts covers a
 * missing, malformed, forged or expired JWT and a reused, expired or unknown ticket at the node.
 * This file adds what only a configured node proves: `alg: none`, another algorithm, a tampered
 * payload, not-yet-valid, and wrong issuer or audience (with `--jwt-issuer` / `--jwt-audience`)
 * at both doors (`POST /v1/tickets` and `refresh` on an open connection); thousands of guessed
 * tickets; and a ticket from another cluster sharing the same Redis.
 */
import { FastCheck as fc } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { deleteClusterKeys, joinCluster, startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { uniqueCluster } from "../support/ports.ts"
import { type Client, closeAll, connectWithTicket, isRefusal, request, requestTicket, tryConnect, wsUrl } from "../support/wsClient.ts"
import { hs, rs256, secondsFromNow, tampered, type TokenClaims, unsigned } from "./tokens.ts"

const issuer = "https://idp.example"
const audience = "weft"

let strict: RunningNode
const clients: Array<Client> = []
const good: TokenClaims = { sub: "alice", iss: issuer, aud: audience, weft: { subscribe: ["room:*"] } }

beforeAll(async () => {
  strict = await startGatewayNode(["--node-id", "sec-auth", "--jwt-issuer", issuer, "--jwt-audience", audience])
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([strict])
})

/** The hostile tokens, each with the reason `POST /v1/tickets` must give. */
const hostile = async (): Promise<ReadonlyArray<{ readonly name: string; readonly token: string; readonly reason: string }>> => [
  { name: "alg none", token: unsigned(good), reason: "bad-signature" },
  { name: "alg none with a signature glued on", token: unsigned(good, "c2lnbmF0dXJl"), reason: "bad-signature" },
  { name: "HS512 with the node's own secret", token: await hs(good, { alg: "HS512" }), reason: "bad-signature" },
  { name: "HS384 with the node's own secret", token: await hs(good, { alg: "HS384" }), reason: "bad-signature" },
  { name: "RS256 with an unknown key", token: await rs256(good), reason: "bad-signature" },
  { name: "another secret", token: await hs(good, { secret: "another-secret-that-is-also-long-enough!" }), reason: "bad-signature" },
  { name: "payload swapped after signing", token: await tampered({ ...good, sub: "mallory" }, { ...good, weft: { subscribe: ["*"], publish: ["*"] } }), reason: "bad-signature" },
  { name: "expired", token: await hs({ ...good, exp: secondsFromNow(-120) }), reason: "expired" },
  { name: "not yet valid", token: await hs({ ...good, nbf: secondsFromNow(120) }), reason: "not-yet-valid" },
  { name: "wrong issuer", token: await hs({ ...good, iss: "https://evil.example" }), reason: "claims" },
  { name: "no issuer", token: await hs({ sub: "alice", aud: audience }), reason: "claims" },
  { name: "wrong audience", token: await hs({ ...good, aud: "billing" }), reason: "claims" },
  { name: "no audience", token: await hs({ sub: "alice", iss: issuer }), reason: "claims" }
]

const ticketOf = async (node: RunningNode, token: string): Promise<string> => {
  const response = await requestTicket(node.url(), token)
  expect(response.status).toBe(200)
  const body: unknown = await response.json()
  const ticket = typeof body === "object" && body !== null && "ticket" in body ? body.ticket : undefined
  if (typeof ticket !== "string") throw new Error(`no ticket in ${JSON.stringify(body)}`)
  return ticket
}

const refusedUpgrade = async (node: RunningNode, ticket: string): Promise<number> => {
  const opened = await tryConnect(wsUrl(node.url(), ticket), { protocols: ["weft.v1.msgpack"] })
  if (!isRefusal(opened)) {
    opened.terminate()
    throw new Error(`ticket ${ticket.slice(0, 8)}... opened a WebSocket`)
  }
  return opened.status
}

describe("JWTs at a node configured with an issuer and an audience", () => {
  it("POST /v1/tickets refuses each hostile token with 401 and its reason, and issues no ticket; the good one works", async () => {
    for (const { name, token, reason } of await hostile()) {
      const response = await requestTicket(strict.url(), token)
      expect(response.status, name).toBe(401)
      const body: unknown = await response.json()
      expect(body, name).toMatchObject({ error: "unauthorized", reason })
      expect(body, name).not.toHaveProperty("ticket")
    }
    const { client, welcome } = await connectWithTicket(strict.url(), await ticketOf(strict, await hs(good)))
    clients.push(client)
    expect(welcome.user).toBe("alice")
  })

  it("refresh on an open connection refuses each hostile token with 2005 and keeps the connection's own credentials", async () => {
    const { client } = await connectWithTicket(strict.url(), await ticketOf(strict, await hs(good)))
    clients.push(client)
    for (const { name, token } of await hostile()) {
      const answer = await request(client, (id) => ({ type: "refresh", id, token }))
      expect(answer, name).toMatchObject({ type: "error", code: 2005, name: "invalid_credentials" })
    }
    // Still alice, still with her own permissions only: the swapped payload's `*` did not stick.
    const info = await request(client, (id) => ({ type: "rpc", id, method: "conn.info" }))
    expect(info).toMatchObject({ type: "reply", result: { user: "alice" } })
    const forbidden = await request(client, (id) => ({ type: "publish", id, channel: "room:x", data: 1 }))
    expect(forbidden).toMatchObject({ type: "error", code: 2000 })
    const outside = await request(client, (id) => ({ type: "subscribe", id, channel: "secret:plans" }))
    expect(outside).toMatchObject({ type: "error", code: 2000 })
  })
})

describe("tickets", () => {
  it("none of 2,000 guessed tickets (random, and one character off a real one) opens a socket; the real one still does", async () => {
    const real = await ticketOf(strict, await hs({ ...good, sub: "guess-target" }))
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    const random = fc.string({ unit: fc.constantFrom(...alphabet), minLength: 43, maxLength: 43 })
    const nearMiss = fc.tuple(fc.nat({ max: 42 }), fc.constantFrom(...alphabet)).map(([at, char]) => `${real.slice(0, at)}${char}${real.slice(at + 1)}`)
    const guesses = fc.sample(fc.oneof(random, nearMiss), 2000).filter((guess) => guess !== real)
    // Bounded concurrency: a guesser would go as fast as it could; the node must refuse them all.
    const statuses: Array<number> = []
    for (let start = 0; start < guesses.length; start += 50) {
      statuses.push(...await Promise.all(guesses.slice(start, start + 50).map((guess) => refusedUpgrade(strict, guess))))
    }
    expect(new Set(statuses)).toEqual(new Set([401]))
    expect(statuses.length).toBe(guesses.length)
    // The guesses consumed nothing: the real ticket opens a socket, once.
    const { client } = await connectWithTicket(strict.url(), real)
    clients.push(client)
    expect(await refusedUpgrade(strict, real)).toBe(401)
  })

  it("a ticket issued by another cluster on the same Redis is refused (401), and stays good on its own cluster", async () => {
    const [clusterA, clusterB] = [uniqueCluster("sec-a"), uniqueCluster("sec-b")]
    const nodes: Array<RunningNode> = []
    try {
      const a = await joinCluster(clusterA, "sec-a-0")
      nodes.push(a)
      const b = await joinCluster(clusterB, "sec-b-0")
      nodes.push(b)
      const ticket = await ticketOf(a, await hs({ sub: "bea" }))
      expect(await refusedUpgrade(b, ticket)).toBe(401)
      const { client, welcome } = await connectWithTicket(a.url(), ticket)
      clients.push(client)
      expect(welcome.node).toBe("sec-a-0")
    } finally {
      await stopNodes(nodes)
      await Promise.all([deleteClusterKeys(clusterA), deleteClusterKeys(clusterB)])
    }
  })
})
