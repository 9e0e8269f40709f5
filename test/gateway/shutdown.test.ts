/**
 * Graceful shutdown: SIGTERM tells every connected client to reconnect elsewhere (`goodbye`),
 * closes its socket with 1001, and the process exits with 0.
 */
import { afterAll, describe, expect, it } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"
import { type Client, closeAll, connectAs, type Encoding } from "../support/wsClient.ts"

let node: RunningNode | undefined
const clients: Array<Client> = []

afterAll(async () => {
  await closeAll(clients)
  await stopNodes([node])
})

describe("SIGTERM", () => {
  it("sends every client a goodbye (reconnect, after) then closes with 1001, and exits 0", async () => {
    node = await startGatewayNode(["--node-id", "gw-shutdown"])
    const encodings: ReadonlyArray<Encoding> = ["msgpack", "json", "none", "msgpack"]
    for (const [i, encoding] of encodings.entries()) {
      const { client } = await connectAs(node.url(), { sub: `leaving-${i}`, weft: { subscribe: ["topic:*"] } }, encoding)
      clients.push(client)
      client.send({ type: "subscribe", id: 1, channel: "topic:shutdown" })
      expect(await client.answer(1)).toEqual({ type: "ack", id: 1 })
    }
    // What each client had received when its socket closed.
    const atClose = clients.map((client) => client.closed.then((closed) => ({ closed, frames: [...client.frames] })))

    node.kill("SIGTERM")
    const exit = await Promise.race([node.exited, new Promise<undefined>((resolve) => setTimeout(resolve, 20_000))])
    expect(exit).toEqual({ code: 0, signal: null })

    for (const { closed, frames } of await Promise.all(atClose)) {
      expect(closed.code).toBe(1001)
      // `shutdown` or `draining`: both mean "this node is going away, come back elsewhere" (close 1001).
      expect(frames).toEqual([{ type: "goodbye", reason: expect.stringMatching(/^(shutdown|draining)$/), reconnect: true, after: expect.any(Number) }])
      const goodbye = frames[0]
      expect(goodbye?.type === "goodbye" ? goodbye.after : -1).toBeGreaterThanOrEqual(0)
    }
    for (const client of clients) expect(client.undecodable).toEqual([])
  })
})
