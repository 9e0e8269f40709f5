/**
 * A gRPC client of the service API for tests and benchmarks, generic over the calls: a call by
 * its `WeftApi` tag with its payload in JSON form, answered with the reply in JSON form (through
 * `ProtoMapping`, the same rules the door uses) or the gRPC status, details and trailers.
 */
import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import * as Grpc from "../src/server/Grpc.ts"
import * as ProtoMapping from "../src/server/ProtoMapping.ts"

export type GrpcOutcome =
  | { readonly ok: true; readonly reply: unknown }
  | { readonly ok: false; readonly code: number; readonly details: string; readonly trailers: Record<string, string> }

export interface GrpcCaller {
  readonly call: (tag: string, payload: unknown, metadata?: Record<string, string>) => Promise<GrpcOutcome>
  readonly close: () => void
}

const stringsOf = (metadata: grpc.Metadata | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(metadata?.getMap() ?? {})) if (typeof value === "string") out[name] = value
  return out
}

const isServiceError = (error: unknown): error is grpc.ServiceError =>
  error instanceof Error && "code" in error && typeof error.code === "number"

/** A client of the door at `address` (`host:port`). */
export const makeGrpcCaller = async (
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()
): Promise<GrpcCaller> => {
  const calls = new Map((await Effect.runPromise(Grpc.calls)).map((call) => [call.tag, call]))
  const client = new grpc.Client(address, credentials)
  return {
    call: (tag, payload, metadata = {}) =>
      new Promise((resolve, reject) => {
        const call = calls.get(tag)
        if (call === undefined) return reject(new Error(`no call ${tag}`))
        const entries = new grpc.Metadata()
        for (const [name, value] of Object.entries(metadata)) entries.set(name, value)
        const request = ProtoMapping.toProto(call.payload, payload)
        client.makeUnaryRequest(
          call.definition.path,
          call.definition.requestSerialize,
          call.definition.responseDeserialize,
          typeof request === "object" && request !== null ? request : {},
          entries,
          { deadline: Date.now() + 30_000 },
          (error, reply) => {
            if (error === null || error === undefined) return resolve({ ok: true, reply: ProtoMapping.replyFromProto(call.success, reply) })
            if (!isServiceError(error)) return reject(error)
            resolve({ ok: false, code: error.code, details: error.details, trailers: stringsOf(error.metadata) })
          }
        )
      }),
    close: () => client.close()
  }
}
