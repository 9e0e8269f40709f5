/**
 * TLS: given `--tls-cert` and `--tls-key`, the node serves https and wss. The certificate is a
 * self-signed one made for the occasion (openssl, into a temporary directory, for 127.0.0.1);
 * the clients trust exactly that certificate. A whole session runs over it: a ticket over https,
 * a WebSocket over wss, a publish and its message. A client that does not trust the certificate
 * is refused by TLS, and plain http to the TLS port gets no answer.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { request as httpsRequest } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Codec, type ServerFrame } from "@weft/protocol"
import { Either } from "effect"
import WebSocket from "ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningNode, startListeningNode } from "../support/bunNode.ts"
import { stopNodes } from "../support/gatewayNodes.ts"
import { jwtSecret, makeJwt } from "../support/jwt.ts"
import { waitUntil } from "../support/wait.ts"

let dir: string
let ca: Buffer
let node: RunningNode

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weft-tls-"))
  const cert = join(dir, "cert.pem")
  const key = join(dir, "key.pem")
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    "-keyout", key, "-out", cert,
    "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1"
  ], { stdio: "ignore", timeout: 60_000 })
  ca = readFileSync(cert)
  node = await startListeningNode(["--node-id", "sec-tls", "--jwt-secret", jwtSecret, "--tls-cert", cert, "--tls-key", key])
  // The support helpers poll /readyz over plain fetch, which does not trust this certificate.
  await waitUntil("the TLS node is ready", async () => (await call("GET", `${node.url()}/readyz`, {}, ca)).status === 200)
})

afterAll(async () => {
  await stopNodes([node])
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

/** A request over https trusting only `trusted`; resolves with the status and body, or rejects with the TLS error. */
const call = (
  method: "GET" | "POST",
  url: string,
  headers: Record<string, string>,
  trusted: Buffer | undefined
): Promise<{ readonly status: number; readonly body: string }> =>
  new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, headers, ...(trusted === undefined ? {} : { ca: trusted }), timeout: 10_000 }, (response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => (body += chunk.toString()))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
    })
    req.on("timeout", () => req.destroy(new Error("timed out")))
    req.on("error", reject)
    req.end()
  })

const ticketOver = async (base: string): Promise<string> => {
  const { status, body } = await call("POST", `${base}/v1/tickets`, { authorization: `Bearer ${await makeJwt({ sub: "tls-user", weft: { subscribe: ["news:*"], publish: ["news:*"] } })}` }, ca)
  expect(status).toBe(200)
  const parsed: unknown = JSON.parse(body)
  const ticket = typeof parsed === "object" && parsed !== null && "ticket" in parsed ? parsed.ticket : undefined
  if (typeof ticket !== "string") throw new Error(`no ticket in ${body}`)
  return ticket
}

/** Frames of a `ws` socket, decoded as msgpack server frames, waited for one by one. */
const framesOf = (socket: WebSocket) => {
  const frames: Array<ServerFrame> = []
  const waiters = new Set<() => void>()
  socket.on("message", (data: Buffer) => {
    const decoded = Codec.decodeServerFrame(new Uint8Array(data), "msgpack")
    if (Either.isRight(decoded)) frames.push(decoded.right)
    for (const waiter of waiters) waiter()
  })
  return (type: ServerFrame["type"]): Promise<ServerFrame> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const index = frames.findIndex((frame) => frame.type === type)
        if (index === -1) return
        waiters.delete(check)
        clearTimeout(timer)
        resolve(frames.splice(index, 1)[0]!)
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no ${type} frame over wss`))
      }, 10_000)
      waiters.add(check)
      check()
    })
}

describe("a node with --tls-cert and --tls-key", () => {
  it("announces https, and serves a whole session over https and wss to a client trusting its certificate", async () => {
    const base = node.url()
    expect(base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const ticket = await ticketOver(base)
    const socket = new WebSocket(`${base.replace(/^https/, "wss")}/v1/ws?ticket=${ticket}`, ["weft.v1.msgpack"], { ca, handshakeTimeout: 10_000 })
    try {
      const next = framesOf(socket)
      await new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve())
        socket.once("error", reject)
      })
      expect(await next("welcome")).toMatchObject({ type: "welcome", user: "tls-user", node: "sec-tls" })
      socket.send(Codec.encodeClientFrame({ type: "subscribe", id: 1, channel: "news:tls" }, "msgpack"))
      expect(await next("ack")).toEqual({ type: "ack", id: 1 })
      socket.send(Codec.encodeClientFrame({ type: "publish", id: 2, channel: "news:tls", data: { secure: true } }, "msgpack"))
      expect(await next("message")).toMatchObject({ channel: "news:tls", data: { secure: true }, from: "tls-user" })
    } finally {
      socket.terminate()
    }
  })

  it("is refused by a client that does not trust the certificate, and does not speak plain http on the TLS port", async () => {
    await expect(call("POST", `${node.url()}/v1/tickets`, {}, undefined)).rejects.toThrow(/self[- ]signed|certificate/i)
    const plain = node.url().replace(/^https/, "http")
    const answer = await fetch(`${plain}/healthz`, { signal: AbortSignal.timeout(5_000) }).then((response) => response.status, () => "no answer")
    expect(answer).not.toBe(200)
  })
})
