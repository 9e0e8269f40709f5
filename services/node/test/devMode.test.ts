/**
 * Dev mode (`--dev`) against real Bun nodes: the dev routes exist only in dev
 * mode, a dev token opens a ticket and a connection with the permissions the
 * demo needs, the dev notification goes through the service API's delivery,
 * and the dashboard (page and feed) is served only in dev mode or with
 * `--dashboard`. The browser test (test/browser) drives the pages themselves.
 */
import { Either } from "effect"
import { decodeJwt, jwtVerify } from "jose"
import { afterAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { type ChannelMessage, createClient, ticketFromJwt, type WeftClient } from "../../../packages/client/src/index.ts"
import { type RunningNode, startListeningNode } from "../../../test/support/bunNode.ts"
import { jwtSecret } from "../../../test/support/jwt.ts"
import { waitUntil } from "../../../test/support/wait.ts"
import * as NodeConfig from "../src/NodeConfig.ts"

const nodes: Array<RunningNode> = []
const clients: Array<WeftClient> = []
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()))
  for (const node of nodes) node.kill()
})

const start = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const node = await startListeningNode(args, env)
  nodes.push(node)
  return node
}

const postJson = (url: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) =>
  fetch(url, { method: "POST", headers, body: JSON.stringify(body) })

const devToken = async (node: RunningNode, user: string): Promise<string> => {
  const response = await postJson(`${node.url()}/v1/dev/token`, { user, device: "test" })
  expect(response.status).toBe(200)
  const body = (await response.json()) as { token: string; expiresIn: number }
  expect(body.expiresIn).toBe(900)
  return body.token
}

const connect = async (node: RunningNode, user: string): Promise<WeftClient> => {
  const client = createClient({
    url: node.url(),
    getTicket: ticketFromJwt({ jwt: () => devToken(node, user) }),
    WebSocket: WebSocket as never,
    reconnect: false
  })
  clients.push(client)
  await client.connect()
  return client
}

/** Opens a WebSocket and resolves with its first text frame, or rejects with the refusal's status. */
const firstFrame = (url: string): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    const timer = setTimeout(() => reject(new Error(`no frame from ${url}`)), 10_000)
    socket.on("message", (data) => {
      clearTimeout(timer)
      socket.close()
      resolve(JSON.parse(String(data)))
    })
    socket.on("unexpected-response", (_, response) => {
      clearTimeout(timer)
      reject(new Error(`HTTP ${response.statusCode}`))
    })
    socket.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

const wsUrl = (node: RunningNode, path: string) => `${node.url().replace(/^http/, "ws")}${path}`

describe("the --dev and --dashboard switches", () => {
  it("are switches: the flag alone, or true/false from the flag or the environment", () => {
    const load = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => NodeConfig.load(argv, env, "n")
    const config = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => Either.getOrThrow(load(argv, env))
    expect(config([])).toMatchObject({ dev: false, dashboard: false })
    // The flag alone does not take the next argument as its value.
    expect(config(["--dev", "--port", "9000"])).toMatchObject({ dev: true, port: 9000 })
    expect(config([], { WEFT_DEV: "1", WEFT_DASHBOARD: "yes" })).toMatchObject({ dev: true, dashboard: true })
    expect(config(["--dev=false"], { WEFT_DEV: "true" })).toMatchObject({ dev: false })
    const bad = load([], { WEFT_DEV: "maybe" })
    expect(Either.isLeft(bad) && bad.left.message).toMatch(/invalid configuration[\s\S]*dev/)
  })
})

describe("a node without --dev", () => {
  it("has no dev routes and no dashboard; its demo page says sign-in is unavailable", async () => {
    const node = await start(["--jwt-secret", jwtSecret])
    expect((await postJson(`${node.url()}/v1/dev/token`, { user: "alice" })).status).toBe(404)
    expect((await postJson(`${node.url()}/v1/dev/notify`, { user: "alice", type: "t" })).status).toBe(404)
    expect((await fetch(`${node.url()}/dashboard`)).status).toBe(404)
    expect((await fetch(`${node.url()}/assets/dashboard.js`)).status).toBe(404)
    await expect(firstFrame(wsUrl(node, "/v1/dashboard/feed"))).rejects.toThrow("HTTP 404")

    const page = await fetch(`${node.url()}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toContain("text/html")
    expect(await page.text()).toContain(`data-dev="false"`)
    const script = await fetch(`${node.url()}/assets/demo.js`, { headers: { "accept-encoding": "identity" } })
    expect(script.status).toBe(200)
    expect(script.headers.get("content-type")).toContain("javascript")
    // (Checked as booleans: a failure would print the whole bundle.)
    expect((await script.text()).includes("Sign-in is unavailable")).toBe(true)
    expect(node.logs.some((line) => String(line.message).startsWith("DEV MODE"))).toBe(false)
  })

  it("serves the dashboard with --dashboard, still without dev routes", async () => {
    const node = await start(["--dashboard"])
    expect((await fetch(`${node.url()}/dashboard`)).status).toBe(200)
    expect((await postJson(`${node.url()}/v1/dev/token`, { user: "alice" })).status).toBe(404)
    const frame = (await firstFrame(wsUrl(node, "/v1/dashboard/feed"))) as { type: string; servedBy: string }
    expect(frame).toMatchObject({ type: "snapshot" })

    // At most 64 viewers per node: the next one is refused before the upgrade.
    const viewers = await Promise.all(Array.from({ length: 64 }, () =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(wsUrl(node, "/v1/dashboard/feed"))
        socket.once("open", () => resolve(socket))
        socket.once("error", reject)
      })))
    try {
      await expect(firstFrame(wsUrl(node, "/v1/dashboard/feed"))).rejects.toThrow("HTTP 503")
    } finally {
      for (const viewer of viewers) viewer.close()
    }
  })
})

describe("a node with --dev", () => {
  let node: RunningNode

  it("warns, prints its URLs, and gives dev tokens the ticket endpoint accepts", async () => {
    node = await start(["--dev", "--node-id", "dev-test"])
    const warning = node.logs.find((line) => String(line.message).startsWith("DEV MODE"))
    expect(warning?.logLevel).toBe("WARN")
    const urls = await node.waitForLog((line) => line.message === "urls")
    expect(urls.annotations).toMatchObject({
      demo: `${node.url()}/`,
      dashboard: `${node.url()}/dashboard`,
      websocket: `${node.url().replace("http", "ws")}/v1/ws`,
      metrics: `${node.url()}/metrics`
    })

    const token = await devToken(node, "alice")
    expect(decodeJwt(token)).toMatchObject({ sub: "alice", weft: { subscribe: ["room:*"], publish: ["room:*"], device: "test" } })
    // Signed with this run's own random secret, not with anything a test knows.
    await expect(jwtVerify(token, new TextEncoder().encode(jwtSecret))).rejects.toThrow()
    const ticket = await fetch(`${node.url()}/v1/tickets`, { method: "POST", headers: { authorization: `Bearer ${token}` } })
    expect(ticket.status).toBe(200)
    expect(await ticket.json()).toMatchObject({ ticket: expect.any(String), expiresIn: 30 })

    // Names that are not channel-safe, and bodies that are not JSON, are refused.
    expect((await postJson(`${node.url()}/v1/dev/token`, { user: "a b" })).status).toBe(400)
    expect((await postJson(`${node.url()}/v1/dev/token`, { user: "alice" }, { "content-type": "text/plain" })).status).toBe(415)
    expect((await fetch(`${node.url()}/`).then((page) => page.text()))).toContain(`data-dev="true"`)
  })

  it("connects with a dev token: rooms, presence and the user's channel allowed", async () => {
    const alice = await connect(node, "alice")
    expect(alice.info).toMatchObject({ user: "alice", device: "test" })
    const got: Array<ChannelMessage> = []
    await alice.subscribe("room:dev-lobby", (message) => got.push(message)).ready
    await alice.subscribe("presence:room:dev-lobby", () => undefined).ready
    await alice.rpc("room.send", { room: "dev-lobby", body: { text: "hi" } })
    await waitUntil("alice hears her message", async () => got.some((message) => (message.data as { kind?: string }).kind === "message"))
    await expect(alice.rpc("room.presence", { room: "dev-lobby" })).resolves.toEqual([{ user: "alice", devices: 1 }])
    // Only rooms: another kind of channel is not in a dev token.
    await expect(alice.subscribe("feed:x", () => undefined).ready).rejects.toMatchObject({ name: "forbidden" })
  })

  it("sends a notification through the service API's delivery: live to an online user, stored for an offline one", async () => {
    const offline = await postJson(`${node.url()}/v1/dev/notify`, { user: "nobody-online", type: "demo.hello", data: { text: "later" } })
    expect(offline.status).toBe(200)
    expect(await offline.json()).toMatchObject({ status: "stored", devices: 0, duplicate: false })

    const bob = await connect(node, "bob")
    const heard: Array<unknown> = []
    await bob.subscribe("user:bob", (message) => heard.push(message.data)).ready
    const sent = await postJson(`${node.url()}/v1/dev/notify`, { user: "bob", type: "demo.hello", data: { text: "now" } })
    expect(await sent.json()).toMatchObject({ status: "delivered", devices: 1 })
    await waitUntil("bob hears the notification", async () => heard.length > 0)
    expect(heard[0]).toMatchObject({ kind: "notification", type: "demo.hello", data: { text: "now" }, sender: "dev-demo" })
    await expect(bob.rpc("notifications.list", {})).resolves.toMatchObject({ unread: 1 })

    expect((await postJson(`${node.url()}/v1/dev/notify`, { user: "bob" })).status).toBe(400)
  })

  it("serves the dashboard feed: the node, its connections and rooms", async () => {
    await waitUntil("the feed shows the two connections and the room", async () => {
      const frame = (await firstFrame(wsUrl(node, "/v1/dashboard/feed"))) as {
        nodes: Array<{ node: string; connections: number; roles: Array<string> }>
        rooms: { top: Array<{ room: string; members: number }> }
      }
      return frame.nodes[0]?.node === "dev-test" && frame.nodes[0].connections === 2 &&
        frame.rooms.top.some((room) => room.room === "dev-lobby" && room.members === 1)
    })
  })

  it("shows messages/s in and out and the p99 fan-out latency from the nodes' metrics while messages flow", async () => {
    const alice = clients[0]!
    const frames: Array<{ totals: { messagesInPerSecond: number | null; messagesOutPerSecond: number | null; fanoutP99Ms: number | null } }> = []
    const feed = new WebSocket(wsUrl(node, "/v1/dashboard/feed"))
    feed.on("message", (data) => frames.push(JSON.parse(String(data))))
    const traffic = setInterval(() => void alice.rpc("room.send", { room: "dev-lobby", body: { text: "tick" } }).catch(() => undefined), 100)
    try {
      await waitUntil("the feed shows traffic", async () =>
        frames.some(({ totals }) =>
          (totals.messagesInPerSecond ?? 0) > 0 && (totals.messagesOutPerSecond ?? 0) > 0 && totals.fanoutP99Ms !== null
        ))
    } finally {
      clearInterval(traffic)
      feed.close()
    }
  })

  it("signs with the configured secret when one is given", async () => {
    const configured = await start(["--dev", "--jwt-secret", jwtSecret, "--jwt-issuer", "weft-test"])
    const token = await devToken(configured, "carol")
    const verified = await jwtVerify(token, new TextEncoder().encode(jwtSecret), { issuer: "weft-test" })
    expect(verified.payload.sub).toBe("carol")
    const warning = configured.logs.find((line) => String(line.message).startsWith("DEV MODE"))
    expect(warning?.annotations?.["jwt"]).toBe("the configured key")
  })
})
