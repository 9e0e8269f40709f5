/**
 * Getting in: `POST /v1/tickets` with a JWT, then the WebSocket upgrade with the ticket, against
 * real Bun nodes. Every refusal happens before the upgrade, as a plain HTTP status and no socket.
 */
import { randomBytes } from "node:crypto"
import WebSocket from "ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { makeJwt } from "../support/jwt.ts"
import { waitUntil } from "../support/wait.ts"
import {
  type Client,
  closeAll,
  connectWithTicket,
  isRefusal,
  requestTicket,
  ticketFor,
  tryConnect,
  wrap,
  wsUrl
} from "../support/wsClient.ts"

let main: RunningNode
let strict: RunningNode
const clients: Array<Client> = []
const allowedOrigin = "https://app.example"

beforeAll(async () => {
  ;[main, strict] = await Promise.all([
    startGatewayNode(["--node-id", "gw-tickets", "--max-connections-per-user", "2"]),
    startGatewayNode(["--node-id", "gw-strict", "--allowed-origins", allowedOrigin, "--ticket-ttl-s", "1"])
  ])
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([main, strict])
})

const track = <A extends { readonly client: Client }>(opened: A): A => {
  clients.push(opened.client)
  return opened
}

/** Connects and expects a refusal: the HTTP status, and no WebSocket. */
const refusalOf = async (url: string, options: Parameters<typeof tryConnect>[1] = {}): Promise<number> => {
  const opened = await tryConnect(url, options)
  if (!isRefusal(opened)) {
    opened.terminate()
    throw new Error(`expected a refusal, but ${url} opened a WebSocket`)
  }
  return opened.status
}

const bodyOf = async (response: Response): Promise<Record<string, unknown>> => {
  const body: unknown = await response.json()
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error(`not a JSON object: ${JSON.stringify(body)}`)
  return Object.fromEntries(Object.entries(body))
}

describe("POST /v1/tickets", () => {
  it("issues a single-use ticket for a valid JWT, and the ticket opens a WebSocket with a welcome", async () => {
    const response = await requestTicket(main.url(), await makeJwt({ sub: "alice", weft: { device: "phone" } }))
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toMatch(/^application\/json/)
    expect(response.headers.get("cache-control")).toBe("no-store")
    const body = await bodyOf(response)
    expect(body).toEqual({ ticket: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), expiresIn: 30 })
    const ticket = String(body["ticket"])

    const { welcome } = track(await connectWithTicket(main.url(), ticket))
    expect(welcome).toEqual({
      type: "welcome",
      protocol: "weft.v1",
      conn: expect.stringMatching(/^conn\/gw-tickets\/\S+$/),
      user: "alice",
      device: "phone",
      node: "gw-tickets",
      heartbeat: 25_000,
      limits: { maxFrameBytes: 65_536, maxSubscriptions: 100, ratePerSecond: 100 },
      // The JWT's exp (10 minutes), in ms: when the connection's credentials expire.
      expiresAt: expect.any(Number)
    })

    // Single use: the same ticket again is refused before the upgrade.
    expect(await refusalOf(wsUrl(main.url(), ticket), { protocols: ["weft.v1.msgpack"] })).toBe(401)
  })

  it("gives every connection its own address, and no device when the JWT has none", async () => {
    const first = track(await connectWithTicket(main.url(), await ticketFor(main.url(), { sub: "bea" })))
    const second = track(await connectWithTicket(main.url(), await ticketFor(main.url(), { sub: "bea" })))
    expect(first.welcome.user).toBe("bea")
    expect("device" in first.welcome).toBe(false)
    expect(first.welcome.conn).not.toBe(second.welcome.conn)
  })

  it("refuses a request without a JWT, with a malformed, forged or expired one: 401", async () => {
    const missing = await requestTicket(main.url(), undefined)
    expect(missing.status).toBe(401)
    expect(missing.headers.get("www-authenticate")).toBe("Bearer")
    expect(await bodyOf(missing)).toMatchObject({ error: "unauthorized", reason: "missing" })

    const cases = [
      { jwt: "not-a-jwt", reason: "malformed" },
      { jwt: await makeJwt({ sub: "alice" }, "some-other-secret-that-is-long-enough!!"), reason: "bad-signature" },
      { jwt: await makeJwt({ sub: "alice", expiresIn: "-1h" }), reason: "expired" }
    ]
    for (const { jwt, reason } of cases) {
      const response = await requestTicket(main.url(), jwt)
      expect(response.status, reason).toBe(401)
      expect(response.headers.get("www-authenticate"), reason).toBe("Bearer error=\"invalid_token\"")
      const body = await bodyOf(response)
      expect(body, reason).toMatchObject({ error: "unauthorized", reason })
      expect(body, reason).not.toHaveProperty("ticket")
    }
  })
})

describe("the upgrade", () => {
  it("refuses a missing, empty, malformed or unknown ticket with 401 and no WebSocket", async () => {
    const base = main.url().replace(/^http/, "ws")
    const unknown = randomBytes(32).toString("base64url")
    expect(unknown).toMatch(/^[A-Za-z0-9_-]{43}$/)
    for (const url of [
      wsUrl(main.url(), undefined),
      `${base}/v1/ws?ticket=`,
      wsUrl(main.url(), "not-a-ticket"),
      wsUrl(main.url(), `${unknown}x`),
      wsUrl(main.url(), unknown)
    ]) {
      expect(await refusalOf(url, { protocols: ["weft.v1.msgpack"] }), url).toBe(401)
    }
  })

  it("refuses a ticket used past its lifetime (--ticket-ttl-s 1) with 401", async () => {
    const response = await requestTicket(strict.url(), await makeJwt({ sub: "late" }))
    expect(response.status).toBe(200)
    const body = await bodyOf(response)
    expect(body["expiresIn"]).toBe(1)
    const stale = String(body["ticket"])
    // A fresh ticket from the same node works: the refusal below is the expiry, nothing else.
    track(await connectWithTicket(strict.url(), await ticketFor(strict.url(), { sub: "late" }), "msgpack", { origin: allowedOrigin }))
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(await refusalOf(wsUrl(strict.url(), stale), { origin: allowedOrigin })).toBe(401)
  })

  it("enforces the Origin allow-list: 403 for another Origin or none, the allowed one connects", async () => {
    const ticket = await ticketFor(strict.url(), { sub: "olga" })
    expect(await refusalOf(wsUrl(strict.url(), ticket), { origin: "https://evil.example" })).toBe(403)
    expect(await refusalOf(wsUrl(strict.url(), ticket))).toBe(403)
    // The Origin check comes before the ticket's: the refused attempts did not spend it.
    const { welcome } = track(await connectWithTicket(strict.url(), ticket, "json", { origin: allowedOrigin }))
    expect(welcome.user).toBe("olga")
  })

  it("refuses subprotocols that are not Weft's with 400, and picks the first Weft one offered", async () => {
    const ticket = await ticketFor(main.url(), { sub: "sam" })
    expect(await refusalOf(wsUrl(main.url(), ticket), { protocols: ["graphql-ws"] })).toBe(400)
    expect(await refusalOf(wsUrl(main.url(), ticket), { protocols: ["weft.v2.msgpack", "weft.v1.MSGPACK"] })).toBe(400)

    const opened = await tryConnect(wsUrl(main.url(), ticket), { protocols: ["graphql-ws", "weft.v1.json", "weft.v1.msgpack"] })
    if (isRefusal(opened)) throw new Error(`refused: ${opened.status} ${opened.body}`)
    const client = wrap(opened, "json")
    clients.push(client)
    expect(opened.protocol).toBe("weft.v1.json")
    expect((await client.nextOf("welcome")).user).toBe("sam")
    expect(client.kinds).toEqual(["text"])
  })

  it("refuses a user's connection past --max-connections-per-user with 429, and accepts one again after a close", async () => {
    const connect = async () => tryConnect(wsUrl(main.url(), await ticketFor(main.url(), { sub: "carol" })), { protocols: ["weft.v1.msgpack"] })
    const first = track(await connectWithTicket(main.url(), await ticketFor(main.url(), { sub: "carol" })))
    track(await connectWithTicket(main.url(), await ticketFor(main.url(), { sub: "carol" })))

    const refusedTicket = await ticketFor(main.url(), { sub: "carol" })
    expect(await refusalOf(wsUrl(main.url(), refusedTicket), { protocols: ["weft.v1.msgpack"] })).toBe(429)
    // Another user is not affected.
    track(await connectWithTicket(main.url(), await ticketFor(main.url(), { sub: "dan" })))

    first.client.close()
    await first.client.closed
    // The close is registered asynchronously (the user entity detaches the connection).
    let replacement: WebSocket | undefined
    await waitUntil("carol may connect again", async () => {
      const opened = await connect()
      if (isRefusal(opened)) {
        if (opened.status !== 429) throw new Error(`unexpected refusal ${opened.status} ${opened.body}`)
        return false
      }
      replacement = opened
      return true
    }, 10_000)
    if (replacement === undefined) throw new Error("unreachable")
    const client = wrap(replacement, "msgpack")
    clients.push(client)
    expect((await client.nextOf("welcome")).user).toBe("carol")

    // Back at the limit.
    const again = await connect()
    expect(isRefusal(again) ? again.status : "opened").toBe(429)
    // A ticket refused with 429 was spent all the same.
    expect(await refusalOf(wsUrl(main.url(), refusedTicket), { protocols: ["weft.v1.msgpack"] })).toBe(401)
  })
})
