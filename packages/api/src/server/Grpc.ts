/**
 * The gRPC door of the service API, for services whose ecosystem is gRPC (Go,
 * Java, Python, ...): every call of `WeftApi` as a unary method of the shipped
 * `.proto` files (packages/api/proto/weft/v1; `notify.toUser` is
 * `weft.v1.Notify/ToUser`), served with @grpc/grpc-js on its own port.
 *
 * Calls go through the `Invoker`, like the HTTP JSON door: the message is
 * turned into the payload's JSON form (`ProtoMapping`), checked by the call's
 * Schema, run through the same handlers and credential check, and the reply
 * turned back into its message. The credential travels in metadata
 * (`authorization: Bearer <key>` or `x-weft-key`), an idempotency key may too
 * (`idempotency-key`). A refusal is a gRPC status (`Errors.ts`) whose details
 * are the message, with trailers `weft-error-code` and `weft-error-reason`.
 *
 * Before it listens the door checks the `.proto` files against the Schemas
 * (`ProtoMapping.match`) and refuses to start when they differ, so a node
 * never serves a contract other than the one it states.
 */
import { Headers } from "@effect/platform"
import * as grpc from "@grpc/grpc-js"
import * as ProtoLoader from "@grpc/proto-loader"
import { Context, Data, Duration, Effect, Either, Fiber, FiberSet, Layer } from "effect"
import type { Scope } from "effect"
import { fileURLToPath } from "node:url"
import { callSchemas } from "../Api.ts"
import { errorKinds, type Refusal, refusal } from "../Errors.ts"
import { Invoker } from "./Invoker.ts"
import * as ProtoMapping from "./ProtoMapping.ts"

/** The folder the `.proto` files are in (give it to `protoc -I` or a code generator). */
export const protoDir: string = fileURLToPath(new URL("../../proto", import.meta.url))

/** The API's `.proto` files, relative to `protoDir`. */
export const protoFiles: ReadonlyArray<string> = [
  "weft/v1/common.proto",
  "weft/v1/notify.proto",
  "weft/v1/presence.proto",
  "weft/v1/rooms.proto",
  "weft/v1/users.proto",
  "weft/v1/cluster.proto"
]

/**
 * How proto-loader gives messages to the door: field names in lower camel case (the Schemas'
 * names), 64-bit integers as numbers, enums by name, only the fields that were sent (so absent
 * and default stay apart where the proto allows it), repeated fields always, and the name of the
 * field each oneof holds.
 */
export const loaderOptions: ProtoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: true,
  oneofs: true,
  includeDirs: [protoDir]
}

/** The gRPC door could not start: the `.proto` files could not be read or differ from the Schemas, or the port is taken. */
export class GrpcError extends Data.TaggedError("GrpcError")<{ readonly message: string }> {}

/** The `.proto` files, loaded. */
export const loadDefinition: Effect.Effect<ProtoLoader.PackageDefinition, GrpcError> = Effect.tryPromise({
  try: () => ProtoLoader.load(Array.from(protoFiles), loaderOptions),
  catch: (cause) => new GrpcError({ message: `cannot load the .proto files from ${protoDir}: ${String(cause)}` })
})

/** Every call of `WeftApi` matched to its method, or a `GrpcError` listing every difference. */
export const calls: Effect.Effect<ReadonlyArray<ProtoMapping.ProtoCall & { readonly definition: ProtoLoader.MethodDefinition<object, object> }>, GrpcError> = Effect.flatMap(
  loadDefinition,
  (definition) =>
    Either.match(ProtoMapping.match(definition, callSchemas), {
      onLeft: (problems) => Effect.fail(new GrpcError({ message: `the .proto files differ from WeftApi:\n${problems.join("\n")}` })),
      onRight: (matched) =>
        Effect.forEach(matched, (call) => {
          const service = definition[call.service]
          const method = service !== undefined && !("format" in service) ? service[call.method] : undefined
          return method === undefined
            ? Effect.fail(new GrpcError({ message: `${call.tag}: no method` }))
            : Effect.succeed({ ...call, definition: method })
        })
    })
)

export interface GrpcOptions {
  /** The interface to bind. */
  readonly host: string
  /** The port; 0 picks a free one (the bound port is in `GrpcServerInfo`). */
  readonly port: number
  /** PEM certificate chain and private key: with them the door speaks TLS only. */
  readonly tls?: { readonly certificateChain: Uint8Array; readonly privateKey: Uint8Array } | undefined
  /**
   * Completes when the node starts draining: the door then stops accepting connections and asks
   * connected clients (HTTP/2 GOAWAY) to go elsewhere, letting calls in flight finish.
   */
  readonly draining?: Effect.Effect<void> | undefined
  /** Largest request message; a bigger one is refused `RESOURCE_EXHAUSTED` by grpc-js. Default 4 MiB, as the HTTP door. */
  readonly maxMessageBytes?: number | undefined
  /** How long calls in flight get when the door closes. Default 5 seconds. */
  readonly closeGrace?: Duration.DurationInput | undefined
}

export interface GrpcServerInfo {
  readonly host: string
  readonly port: number
  readonly tls: boolean
}

/** The running gRPC door. */
export class GrpcServer extends Context.Tag("@weft/api/GrpcServer")<GrpcServer, GrpcServerInfo>() {}

/** The credential and idempotency key headers the door reads from metadata (binary entries are ignored). */
const headersOf = (metadata: grpc.Metadata): Headers.Headers => {
  const entries: Record<string, string> = {}
  for (const [name, value] of Object.entries(metadata.getMap())) {
    if (typeof value === "string") entries[name] = value
  }
  return Headers.fromInput(entries)
}

/** A refusal as a gRPC status: our code and reason in trailers, the message as details. */
export const statusOf = (refused: Refusal): Partial<grpc.StatusObject> => {
  const metadata = new grpc.Metadata()
  metadata.set("weft-error-code", String(refused.code))
  metadata.set("weft-error-reason", refused.reason)
  return { code: errorKinds[refused.reason].grpc, details: refused.message, metadata }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const bind = (server: grpc.Server, address: string, credentials: grpc.ServerCredentials) =>
  Effect.async<number, GrpcError>((resume) => {
    server.bindAsync(address, credentials, (error, port) => {
      resume(error === null ? Effect.succeed(port) : Effect.fail(new GrpcError({ message: `cannot listen on ${address}: ${error.message}` })))
    })
  })

/**
 * The gRPC door, listening for the scope: it stops accepting when `draining` completes and shuts
 * down (calls in flight get `closeGrace`, then are cancelled) when the scope closes.
 */
export const make = (options: GrpcOptions): Effect.Effect<GrpcServerInfo, GrpcError, Invoker | Scope.Scope> =>
  Effect.gen(function*() {
    const invoker = yield* Invoker
    const matched = yield* calls
    const run = yield* FiberSet.makeRuntime<never>()
    const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024

    const server = new grpc.Server({
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": 16 * 1024 * 1024
    })
    const byService = new Map<string, {
      definition: Record<string, grpc.MethodDefinition<object, object>>
      implementation: grpc.UntypedServiceImplementation
    }>()
    for (const call of matched) {
      const handler: grpc.handleUnaryCall<object, object> = (unary, callback) => {
        const metadata = headersOf(unary.metadata)
        const idempotencyKey = unary.metadata.get("idempotency-key").find((value): value is string => typeof value === "string")
        // Exactly one answer per call, whatever ends the fiber.
        let answered = false
        const answer: grpc.sendUnaryData<object> = (error, value) => {
          if (answered) return
          answered = true
          callback(error, value)
        }
        const fiber = run(
          invoker.invoke(call.tag, ProtoMapping.fromProto(call.payload, unary.request), metadata, { idempotencyKey }).pipe(
            Effect.match({
              onFailure: (error) => answer(statusOf(error.refusal)),
              onSuccess: (reply) => {
                const message = ProtoMapping.replyToProto(call.success, reply)
                answer(null, isRecord(message) ? message : {})
              }
            }),
            Effect.catchAllDefect((defect) =>
              Effect.zipRight(
                Effect.logError("gRPC call failed", defect),
                Effect.sync(() => answer(statusOf(refusal("internal", "internal error"))))
              )
            ),
            // Interrupted (the door is closing): the client is told to retry elsewhere.
            Effect.ensuring(Effect.sync(() => answer(statusOf(refusal("unavailable", "the node is stopping; retry")))))
          )
        )
        // The client gave up (deadline, cancel, connection gone): stop the call's work.
        unary.on("cancelled", () => void run(Fiber.interrupt(fiber)))
      }
      const entry = byService.get(call.service) ?? { definition: {}, implementation: {} }
      entry.definition[call.method] = call.definition
      entry.implementation[call.method] = handler
      byService.set(call.service, entry)
    }
    for (const { definition, implementation } of byService.values()) server.addService(definition, implementation)

    const address = `${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`
    const credentials = options.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(null, [{
        cert_chain: Buffer.from(options.tls.certificateChain),
        private_key: Buffer.from(options.tls.privateKey)
      }], false)
    const graceMs = Duration.toMillis(Duration.decode(options.closeGrace ?? "5 seconds"))
    const port = yield* Effect.acquireRelease(bind(server, address, credentials), () =>
      Effect.async<void>((resume) => {
        // Calls in flight may finish within the grace; then whatever is left is cut.
        const timer = setTimeout(() => {
          server.forceShutdown()
          resume(Effect.void)
        }, graceMs)
        server.tryShutdown(() => {
          clearTimeout(timer)
          resume(Effect.void)
        })
      }))
    const bound = `${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`
    if (options.draining !== undefined) {
      yield* options.draining.pipe(
        Effect.zipRight(Effect.sync(() => {
          server.unbind(bound)
          server.drain(bound, graceMs)
        })),
        Effect.zipRight(Effect.logInfo("gRPC door draining: no new connections")),
        Effect.forkScoped
      )
    }
    const info: GrpcServerInfo = { host: options.host, port, tls: options.tls !== undefined }
    yield* Effect.logInfo("gRPC listening").pipe(Effect.annotateLogs({ grpcPort: port, tls: info.tls }))
    return info
  })

/** The gRPC door as a layer over the `Invoker`. */
export const layer = (options: GrpcOptions): Layer.Layer<GrpcServer, GrpcError, Invoker> => Layer.scoped(GrpcServer, make(options))
