/**
 * The SDK's credentials against a real Bun node with short-lived JWTs (5 s) and a small margin
 * and grace (`--refresh-margin-ms 3000 --expiry-grace-ms 1000`): with `getToken` the connection
 * is refreshed in place (same connection, same ticket, subscriptions delivering past the old
 * deadline); without it the connection expires (`credentials-expired`, 4003) and the client
 * comes back with a fresh ticket and its subscriptions; a refresh with narrower claims ends a
 * subscription (`unsubscribed`); a ban through the service API stops the client for good.
 */
import { makeWeftClient } from "@weft/api"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, it } from "vitest"
import type { RunningNode } from "../../../test/support/bunNode.ts"
import type { Claims } from "../../../test/support/jwt.ts"
import type { ChannelMessage } from "../src/index.ts"
import { eventually, makeJwt, nextEvent, sdkClient, startSingleNode, stopAll } from "./support/nodes.ts"

const serviceKey = "moderation-sdk-e2e-key-0123456789abcdefgh"

let node: RunningNode
beforeAll(async () => {
  node = await startSingleNode(["--refresh-margin-ms", "3000", "--expiry-grace-ms", "1000", "--service-keys", `moderation=${serviceKey}`])
}, 30_000)
afterAll(stopAll)

const unique = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 8)}`

const claims = (sub: string, expiresIn: string, subscribe: ReadonlyArray<string> = ["feed:*"]): Claims => ({
  sub,
  expiresIn,
  weft: { device: "phone", subscribe, publish: ["feed:*"] }
})

/** A publisher that never expires. */
const publisher = async () => {
  const recorded = sdkClient(node.url(), claims(unique("pub"), "1h"))
  await recorded.client.connect()
  return recorded.client
}

// The tests wait for real expiries (seconds): they run side by side, each with users of its own.
describe.concurrent("the SDK's credentials against a real node", () => {
  it("with getToken: refreshed in place before expiry; the same connection keeps delivering past the old deadline", async ({ expect }) => {
    const user = unique("rita")
    const { client, disconnects, tickets } = sdkClient(node.url(), claims(user, "5s"), {
      getToken: () => makeJwt(claims(user, "1h"))
    })
    // Listening from the start: with a 5 s JWT and a 3 s margin, the server may ask at once.
    const requiredEvent = nextEvent(client, "refreshRequired")
    const refreshedEvent = nextEvent(client, "refresh")
    const info = await client.connect()
    expect(info.expiresAt).toEqual(expect.any(Number))
    const got: Array<ChannelMessage> = []
    await client.subscribe("feed:news", (message) => got.push(message)).ready
    const required = await requiredEvent
    expect(required).toEqual({ expiresAt: info.expiresAt, deadline: info.expiresAt! + 1000 })
    const refreshed = await refreshedEvent
    expect(refreshed).toEqual({ ok: true, expiresAt: expect.any(Number) })
    expect(client.info?.expiresAt).toBe(refreshed.ok ? refreshed.expiresAt : undefined)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, required.deadline - Date.now()) + 500))

    const pub = await publisher()
    await pub.publish("feed:news", "still here")
    await eventually("the message arrives", () => got.length === 1)
    expect(client.info?.conn).toBe(info.conn)
    expect(disconnects).toEqual([])
    expect(tickets).toHaveLength(1)
  })

  it("without getToken: the connection expires (credentials-expired, 4003) and comes back with a fresh ticket and its subscriptions", async ({ expect }) => {
    const user = unique("sam")
    const { client, tickets } = sdkClient(node.url(), claims(user, "5s"))
    const endedEvent = nextEvent(client, "disconnected", () => true, 20_000)
    const first = await client.connect()
    const got: Array<unknown> = []
    const sub = client.subscribe("feed:updates", (message) => got.push(message.data))
    await sub.ready
    const ended = await endedEvent
    expect(ended).toMatchObject({ code: 4003, goodbye: { reason: "credentials-expired", reconnect: true } })
    const back = await nextEvent(client, "connected", () => true, 15_000)
    expect(back.reconnected).toBe(true)
    expect(back.info.conn).not.toBe(first.conn)
    expect(tickets).toHaveLength(2)
    await nextEvent(client, "subscribed", (event) => event.channel === "feed:updates" && event.restored)
    const pub = await publisher()
    await pub.publish("feed:updates", "after the reconnect")
    await eventually("the message arrives", () => got.length === 1)
    expect(sub.active).toBe(true)
  })

  it("a refresh with narrower claims ends the subscriptions they no longer allow: `unsubscribed`, and the handler stops", async ({ expect }) => {
    const user = unique("nora")
    const { client } = sdkClient(node.url(), claims(user, "1h", ["feed:*"]))
    await client.connect()
    const got: Array<string> = []
    const kept = client.subscribe("feed:a", () => got.push("a"))
    const lost = client.subscribe("feed:b", () => got.push("b"))
    await Promise.all([kept.ready, lost.ready])
    const unsubscribed = nextEvent(client, "unsubscribed")
    await expect(client.refresh(await makeJwt(claims(user, "1h", ["feed:a"])))).resolves.toEqual({ expiresAt: expect.any(Number) })
    expect(await unsubscribed).toMatchObject({ channel: "feed:b", reason: "forbidden", error: { code: 2000, name: "forbidden" } })
    expect(lost.active).toBe(false)
    expect(lost.ended).toMatchObject({ name: "forbidden", channel: "feed:b" })
    const pub = await publisher()
    await pub.publish("feed:b", 1)
    await pub.publish("feed:a", 2)
    await eventually("feed:a delivers", () => got.includes("a"))
    expect(got).toEqual(["a"])
    // Another user's JWT is refused, and the connection is unchanged.
    await expect(client.refresh(await makeJwt(claims(unique("mallory"), "1h")))).rejects.toMatchObject({ code: 2006, name: "wrong_user" })
    await expect(client.rpc("conn.info")).resolves.toMatchObject({ user, subscriptions: ["feed:a"] })
  })

  it("banned through the service API: the client is told not to come back, and stops", async ({ expect }) => {
    const user = unique("bob")
    const { client, tickets } = sdkClient(node.url(), claims(user, "1h"), { getToken: () => makeJwt(claims(user, "1h")) })
    await client.connect()
    const goodbye = nextEvent(client, "goodbye")
    const stopped = nextEvent(client, "state", (event) => event.state === "disconnected")
    const answer = await Effect.runPromise(Effect.scoped(Effect.flatMap(
      makeWeftClient({ url: node.url(), credential: serviceKey }),
      (weft) => weft.users.disconnect({ userId: user, banForSeconds: 60 })
    )))
    expect(answer).toEqual({ disconnected: 1, bannedUntil: expect.any(Number) })
    expect(await goodbye).toEqual({ reason: "banned", reconnect: false })
    expect((await stopped).error?.message).toContain("banned")
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(client.state).toBe("disconnected")
    expect(tickets).toHaveLength(1)
  })
})
