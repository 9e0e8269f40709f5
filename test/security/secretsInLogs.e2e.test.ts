/**
 * Secrets never reach the logs. A node at the most verbose level (`trace`) goes through
 * everything that handles a credential: tickets issued and refused (good, forged, unsigned and
 * expired JWTs), upgrades with good, reused and guessed tickets, `refresh` with good and forged
 * JWTs, service API calls with the right key, a wrong key and a user's JWT. Then every byte it
 * wrote to stdout and stderr is searched for the JWT secret, the service key, each JWT (and its
 * signature alone), each ticket. A node refusing a bad configuration must not echo it either.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningNode, startNode } from "../support/bunNode.ts"
import { stopNodes } from "../support/gatewayNodes.ts"
import { type Client, closeAll, connectWithTicket, isRefusal, request, requestTicket, tryConnect, wsUrl } from "../support/wsClient.ts"
import { hs, secondsFromNow, unsigned } from "./tokens.ts"

// Unique strings, so that a hit can only be a leak.
const jwtSecret = `log-probe-jwt-secret-${process.pid}-0123456789abcdef`
const serviceKey = `log-probe-service-key-${process.pid}-0123456789abcdef`
const wrongKey = `log-probe-wrong-key-${process.pid}-0123456789abcdefgh`

interface Captured {
  readonly node: RunningNode
  /** Everything the process wrote, as written (not only the lines that parse as JSON). */
  readonly output: Array<string>
}

/** Starts a node and keeps its raw output from the first byte. */
const capture = (args: ReadonlyArray<string>): Captured => {
  const node = startNode(["--host", "127.0.0.1", "--port", "0", ...args])
  const output: Array<string> = []
  node.process.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
  node.process.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
  return { node, output }
}

let probed: Captured
const clients: Array<Client> = []

beforeAll(async () => {
  probed = capture(["--node-id", "sec-logs", "--log-level", "trace", "--jwt-secret", jwtSecret, "--service-keys", `orders=${serviceKey}`])
  await probed.node.waitForLog((line) => line.message === "listening")
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([probed?.node])
})

const ticketFrom = async (response: Response): Promise<string> => {
  const body: unknown = await response.json()
  const ticket = typeof body === "object" && body !== null && "ticket" in body ? body.ticket : undefined
  if (typeof ticket !== "string") throw new Error(`no ticket in ${JSON.stringify(body)}`)
  return ticket
}

const callApi = (key: string | undefined) =>
  fetch(`${probed.node.url()}/v1/api/cluster.stats`, {
    method: "POST",
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(10_000)
  })

describe("logs at trace level", () => {
  it("hold no JWT secret, service key, JWT, JWT signature or ticket, after every credential path ran", async () => {
    const url = probed.node.url()
    const claims = { sub: "logged-user", weft: { subscribe: ["room:*"] } }
    const good = await hs(claims, { secret: jwtSecret })
    const refreshWith = await hs({ ...claims, exp: secondsFromNow(900) }, { secret: jwtSecret })
    const forged = await hs(claims, { secret: "a-forger-secret-that-is-long-enough-too!" })
    const none = unsigned(claims)
    const expired = await hs({ ...claims, exp: secondsFromNow(-60) }, { secret: jwtSecret })
    const tokens = [good, refreshWith, forged, none, expired]

    // Tickets: issued twice, refused for each bad JWT.
    const tickets = [await ticketFrom(await requestTicket(url, good)), await ticketFrom(await requestTicket(url, good))]
    for (const bad of [forged, none, expired]) expect((await requestTicket(url, bad)).status).toBe(401)

    // Upgrades: a good ticket, the same again, a guessed one.
    const { client } = await connectWithTicket(url, tickets[0]!, "json")
    clients.push(client)
    const guessed = "G".repeat(43)
    tickets.push(guessed)
    for (const ticket of [tickets[0]!, guessed]) {
      const opened = await tryConnect(wsUrl(url, ticket), { protocols: ["weft.v1.json"] })
      expect(isRefusal(opened) && opened.status).toBe(401)
    }
    const second = await connectWithTicket(url, tickets[1]!)
    clients.push(second.client)

    // Refresh: accepted, then refused.
    expect(await request(client, (id) => ({ type: "refresh", id, token: refreshWith }))).toMatchObject({ type: "ack" })
    expect(await request(client, (id) => ({ type: "refresh", id, token: forged }))).toMatchObject({ type: "error", code: 2005 })

    // The service API: the key, a wrong key, a user's JWT, nothing.
    expect((await callApi(serviceKey)).status).toBe(200)
    for (const key of [wrongKey, good, undefined]) expect((await callApi(key)).status).toBe(401)

    // The node logged these paths (so the search below searched something), then is stopped.
    await probed.node.waitForLog((line) => line.message === "service API call refused")
    client.close()
    second.client.close()
    probed.node.kill("SIGTERM")
    await probed.node.exited
    const output = probed.output.join("")
    expect(output.length).toBeGreaterThan(1000)

    const secrets: ReadonlyArray<readonly [string, string]> = [
      ["the JWT secret", jwtSecret],
      ["the service key", serviceKey],
      ["a wrong service key", wrongKey],
      ...tokens.map((token, i): readonly [string, string] => [`JWT #${i}`, token]),
      ...tokens.flatMap((token, i): ReadonlyArray<readonly [string, string]> => {
        const signature = token.split(".")[2] ?? ""
        return signature.length > 0 ? [[`the signature of JWT #${i}`, signature]] : []
      }),
      ...tickets.map((ticket, i): readonly [string, string] => [`ticket #${i}`, ticket])
    ]
    for (const [what, secret] of secrets) expect(output.includes(secret), `${what} is in the logs`).toBe(false)
  })
})

describe("a refused configuration", () => {
  it("says what is wrong without echoing the secret it refused", async () => {
    const shortSecret = `short-${process.pid}`
    const shortKey = `k${process.pid}`
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--jwt-secret", shortSecret], shortSecret],
      [["--service-keys", `orders=${shortKey}`], shortKey]
    ]
    for (const [args, secret] of cases) {
      const refused = capture(["--node-id", "sec-bad-config", ...args])
      const { code } = await refused.node.exited
      const output = refused.output.join("")
      // Refused at start-up (2: the flags' schema; 1: a layer's own check, such as ServiceAuth's).
      expect([1, 2], output).toContain(code)
      expect(output.length).toBeGreaterThan(0)
      expect(output.includes(secret), `${args[0]} echoed in ${output.slice(0, 500)}`).toBe(false)
    }
  })
})
