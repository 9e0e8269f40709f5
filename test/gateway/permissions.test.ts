/**
 * What a connection may do with channels: the JWT's `weft.subscribe` / `weft.publish` patterns
 * (`*`, `{user}`), the default grant, subscription bookkeeping errors, channel names and
 * `--max-subscriptions`. Every refusal is an `error` with the request's id, and the
 * connection stays usable.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import type { Claims } from "../support/jwt.ts"
import { type Client, closeAll, connectAs, type Encoding } from "../support/wsClient.ts"

let node: RunningNode
const clients: Array<Client> = []

beforeAll(async () => {
  node = await startGatewayNode(["--node-id", "gw-perm", "--max-subscriptions", "3"])
})

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([node])
})

const open = async (claims: Claims, encoding: Encoding = "msgpack"): Promise<Client> => {
  const { client } = await connectAs(node.url(), claims, encoding)
  clients.push(client)
  return client
}

let nextId = 1
// Unchecked: some tests send channel names the client-side schema would refuse to encode.
const subscribe = async (client: Client, channel: string) => {
  const id = nextId++
  client.sendUnchecked({ type: "subscribe", id, channel })
  return { id, answer: await client.answer(id) }
}
const unsubscribe = async (client: Client, channel: string) => {
  const id = nextId++
  client.send({ type: "unsubscribe", id, channel })
  return { id, answer: await client.answer(id) }
}
const publish = async (client: Client, channel: string, data: unknown) => {
  const id = nextId++
  client.sendUnchecked({ type: "publish", id, channel, data })
  return { id, answer: await client.answer(id) }
}

// An ack: channels with history (`user:`, `room:`) add where the channel stands.
const expectAck = ({ id, answer }: { readonly id: number; readonly answer: unknown }) =>
  expect(answer).toEqual({ type: "ack", id, ...(typeof answer === "object" && answer !== null && "position" in answer ? { position: expect.any(Object) } : {}) })
const expectError = ({ id, answer }: { readonly id: number; readonly answer: unknown }, code: number, name: string) =>
  expect(answer).toEqual({ type: "error", id, code, name, message: expect.any(String) })

const dave: Claims = { sub: "dave", weft: { subscribe: ["topic:*", "team:{user}/*"], publish: ["topic:*", "inbox:*"] } }
const erin: Claims = { sub: "erin", weft: { subscribe: ["inbox:{user}"], publish: ["inbox:{user}"] } }

describe("permission patterns", () => {
  it("subscribe: `*` matches any run, `{user}` is the connection's user, the whole name must match", async () => {
    const client = await open(dave)
    expectAck(await subscribe(client, "topic:general"))
    expectAck(await unsubscribe(client, "topic:general"))
    expectAck(await subscribe(client, "team:dave/news"))
    expectAck(await unsubscribe(client, "team:dave/news"))
    expectAck(await subscribe(client, "topic:a/b:c"))
    for (const channel of ["team:erin/news", "xtopic:general", "topic", "team:dave", "inbox:dave", "user:erin"]) {
      expectError(await subscribe(client, channel), 2000, "forbidden")
    }
    // `user:{user}` is always granted.
    expectAck(await subscribe(client, "user:dave"))
    await client.ping(nextId++)
  })

  it("publish: allowed channels are delivered, forbidden ones refused with 2000 and never delivered", async () => {
    const publisher = await open(dave, "json")
    const inbox = await open(erin)
    const listener = await open({ sub: "listener", weft: { subscribe: ["*"] } })
    expectAck(await subscribe(inbox, "inbox:erin"))
    for (const channel of ["team:dave/news", "lobby", "inbox:dave"]) expectAck(await subscribe(listener, channel))

    expectError(await publish(publisher, "team:dave/news", "x"), 2000, "forbidden")
    expectError(await publish(publisher, "lobby", "x"), 2000, "forbidden")
    expectAck(await publish(publisher, "inbox:erin", "for erin"))
    // Erin may publish to her own inbox only.
    expectError(await publish(inbox, "inbox:dave", "x"), 2000, "forbidden")
    expectAck(await publish(inbox, "inbox:erin", "note to self"))
    expectAck(await publish(publisher, "inbox:dave", "marker"))

    expect(await inbox.nextOf("message", (frame) => frame.from === "dave")).toMatchObject({ channel: "inbox:erin", data: "for erin" })
    expect(await inbox.nextOf("message", (frame) => frame.from === "erin")).toMatchObject({ data: "note to self" })
    // The marker was published last: by the time it arrives, a forbidden publish would have too.
    expect(await listener.nextOf("message")).toMatchObject({ channel: "inbox:dave", data: "marker", from: "dave" })
    expect(listener.frames.filter((frame) => frame.type === "message")).toEqual([])
    expect(inbox.frames.filter((frame) => frame.type === "message")).toEqual([])
  })

  it("the default grant (no weft claim) subscribes to user:<own id> only and publishes nowhere", async () => {
    const frank = await open({ sub: "frank" })
    const listener = await open({ sub: "listener", weft: { subscribe: ["*"] } })
    expectAck(await subscribe(listener, "topic:general"))
    expectAck(await subscribe(frank, "user:frank"))
    for (const channel of ["user:george", "user:frank2", "topic:general"]) {
      expectError(await subscribe(frank, channel), 2000, "forbidden")
    }
    for (const channel of ["user:frank", "topic:general"]) {
      expectError(await publish(frank, channel, "hi"), 2000, "forbidden")
    }
    await listener.ping(nextId++)
    expect(listener.frames.filter((frame) => frame.type === "message")).toEqual([])
  })

  it("`{user}` is the user id literally: regex characters in it match only themselves", async () => {
    const dotted = await open({ sub: "a.b", weft: { subscribe: ["feed:{user}"] } })
    expectAck(await subscribe(dotted, "feed:a.b"))
    expectError(await subscribe(dotted, "feed:aXb"), 2000, "forbidden")
    expectError(await subscribe(dotted, "user:aXb"), 2000, "forbidden")
    expectAck(await subscribe(dotted, "user:a.b"))
  })
})

describe("subscription bookkeeping", () => {
  it("already_subscribed 2002 and not_subscribed 2001 carry the request id", async () => {
    const client = await open(dave)
    expectAck(await subscribe(client, "topic:dup"))
    expectError(await subscribe(client, "topic:dup"), 2002, "already_subscribed")
    expectError(await unsubscribe(client, "topic:never"), 2001, "not_subscribed")
    expectAck(await unsubscribe(client, "topic:dup"))
    expectError(await unsubscribe(client, "topic:dup"), 2001, "not_subscribed")
    // Subscribing again after unsubscribing works.
    expectAck(await subscribe(client, "topic:dup"))
  })

  it("`broadcast` is every connection's already: subscribing gets 2002 and unsubscribing 2001, so no client can leave it", async () => {
    const client = await open({ sub: "frank", weft: { subscribe: ["*"], publish: [] } })
    expectError(await subscribe(client, "broadcast"), 2002, "already_subscribed")
    expectError(await unsubscribe(client, "broadcast"), 2001, "not_subscribed")
    expect(client.socket.readyState).toBe(client.socket.OPEN)
  })

  it("an invalid channel name is refused with its documented code, not as forbidden", async () => {
    const client = await open({ sub: "ivan", weft: { subscribe: ["*"], publish: ["*"] } })
    for (const channel of ["room general", "", "x".repeat(201), "room#1", "topic:é", "topic:*"]) {
      expectError(await subscribe(client, channel), 2003, "invalid_channel")
      expectError(await publish(client, channel, 1), 2003, "invalid_channel")
    }
    expectAck(await subscribe(client, "x".repeat(200)))
    await client.ping(nextId++)
  })

  it("--max-subscriptions 3: the 4th subscription gets 3001; after an unsubscribe there is room again", async () => {
    const client = await open({ sub: "max", weft: { subscribe: ["topic:*"] } })
    for (const channel of ["topic:1", "topic:2", "user:max"]) expectAck(await subscribe(client, channel))
    expectError(await subscribe(client, "topic:4"), 3001, "too_many_subscriptions")
    expectAck(await unsubscribe(client, "topic:2"))
    expectAck(await subscribe(client, "topic:4"))
    expectError(await subscribe(client, "topic:5"), 3001, "too_many_subscriptions")
    const id = nextId++
    client.send({ type: "rpc", id, method: "conn.info" })
    expect(await client.answer(id)).toMatchObject({ type: "reply", result: { subscriptions: ["topic:1", "user:max", "topic:4"] } })
  })
})
