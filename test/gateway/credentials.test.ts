/**
 * Credentials on long-lived connections, on a real Bun node with short-lived JWTs (5 s) and a
 * small margin and grace (`--refresh-margin-ms 3000 --expiry-grace-ms 1000`): the welcome says
 * when the credentials expire, the server asks for a refresh before they do, a `refresh` with a
 * new JWT keeps the connection and its subscriptions, no refresh ends it with goodbye
 * `credentials-expired` and 4003, a refresh for another user (or device, or with a bad JWT) is
 * refused, and a refresh with narrower claims ends the subscriptions they no longer allow.
 */
import type { ServerFrame } from "@weft/protocol"
import { afterAll, beforeAll, describe, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { type Claims, makeJwt } from "../support/jwt.ts"
import { waitUntil } from "../support/wait.ts"
import { type Client, closeAll, connectAs, type FrameOf, request, rpc } from "../support/wsClient.ts"

const marginMs = 3000
const graceMs = 1000

let node: RunningNode
const clients: Array<Client> = []

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "gw-cred", "--refresh-margin-ms", String(marginMs), "--expiry-grace-ms", String(graceMs)])
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([node])
})

const open = async (claims: Claims) => {
  const opened = await connectAs(node.url(), claims)
  clients.push(opened.client)
  return opened
}

const topics = (sub: string, device: string, expiresIn: string): Claims => ({
  sub,
  expiresIn,
  weft: { device, subscribe: ["topic:*", "room:*"], publish: ["topic:*", "room:*"] }
})

const subscribe = async (client: Client, channel: string) => {
  const answer = await request(client, (id) => ({ type: "subscribe", id, channel }))
  if (answer.type !== "ack") throw new Error(`subscribe ${channel}: ${JSON.stringify(answer)}`)
}

const refresh = (client: Client, token: string) => request(client, (id) => ({ type: "refresh", id, token }))

const subscriptionsOf = async (client: Client): Promise<unknown> => {
  const answer = await rpc(client, "conn.info", undefined)
  if (answer.type !== "reply" || typeof answer.result !== "object" || answer.result === null) throw new Error(JSON.stringify(answer))
  return "subscriptions" in answer.result ? answer.result.subscriptions : undefined
}

/** Waits until the clock is past `at` (ms since the epoch), plus a little. */
const until = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now()) + 300))

const messagesOn = (client: Client, channel: string): Array<unknown> =>
  client.frames.flatMap((frame) => (frame.type === "message" && frame.channel === channel ? [frame.data] : []))

// Each test waits for real expiries (seconds): they run side by side, on connections of their own.
describe.concurrent("expiry and refresh", () => {
  it("refresh before expiry keeps the connection and its subscriptions past the old deadline", async ({ expect }) => {
    const { client, welcome } = await open(topics("rita", "phone", "5s"))
    expect(welcome.expiresAt).toEqual(expect.any(Number))
    const expiresAt = welcome.expiresAt!
    await subscribe(client, "topic:news")

    const asked = await client.nextOf("refresh-required", undefined, 10_000)
    expect(asked).toEqual({ type: "refresh-required", expiresAt, deadline: expiresAt + graceMs })
    // It came `marginMs` before exp (a second's slack for the sweep of jose's whole-second exp).
    expect(Date.now()).toBeLessThan(expiresAt)

    const renewed = await makeJwt(topics("rita", "phone", "1h"))
    const answer = await refresh(client, renewed)
    expect(answer).toEqual({ type: "ack", id: answer.id, expiresAt: expect.any(Number) })
    expect(answer.type === "ack" && answer.expiresAt! > expiresAt + 3_000_000).toBe(true)

    await until(asked.deadline)
    await client.ping(9001)
    expect(client.frames.filter((frame) => frame.type === "goodbye")).toEqual([])
    expect(await subscriptionsOf(client)).toEqual(["topic:news"])
    // The subscription still delivers.
    const { client: publisher } = await open(topics("pat", "laptop", "1h"))
    const published = await request(publisher, (id) => ({ type: "publish", id, channel: "topic:news", data: { n: 1 } }))
    expect(published.type).toBe("ack")
    await client.nextOf("message", (frame) => frame.channel === "topic:news")
  })

  it("no refresh: goodbye credentials-expired and close 4003 at exp plus the grace period, not before", async ({ expect }) => {
    const { client, welcome } = await open(topics("sam", "phone", "5s"))
    const asked = await client.nextOf("refresh-required", undefined, 10_000)
    expect(asked.expiresAt).toBe(welcome.expiresAt)
    const closed = await client.closed
    expect(Date.now()).toBeGreaterThanOrEqual(asked.deadline)
    expect(closed.code).toBe(4003)
    const goodbyes = client.frames.filter((frame): frame is FrameOf<"goodbye"> => frame.type === "goodbye")
    expect(goodbyes).toEqual([{ type: "goodbye", reason: "credentials-expired", reconnect: true }])
  })

  it("a refresh with another user's JWT is refused (2006 wrong_user): the connection keeps its identity, and expires", async ({ expect }) => {
    const { client } = await open(topics("rita", "tablet", "5s"))
    await client.nextOf("refresh-required", undefined, 10_000)
    const refused: Array<ServerFrame> = []
    const cases: ReadonlyArray<readonly [string, number, string]> = [
      [await makeJwt(topics("mallory", "tablet", "1h")), 2006, "wrong_user"],
      // The same user on another device is another connection's identity.
      [await makeJwt(topics("rita", "phone", "1h")), 2006, "wrong_user"],
      [await makeJwt(topics("rita", "tablet", "-1h")), 2005, "invalid_credentials"],
      [await makeJwt(topics("rita", "tablet", "1h"), "another-secret-that-is-long-enough-too!!"), 2005, "invalid_credentials"],
      ["not-a-jwt", 2005, "invalid_credentials"]
    ]
    for (const [token, code, name] of cases) {
      const answer = await refresh(client, token)
      refused.push(answer)
      expect(answer).toEqual({ type: "error", id: answer.id, code, name, message: expect.any(String) })
    }
    const info = await rpc(client, "conn.info", undefined)
    expect(info).toMatchObject({ type: "reply", result: { user: "rita", device: "tablet" } })
    expect((await client.closed).code).toBe(4003)
  })
})

describe.concurrent("narrowed claims", () => {
  it("a refresh whose claims no longer allow a channel ends that subscription with `unsubscribed`, before the ack", async ({ expect }) => {
    const { client } = await open(topics("nora", "phone", "1h"))
    const { client: watcher } = await open(topics("walt", "laptop", "1h"))
    for (const channel of ["topic:a", "topic:b", "room:lobby", "presence:room:lobby", "user:nora"]) await subscribe(client, channel)
    await waitUntil("nora is in the lobby", async () => {
      const answer = await rpc(watcher, "room.presence", { room: "lobby" })
      return answer.type === "reply" && JSON.stringify(answer.result).includes("nora")
    })

    const narrower = await makeJwt({ sub: "nora", expiresIn: "1h", weft: { device: "phone", subscribe: ["topic:a"] } })
    client.send({ type: "refresh", id: 777, token: narrower })
    expect(await client.answer(777)).toEqual({ type: "ack", id: 777, expiresAt: expect.any(Number) })
    // Frames arrive in order: what is already here when the ack is came before it.
    const unsubscribed = client.frames.filter((frame): frame is FrameOf<"unsubscribed"> => frame.type === "unsubscribed")
    expect(unsubscribed).toEqual([
      { type: "unsubscribed", channel: "topic:b", reason: "forbidden" },
      { type: "unsubscribed", channel: "room:lobby", reason: "forbidden" },
      { type: "unsubscribed", channel: "presence:room:lobby", reason: "forbidden" }
    ])
    // What the new claims allow is kept (the user's own channel always is).
    expect(await subscriptionsOf(client)).toEqual(["topic:a", "user:nora"])
    // Left the room: the room no longer counts the connection.
    await waitUntil("nora left the lobby", async () => {
      const presence = await rpc(watcher, "room.presence", { room: "lobby" })
      return presence.type === "reply" && !JSON.stringify(presence.result).includes("nora")
    })
    // Nothing more arrives on the channels that ended; topic:a still delivers.
    for (const channel of ["topic:b", "topic:a"]) {
      const published = await request(watcher, (id) => ({ type: "publish", id, channel, data: channel }))
      expect(published.type).toBe("ack")
    }
    await client.nextOf("message", (frame) => frame.channel === "topic:a")
    expect(messagesOn(client, "topic:b")).toEqual([])
    // And the new claims are the ones checked now.
    const again = await request(client, (id) => ({ type: "subscribe", id, channel: "topic:b" }))
    expect(again).toMatchObject({ type: "error", code: 2000, name: "forbidden" })
    const publish = await request(client, (id) => ({ type: "publish", id, channel: "topic:a", data: 1 }))
    expect(publish).toMatchObject({ type: "error", code: 2000, name: "forbidden" })
  })

  it("a refresh to a JWT without exp: the ack has no expiresAt and the connection no longer expires", async ({ expect }) => {
    const { client, welcome } = await open(topics("otto", "phone", "5s"))
    expect(welcome.expiresAt).toEqual(expect.any(Number))
    const noExp = await makeJwt({ sub: "otto", expiresIn: null, weft: { device: "phone", subscribe: ["topic:*"] } })
    const answer = await refresh(client, noExp)
    expect(answer).toEqual({ type: "ack", id: answer.id })
    await until(welcome.expiresAt! + graceMs)
    await client.ping(9002)
    expect(client.frames.filter((frame) => frame.type === "goodbye")).toEqual([])
  })
})
