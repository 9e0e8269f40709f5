import { afterEach, describe, expect, it } from "vitest"
import { type RunningNode, startListeningNode, startNode } from "../../../test/support/bunNode.ts"

const running: Array<RunningNode> = []
afterEach(() => {
  for (const node of running.splice(0)) node.kill()
})

describe("the Bun node process", () => {
  it("serves /healthz on the configured port and stops cleanly on SIGTERM", async () => {
    const node = await startListeningNode(["--node-id", "health-test"])
    running.push(node)
    const response = await fetch(`${node.url()}/healthz`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: "ok", node: "health-test" })
    const unknown = await fetch(`${node.url()}/no-such-route`)
    expect(unknown.status).toBe(404)

    node.kill("SIGTERM")
    const exit = await node.exited
    expect(exit.code).toBe(0)
    expect(node.logs.some((line) => line.message === "stopped")).toBe(true)
    await expect(fetch(`${node.url()}/healthz`)).rejects.toThrow()
  })

  it("stops cleanly on SIGINT", async () => {
    const node = await startListeningNode()
    running.push(node)
    node.kill("SIGINT")
    expect((await node.exited).code).toBe(0)
  })

  it("takes its configuration from the environment, flags winning", async () => {
    const node = await startListeningNode(["--node-id", "from-flag"], { WEFT_NODE_ID: "from-env", WEFT_LOG_LEVEL: "debug" })
    running.push(node)
    const body = await (await fetch(`${node.url()}/healthz`)).json()
    expect(body).toEqual({ status: "ok", node: "from-flag" })
  })

  it("refuses an invalid configuration with a clear message and exit code 2", async () => {
    const node = startNode(["--port", "not-a-port"])
    running.push(node)
    const exit = await node.exited
    expect(exit.code).toBe(2)
    expect(node.stderr.join("\n")).toMatch(/invalid configuration[\s\S]*port/)

    const unknownFlag = startNode(["--no-such-flag", "1"])
    running.push(unknownFlag)
    expect((await unknownFlag.exited).code).toBe(2)
    expect(unknownFlag.stderr.join("\n")).toContain("unknown flag --no-such-flag")
  })
})
