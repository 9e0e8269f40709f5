/**
 * Clients that are not ours, following docs/api.md and nothing else: Python (Debian's
 * python3-grpcio and python3-grpc-tools) compiles the shipped `.proto` files with the command the
 * doc gives and runs the doc's Python example against the gRPC door; `curl` runs every example
 * of the doc's calls against the HTTP JSON door. A real Bun node, one process.
 */
import { callSchemas, Errors } from "@weft/api"
import { Either, Schema } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { repoRoot, type RunningNode } from "../support/bunNode.ts"
import { startGatewayNode, stopNodes } from "../support/gatewayNodes.ts"

const run = promisify(execFile)
const python = "/usr/bin/python3"
const key = "orders-key-for-the-foreign-clients-0123456789"
const doc = readFileSync(join(repoRoot, "docs", "api.md"), "utf8")

let node: RunningNode
let grpcPort: number

beforeAll(async () => {
  node = await startGatewayNode(["--service-keys", `orders=${key}`, "--grpc-port", "0"])
  const line = await node.waitForLog((entry) => entry.message === "gRPC listening")
  const port = line.annotations?.["grpcPort"]
  if (typeof port !== "number") throw new Error("no grpcPort logged")
  grpcPort = port
}, 60_000)

afterAll(() => stopNodes([node]))

/** The fenced blocks of docs/api.md whose info string is `info`, or which follow the comment `marker`. */
const blocks = (info: RegExp): ReadonlyArray<{ readonly info: string; readonly body: string }> =>
  Array.from(doc.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm), (match) => ({ info: match[1] ?? "", body: match[2] ?? "" }))
    .filter((block) => info.test(block.info))

describe("a Python gRPC client, from docs/api.md", () => {
  it("compiles the shipped .proto files with the documented command and runs the documented example", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-python-"))
    // The doc's command, verbatim, in a folder where `packages/api/proto` is the shipped folder
    // and `python3` is Debian's (the one with python3-grpcio and python3-grpc-tools).
    const protoc = blocks(/^sh$/).find((block) => block.body.includes("grpc_tools.protoc"))?.body
    expect(protoc).toBeDefined()
    mkdirSync(join(dir, "packages", "api"), { recursive: true })
    symlinkSync(join(repoRoot, "packages", "api", "proto"), join(dir, "packages", "api", "proto"))
    await run("sh", ["-c", protoc ?? "false"], { cwd: dir, timeout: 60_000, env: { ...process.env, PATH: `/usr/bin:${process.env["PATH"] ?? ""}` } })

    const example = doc.split("<!-- example: python -->")[1]?.match(/```python\n([\s\S]*?)```/)?.[1]
    expect(example).toBeDefined()
    writeFileSync(join(dir, "example.py"), example ?? "")
    const { stdout } = await run(python, ["example.py"], {
      cwd: dir,
      timeout: 60_000,
      env: { ...process.env, WEFT_GRPC: `127.0.0.1:${grpcPort}`, WEFT_KEY: key }
    })
    const [delivered, refused] = stdout.trim().split("\n")
    // The user has no device online: stored in the inbox; the id comes from the idempotency key.
    expect(delivered).toMatch(/^stored k-[0-9a-f]{32} 0$/)
    expect(refused).toBe("INVALID_ARGUMENT 5000 invalid notify.toUser: userId: Expected a string at least 1 character(s) long, actual \"\"")
  }, 90_000)
})

describe("curl, from docs/api.md", () => {
  it("every call's example answers: the call's reply, or a documented refusal for a message that does not exist", async () => {
    const examples = blocks(/^sh curl /)
    expect(examples.map((block) => block.info.slice("sh curl ".length)).sort()).toEqual(Array.from(callSchemas.keys()).sort())
    // Edits of message `m3k2-1`, which this node's room never had: the doc's example is well-formed, the message absent.
    const absentMessage = new Set(["rooms.edit", "rooms.delete", "rooms.pin"])
    for (const { body, info } of examples) {
      const tag = info.slice("sh curl ".length)
      const { stdout } = await run("sh", ["-c", body], {
        timeout: 30_000,
        env: { ...process.env, WEFT_URL: node.url(), WEFT_KEY: key }
      })
      const answer: unknown = JSON.parse(stdout)
      if (absentMessage.has(tag)) {
        expect(Schema.decodeUnknownSync(Errors.ErrorBody)(answer).error, tag).toMatchObject({ reason: "not_found", code: 5003 })
        continue
      }
      const reply = Schema.decodeUnknownEither(callSchemas.get(tag)!.successSchema)(tag === "rooms.typing" ? undefined : answer)
      expect(Either.isRight(reply) ? "ok" : `${stdout}`, tag).toBe("ok")
    }
  }, 60_000)
})
