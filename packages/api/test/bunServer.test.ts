/**
 * The WebSocket endpoint on Bun itself (Bun.serve, Bun's ServerWebSocket and
 * upgrade), in a child Bun process with stub handlers, called from here (Node)
 * and from another Bun process with `makeWeftClient`. Processes bind
 * 127.0.0.1 and are killed when the file ends.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { once } from "node:events"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { promisify } from "node:util"
import { afterAll, beforeAll } from "vitest"
import { WebSocket } from "ws"
import { makeWeftClient } from "../src/Client.ts"
import { bunMaxPayloadLength as maxPayloadLength, ordersKey } from "./fixtures.ts"

const repoRoot = join(import.meta.dirname, "..", "..", "..")
const bun = join(repoRoot, "node_modules", ".bin", "bun")

let child: ChildProcess | undefined
let url = ""

const readUrl = (process: ChildProcess): Promise<string> =>
  new Promise((resolve, reject) => {
    const stdout = process.stdout
    if (stdout === null) return reject(new Error("no stdout"))
    const timer = setTimeout(() => reject(new Error("the Bun server did not start within 20 s")), 20_000)
    const lines = createInterface({ input: stdout })
    lines.on("line", (line) => {
      const parsed: unknown = JSON.parse(line)
      if (typeof parsed === "object" && parsed !== null && "url" in parsed && typeof parsed.url === "string") {
        clearTimeout(timer)
        resolve(parsed.url)
      }
    })
    process.once("exit", () => reject(new Error("the Bun server exited before listening")))
  })

beforeAll(async () => {
  child = spawn(bun, [join(import.meta.dirname, "bun", "server.ts")], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] })
  url = await readUrl(child)
}, 30_000)

afterAll(async () => {
  if (child === undefined || child.exitCode !== null) return
  const exited = once(child, "exit")
  child.kill("SIGKILL")
  await exited
})

const notification = { kind: "order.completed", data: { orderId: 7 } }

const upgradeStatus = (headers: Record<string, string>): Promise<WebSocket | number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http:", "ws:")}/rpc`, { headers })
    ws.once("open", () => resolve(ws))
    ws.once("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0))
    ws.once("error", reject)
  })

describe("the service API on Bun.serve", () => {
  it.scopedLive("answers a Node client over both transports, errors typed", () =>
    Effect.gen(function*() {
      for (const transport of ["http", "websocket"] as const) {
        const weft = yield* Effect.orDie(makeWeftClient({ url, credential: ordersKey, transport }))
        const delivery = yield* weft.notify.toUser({ userId: "42", notification }).pipe(Effect.timeout("10 seconds"))
        expect(delivery.notificationId, transport).toBe("orders:42")
        const error = yield* Effect.flip(weft.notify.toUser({ userId: "missing", notification })).pipe(Effect.timeout("10 seconds"))
        expect(error, transport).toMatchObject({ _tag: "ApiError", reason: "not_found" })
        // A large call, under the socket's limit.
        const many = Array.from({ length: 1000 }, (_, i) => `user-${i}-${"x".repeat(20)}`)
        const answers = yield* weft.notify.toUsers({ userIds: many, notification }).pipe(Effect.timeout("10 seconds"))
        expect(answers.queued, transport).toBe(1000)
      }
    }))

  it("serves a client running on Bun, over both transports", async () => {
    const { stdout } = await promisify(execFile)(bun, [join(import.meta.dirname, "bun", "client.ts"), url], {
      cwd: repoRoot,
      timeout: 30_000
    })
    expect(JSON.parse(stdout)).toEqual({
      http: { notificationId: "orders:42", notFound: "not_found", anonymous: "ApiError:unauthorized" },
      websocket: { notificationId: "orders:42", notFound: "not_found", anonymous: "RpcClientError" }
    })
  }, 40_000)

  it("refuses an upgrade without a valid credential with 401", async () => {
    expect(await upgradeStatus({})).toBe(401)
    expect(await upgradeStatus({ "x-weft-key": `${ordersKey}x` })).toBe(401)
    const ws = await upgradeStatus({ authorization: `Bearer ${ordersKey}` })
    if (typeof ws === "number") return expect.fail(`upgrade refused with ${ws}`)
    ws.close()
  })

  it("closes a socket whose message is over its limit with 1009", async () => {
    const ws = await upgradeStatus({ "x-weft-key": ordersKey })
    if (typeof ws === "number") return expect.fail(`upgrade refused with ${ws}`)
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)))
    ws.send(new Uint8Array(maxPayloadLength + 1))
    expect(await closed).toBe(1009)
  })
})
