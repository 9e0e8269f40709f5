/**
 * One call of `WeftApi` by name, for the doors that are not @effect/rpc (HTTP
 * JSON, gRPC): the payload in its JSON form and the request's headers in, the
 * success in its JSON form or a `Refusal` out.
 *
 * A call goes through the same path as a typed client's: its payload is
 * decoded with the Rpc's own `payloadSchema`, then it runs on an in-process
 * @effect/rpc server (`RpcServer.makeNoSerialization`) over the same handlers
 * and the same `ServiceAuth` middleware as `/rpc`, and its success is encoded
 * with the Rpc's `successSchema`. Nothing about a call is restated here, so a
 * call added to the group is served by every door at once.
 */
import type { Headers } from "@effect/platform"
import { RpcMessage, RpcServer } from "@effect/rpc"
import { Cause, Context, Data, Deferred, Effect, Exit, Layer, Option, Schema } from "effect"
import type { Scope } from "effect"
import { ApiError, type CallSchemas, callSchemas, type ServiceAuth, WeftApi } from "../Api.ts"
import { invalidPayload, type Refusal, refusal, refusalOf } from "../Errors.ts"
import type { Handlers } from "../Server.ts"

/** A call refused, as every door states it. */
export class Refused extends Data.TaggedError("Refused")<{ readonly refusal: Refusal }> {}

export interface InvokeOptions {
  /**
   * An idempotency key the door took from a header (`Idempotency-Key`) or gRPC metadata: it
   * fills the payload's `idempotencyKey`. A call without that field, or a payload naming another
   * key, is refused `invalid`.
   */
  readonly idempotencyKey?: string | undefined
}

export interface InvokerService {
  /**
   * Runs call `tag` (`notify.toUser`) with `payload` (its JSON form, not yet checked) and the
   * request's `headers` (which carry the credential): its success in JSON form, or why not.
   */
  readonly invoke: (
    tag: string,
    payload: unknown,
    headers: Headers.Headers,
    options?: InvokeOptions
  ) => Effect.Effect<unknown, Refused>
}

export class Invoker extends Context.Tag("@weft/api/Invoker")<Invoker, InvokerService>() {}


const refused = (reason: Refusal["reason"], message: string) => new Refused({ refusal: refusal(reason, message) })

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Whether call `rpc`'s payload has a field `name`. */
const hasField = (rpc: CallSchemas, name: string): boolean => {
  const ast = Schema.encodedSchema(rpc.payloadSchema).ast
  return ast._tag === "TypeLiteral" && ast.propertySignatures.some((signature) => signature.name === name)
}

/**
 * A call without fields (`cluster.stats`) has a `void` payload; the doors can only send an empty
 * object for it (an empty HTTP body, an empty gRPC message), which stands for "nothing".
 */
const voidOr = (rpc: CallSchemas, payload: unknown): unknown =>
  rpc.payloadSchema.ast._tag === "VoidKeyword" && isRecord(payload) && Object.keys(payload).length === 0 ? undefined : payload

/** `payload` with the door's idempotency key in it, or why it cannot have it. */
const withIdempotencyKey = (tag: string, rpc: CallSchemas, payload: unknown, key: string | undefined) => {
  if (key === undefined) return Effect.succeed(payload)
  if (!hasField(rpc, "idempotencyKey")) return Effect.fail(refused("invalid", `${tag}: this call takes no idempotency key`))
  if (!isRecord(payload)) return Effect.succeed(payload)
  const given = payload["idempotencyKey"]
  if (given !== undefined && given !== key) {
    return Effect.fail(refused("invalid", `${tag}: the Idempotency-Key header and the body's idempotencyKey differ`))
  }
  return Effect.succeed({ ...payload, idempotencyKey: key })
}

/**
 * The invoker over the handlers and middleware in context, its RPC server alive for the scope
 * (closing the scope interrupts the calls in flight, which answer `unavailable`).
 */
export const make: Effect.Effect<InvokerService, never, Handlers | ServiceAuth | Scope.Scope> = Effect.gen(function*() {
  type Outcome = Exit.Exit<unknown, unknown>
  const pending = new Map<bigint, Deferred.Deferred<Outcome>>()
  const server = yield* RpcServer.makeNoSerialization(WeftApi, {
    spanPrefix: "WeftApi",
    // A handler's defect comes back as that call's Exit instead of ending the (one, shared) client.
    disableFatalDefects: true,
    disableClientAcks: true,
    onFromServer: (response) =>
      Effect.suspend(() => {
        switch (response._tag) {
          case "Exit": {
            const waiting = pending.get(response.requestId)
            pending.delete(response.requestId)
            return waiting === undefined ? Effect.void : Deferred.succeed(waiting, response.exit)
          }
          case "Defect": {
            // Not tied to one request: every call waiting on this client learns of it.
            const all = Array.from(pending.values())
            pending.clear()
            return Effect.forEach(all, (waiting) => Deferred.succeed(waiting, Exit.die(response.defect)), { discard: true })
          }
          default:
            return Effect.void
        }
      })
  })
  // One in-process client for every call; ids only need to be unique while a call is pending.
  const clientId = 0
  let nextId = 0n

  type Message = Parameters<typeof server.write>[1]

  const run = (tag: string, payload: unknown, headers: Headers.Headers) =>
    Effect.gen(function*() {
      const id = RpcMessage.RequestId(nextId++)
      const done = yield* Deferred.make<Outcome>()
      pending.set(id, done)
      const request = { _tag: "Request" as const, id, tag, payload, headers }
      // The payload was decoded by this call's own schema, so it is the call's payload; the
      // server's message type is the union over every call, which TypeScript cannot pick by tag.
      // A server whose scope has closed refuses the write by interrupting it: answered as an
      // interrupted call (`unavailable`), not by interrupting the door's fiber.
      const written = yield* Effect.exit(server.write(clientId, request as unknown as Message))
      if (Exit.isFailure(written)) {
        pending.delete(id)
        return Exit.failCause(written.cause)
      }
      return yield* Deferred.await(done).pipe(
        Effect.onInterrupt((interruptors) =>
          Effect.suspend(() => {
            pending.delete(id)
            return server.write(clientId, { _tag: "Interrupt", requestId: id, interruptors: Array.from(interruptors) })
          })
        )
      )
    })

  const invoke: InvokerService["invoke"] = (tag, payload, headers, options = {}) =>
    Effect.gen(function*() {
      const rpc = callSchemas.get(tag)
      if (rpc === undefined) return yield* refused("unknown_call", `no call named ${JSON.stringify(tag)}`)
      const given = yield* withIdempotencyKey(tag, rpc, payload, options.idempotencyKey)
      const decoded: unknown = yield* Schema.decodeUnknown(rpc.payloadSchema)(voidOr(rpc, given), { onExcessProperty: "error" }).pipe(
        Effect.mapError((error) => new Refused({ refusal: refusalOf(invalidPayload(tag, error)) }))
      )
      const exit = yield* run(tag, decoded, headers)
      if (Exit.isSuccess(exit)) {
        const encoded: unknown = yield* Schema.encodeUnknown(rpc.successSchema)(exit.value).pipe(
          Effect.catchAll((error) =>
            Effect.zipRight(
              Effect.logError("a service API reply does not match its schema").pipe(Effect.annotateLogs({ rpc: tag, error: error.message })),
              Effect.fail(refused("internal", "internal error"))
            )
          )
        )
        return encoded
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure) && failure.value instanceof ApiError) return yield* new Refused({ refusal: refusalOf(failure.value) })
      if (Cause.isInterruptedOnly(exit.cause)) return yield* refused("unavailable", "the call was interrupted (the node is stopping); retry")
      yield* Effect.logError("service API call failed", exit.cause).pipe(Effect.annotateLogs({ rpc: tag }))
      return yield* refused("internal", "internal error")
    })

  return { invoke }
})

/** The `Invoker` over the handlers and the `ServiceAuth` middleware. */
export const layer: Layer.Layer<Invoker, never, Handlers | ServiceAuth> = Layer.scoped(Invoker, make)
