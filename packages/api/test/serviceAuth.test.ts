/**
 * Service credentials: which headers carry them, what is refused and how it
 * is said, configuration checks, and the constant-time comparison.
 */
import { Headers } from "@effect/platform"
import { RpcMiddleware, RpcTest } from "@effect/rpc"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, Redacted } from "effect"
import { ApiError, ServiceAuth as ServiceAuthTag, WeftApi } from "../src/Api.ts"
import * as ServiceAuth from "../src/ServiceAuth.ts"
import { billingKey, credentials, ordersKey, StubHandlers } from "./fixtures.ts"

const headers = (input: Record<string, string>) => Headers.fromInput(input)

const authenticate = (input: Record<string, string>, configured: ReadonlyArray<ServiceAuth.ServiceCredential> = credentials) =>
  Effect.flatMap(Effect.orDie(ServiceAuth.make(configured)), (service) => Effect.either(service.authenticate(headers(input))))

const refusal = (message: string) => Either.left(new ApiError({ reason: "unauthorized", message }))

/** A real HS256 JWT's shape (header `{"alg":"HS256","typ":"JWT"}`). */
const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"

describe("reading the credential", () => {
  it("takes X-Weft-Key, else Authorization: Bearer (scheme in any case), else nothing", () => {
    expect(ServiceAuth.credentialFrom(headers({ "X-Weft-Key": " k1 " }))).toBe("k1")
    expect(ServiceAuth.credentialFrom(headers({ authorization: "Bearer k2" }))).toBe("k2")
    expect(ServiceAuth.credentialFrom(headers({ authorization: "bEaReR   k3  " }))).toBe("k3")
    expect(ServiceAuth.credentialFrom(headers({ authorization: "Basic dXNlcjpwYXNz" }))).toBeUndefined()
    expect(ServiceAuth.credentialFrom(headers({ authorization: "Bearer" }))).toBeUndefined()
    expect(ServiceAuth.credentialFrom(headers({ authorization: "Bearer a b" }))).toBeUndefined()
    expect(ServiceAuth.credentialFrom(headers({ "x-weft-key": "k1", authorization: "Bearer k2" }))).toBe("k1")
    expect(ServiceAuth.credentialFrom(headers({ "x-weft-key": "  ", authorization: "Bearer k2" }))).toBe("k2")
    expect(ServiceAuth.credentialFrom(headers({}))).toBeUndefined()
  })
})

describe("authenticate", () => {
  it.effect("names the service whose key is presented, in either header", () =>
    Effect.gen(function*() {
      expect(yield* authenticate({ "x-weft-key": ordersKey })).toEqual(Either.right({ service: "orders" }))
      expect(yield* authenticate({ authorization: `Bearer ${billingKey}` })).toEqual(Either.right({ service: "billing" }))
      expect(yield* authenticate({ Authorization: `bearer ${ordersKey}` })).toEqual(Either.right({ service: "orders" }))
    }))

  it.effect("refuses a call without a credential, saying which headers carry one", () =>
    Effect.gen(function*() {
      expect(yield* authenticate({})).toEqual(
        refusal("no service credential: send `X-Weft-Key: <key>` or `Authorization: Bearer <key>`")
      )
      expect(yield* authenticate({ authorization: "Basic dXNlcjpwYXNz" })).toEqual(
        refusal("no service credential: send `X-Weft-Key: <key>` or `Authorization: Bearer <key>`")
      )
    }))

  it.effect("refuses a wrong key, a near miss, and a prefix or extension of a key", () =>
    Effect.gen(function*() {
      for (const key of ["nope", `${ordersKey.slice(0, -1)}X`, ordersKey.slice(0, -1), `${ordersKey}x`, ordersKey.toUpperCase()]) {
        expect(yield* authenticate({ "x-weft-key": key }), key).toEqual(refusal("unknown service credential"))
        expect(yield* authenticate({ authorization: `Bearer ${key}` }), key).toEqual(refusal("unknown service credential"))
      }
    }))

  it.effect("refuses a user's JWT as such", () =>
    Effect.gen(function*() {
      expect(yield* authenticate({ authorization: `Bearer ${jwt}` })).toEqual(
        refusal("a user's JWT is not a service credential; send the key configured for the calling service")
      )
    }))

  it.effect("accepts every key of a service during a rotation", () =>
    Effect.gen(function*() {
      const rotating = [...credentials, { service: "orders", key: Redacted.make("orders-next-key-0123456789abcdefghijklmn") }]
      expect(yield* authenticate({ "x-weft-key": ordersKey }, rotating)).toEqual(Either.right({ service: "orders" }))
      expect(yield* authenticate({ "x-weft-key": "orders-next-key-0123456789abcdefghijklmn" }, rotating)).toEqual(
        Either.right({ service: "orders" })
      )
    }))

  it.effect("with no key configured, starts (warning once) and refuses every call, saying why", () =>
    Effect.gen(function*() {
      const logs: Array<unknown> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(message)))
      const service = yield* Effect.provide(Effect.orDie(ServiceAuth.make([])), logger)
      expect(service.size).toBe(0)
      expect(JSON.stringify(logs)).toContain("no service credentials configured")
      const refused = yield* Effect.either(service.authenticate(headers({ "x-weft-key": ordersKey })))
      expect(refused).toEqual(
        refusal(
          "this node has no service credentials configured, so it refuses every service API call; configure a key for the calling service"
        )
      )
    }))
})

describe("the ServiceAuth middleware", () => {
  /** An in-memory client and server of `WeftApi` (stub handlers), each call carrying `headers`. */
  const client = (input: Record<string, string>) =>
    RpcTest.makeClient(WeftApi).pipe(
      Effect.provide(
        Layer.mergeAll(
          StubHandlers,
          Layer.orDie(ServiceAuth.layer(credentials)),
          RpcMiddleware.layerClient(ServiceAuthTag, ({ request }) =>
            Effect.succeed({ ...request, headers: Headers.merge(request.headers, headers(input)) }))
        )
      )
    )

  it.scoped("gives the handler the Caller named by the key", () =>
    Effect.gen(function*() {
      const billing = yield* client({ "x-weft-key": billingKey })
      expect((yield* billing.cluster.stats()).nodes[0]?.node).toBe("billing")
      const orders = yield* client({ authorization: `Bearer ${ordersKey}` })
      expect((yield* orders.notify.toUser({ userId: "7", notification: { kind: "k", data: null } })).notificationId).toBe("orders:7")
    }))

  it.scoped("fails the call with ApiError before the handler runs", () =>
    Effect.gen(function*() {
      const anonymous = yield* client({})
      expect(yield* Effect.flip(anonymous.cluster.stats())).toMatchObject({ _tag: "ApiError", reason: "unauthorized" })
      const wrong = yield* client({ "x-weft-key": "wrong-key-wrong-key-wrong-key-wrong-key" })
      expect(yield* Effect.flip(wrong.cluster.stats())).toEqual(new ApiError({ reason: "unauthorized", message: "unknown service credential" }))
    }))
})

describe("configuration", () => {
  const configError = (configured: ReadonlyArray<ServiceAuth.ServiceCredential>) =>
    Effect.map(Effect.flip(ServiceAuth.make(configured)), (error) => error.message)

  it.effect("refuses short keys, JWTs, shared keys and odd service names, without echoing keys", () =>
    Effect.gen(function*() {
      const short = yield* configError([{ service: "orders", key: Redacted.make("short-key") }])
      expect(short).toBe("the key of service orders is shorter than 32 characters")
      const token = yield* configError([{ service: "orders", key: Redacted.make(jwt) }])
      expect(token).toBe("the key of service orders is a JWT; a service credential is a random string of 32+ characters")
      expect(token).not.toContain(jwt)
      const shared = yield* configError([
        { service: "orders", key: Redacted.make(ordersKey) },
        { service: "billing", key: Redacted.make(ordersKey) }
      ])
      expect(shared).toBe("services orders and billing share a key")
      expect(yield* configError([{ service: "or ders", key: Redacted.make(ordersKey) }])).toContain("service name")
    }))

  it.effect("parses `service=key` lists", () =>
    Effect.gen(function*() {
      const parsed = yield* ServiceAuth.parseCredentials(` orders=${ordersKey} , billing=${billingKey},`)
      expect(parsed.map(({ key, service }) => [service, Redacted.value(key)])).toEqual([
        ["orders", ordersKey],
        ["billing", billingKey]
      ])
      expect(yield* ServiceAuth.parseCredentials("")).toEqual([])
      expect((yield* Effect.flip(ServiceAuth.parseCredentials(`orders=${ordersKey},oops`))).message).toBe(
        "service credential #2: expected <service>=<key>"
      )
    }))
})

describe("constantTimeEqual", () => {
  it("is true only for the same bytes", () => {
    const a = Uint8Array.from({ length: 32 }, (_, i) => i)
    expect(ServiceAuth.constantTimeEqual(a, Uint8Array.from(a))).toBe(true)
    for (const at of [0, 15, 31]) {
      const b = Uint8Array.from(a)
      b[at] = (b[at] ?? 0) ^ 1
      expect(ServiceAuth.constantTimeEqual(a, b), `byte ${at}`).toBe(false)
    }
    expect(ServiceAuth.constantTimeEqual(a, a.subarray(0, 31))).toBe(false)
    expect(ServiceAuth.constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true)
  })

  it("reads every byte whatever the first difference (no early exit)", () => {
    // A proxy counting reads: a loop that stopped at the first difference would read fewer.
    const counted = (bytes: Uint8Array) => {
      let reads = 0
      const view = new Proxy(bytes, {
        get: (target, property) => {
          if (typeof property === "string" && /^\d+$/.test(property)) reads++
          const value: unknown = Reflect.get(target, property)
          return typeof value === "function" ? value.bind(target) : value
        }
      })
      return { view, reads: () => reads }
    }
    const a = new Uint8Array(32)
    const differsFirst = Uint8Array.from(a)
    differsFirst[0] = 1
    const left = counted(a)
    expect(ServiceAuth.constantTimeEqual(left.view, differsFirst)).toBe(false)
    expect(left.reads()).toBe(32)
  })
})
