/**
 * The gRPC door's life: TLS when given a certificate (and nothing else then), no new connections
 * once the node drains, nothing listening once its scope closes, and no start at all when the
 * `.proto` files and the Schemas differ.
 */
import * as grpc from "@grpc/grpc-js"
import { it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect } from "vitest"
import * as Grpc from "../src/server/Grpc.ts"
import * as Invoker from "../src/server/Invoker.ts"
import * as ServiceAuth from "../src/ServiceAuth.ts"
import { credentials, ordersKey, StubHandlers } from "./fixtures.ts"
import { makeGrpcCaller } from "./grpcCaller.ts"

const invoker = Invoker.layer.pipe(Layer.provide(Layer.merge(StubHandlers, ServiceAuth.layer(credentials))), Layer.orDie)
const metadata = { "x-weft-key": ordersKey }
const payload = { userId: "42", notification: { kind: "k", data: null } }

/** A self-signed certificate for 127.0.0.1 (openssl, as the deployment tests make theirs). */
const selfSigned = () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-grpc-tls-"))
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")
  ], { stdio: "ignore" })
  return { certificateChain: readFileSync(join(dir, "cert.pem")), privateKey: readFileSync(join(dir, "key.pem")) }
}

/** One call on a fresh connection: the status code (0 for OK). */
const callOnce = async (address: string, channel: grpc.ChannelCredentials = grpc.credentials.createInsecure()) => {
  const caller = await makeGrpcCaller(address, channel)
  try {
    const outcome = await caller.call("notify.toUser", payload, metadata)
    return outcome.ok ? 0 : outcome.code
  } finally {
    caller.close()
  }
}

describe("the gRPC door", () => {
  it.live("speaks TLS when it has a certificate, and only TLS", () =>
    Effect.scoped(Effect.gen(function*() {
      const tls = selfSigned()
      const server = yield* Grpc.make({ host: "127.0.0.1", port: 0, tls, closeGrace: "1 second" })
      expect(server.tls).toBe(true)
      const address = `127.0.0.1:${server.port}`
      expect(yield* Effect.promise(() => callOnce(address, grpc.credentials.createSsl(tls.certificateChain)))).toBe(grpc.status.OK)
      expect(yield* Effect.promise(() => callOnce(address))).toBe(grpc.status.UNAVAILABLE)
    }).pipe(Effect.provide(invoker))), 30_000)

  it.live("takes no new connection once the node drains, and listens no more once closed", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const draining = yield* Deferred.make<void>()
      const server = yield* Grpc.make({ host: "127.0.0.1", port: 0, draining: Deferred.await(draining), closeGrace: "1 second" }).pipe(
        Scope.extend(scope)
      )
      const address = `127.0.0.1:${server.port}`
      expect(yield* Effect.promise(() => callOnce(address))).toBe(grpc.status.OK)
      yield* Deferred.succeed(draining, undefined)
      // The door stops accepting within a moment of the signal.
      let code = -1
      for (let attempt = 0; attempt < 50 && code !== grpc.status.UNAVAILABLE; attempt++) {
        code = yield* Effect.promise(() => callOnce(address))
        if (code !== grpc.status.UNAVAILABLE) yield* Effect.sleep("50 millis")
      }
      expect(code).toBe(grpc.status.UNAVAILABLE)
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.promise(() => callOnce(address))).toBe(grpc.status.UNAVAILABLE)
    }).pipe(Effect.provide(invoker)), 30_000)

  it.live("a taken port fails the door with a GrpcError naming it", () =>
    Effect.scoped(Effect.gen(function*() {
      const first = yield* Grpc.make({ host: "127.0.0.1", port: 0, closeGrace: "1 second" })
      const second = yield* Effect.flip(Grpc.make({ host: "127.0.0.1", port: first.port }))
      expect(second).toMatchObject({ _tag: "GrpcError", message: expect.stringContaining(`127.0.0.1:${first.port}`) })
    }).pipe(Effect.provide(invoker))), 30_000)
})
