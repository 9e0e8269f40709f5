/**
 * The service API's error catalogue: every refusal, whatever the door (the
 * typed client, HTTP JSON, gRPC), has a `reason`, a stable numeric `code`, an
 * HTTP status and a gRPC status. Codes are stable: a code keeps its meaning
 * forever; new ones are added. docs/api.md lists the same table (a test keeps
 * them equal).
 *
 * `ApiError`'s reasons are what a handler (or the credential check) refuses
 * with; `unknown_call` and `internal` can only come from the HTTP and gRPC
 * doors (the typed client cannot name a call that does not exist, and sees a
 * server failure as a defect).
 */
import { ParseResult, Schema } from "effect"
import { ApiError, ApiErrorReason } from "./Api.ts"

/** Every reason a door can answer with. */
export const ErrorReason = Schema.Union(ApiErrorReason, Schema.Literal("unknown_call", "internal"))
export type ErrorReason = typeof ErrorReason.Type

export interface ErrorKind {
  /** Stable: it keeps its meaning forever. */
  readonly code: number
  /** The HTTP JSON door's status. */
  readonly http: number
  /** The gRPC door's status code (numeric, as in grpc's `status` enum). */
  readonly grpc: number
  readonly grpcName: string
  /** What it means, for docs/api.md. */
  readonly doc: string
}

/** The catalogue, by reason. */
export const errorKinds: { readonly [R in ErrorReason]: ErrorKind } = {
  invalid: {
    code: 5000,
    http: 400,
    grpc: 3,
    grpcName: "INVALID_ARGUMENT",
    doc: "the request does not match the call's schema (a missing or malformed field, a bad idempotency key), or asks for something impossible (a local time that does not exist, due more than 30 days ahead)"
  },
  unauthorized: {
    code: 5001,
    http: 401,
    grpc: 16,
    grpcName: "UNAUTHENTICATED",
    doc: "no service credential, an unknown one, or a user's JWT instead of one"
  },
  forbidden: {
    code: 5002,
    http: 403,
    grpc: 7,
    grpcName: "PERMISSION_DENIED",
    doc: "the credential is valid but the call may not do this (edit another author's message)"
  },
  not_found: { code: 5003, http: 404, grpc: 5, grpcName: "NOT_FOUND", doc: "the message (or other thing) the call names does not exist" },
  too_large: {
    code: 5004,
    http: 413,
    grpc: 8,
    grpcName: "RESOURCE_EXHAUSTED",
    doc: "a notification's `data` or a message's `body` is bigger than 64 KiB as JSON, or the request is bigger than the door takes (4 MiB)"
  },
  unavailable: {
    code: 5005,
    http: 503,
    grpc: 14,
    grpcName: "UNAVAILABLE",
    doc: "a part of the cluster the call needs did not answer in time, or the node is shutting down; retry (with the same idempotency key)"
  },
  unknown_call: { code: 5006, http: 404, grpc: 12, grpcName: "UNIMPLEMENTED", doc: "no call has this name" },
  internal: { code: 5007, http: 500, grpc: 13, grpcName: "INTERNAL", doc: "the node failed to handle the call (a bug); it is logged" }
}

/**
 * A refusal as every door states it: the HTTP JSON door's body is `{ "error": Refusal }`, the
 * gRPC door's trailers carry `weft-error-code` and `weft-error-reason`.
 */
export const Refusal = Schema.Struct({ code: Schema.Number, reason: ErrorReason, message: Schema.String })
export type Refusal = typeof Refusal.Type

/** The HTTP JSON door's error body. */
export const ErrorBody = Schema.Struct({ error: Refusal })

/** The refusal for `reason` with `message`. */
export const refusal = (reason: ErrorReason, message: string): Refusal => ({ code: errorKinds[reason].code, reason, message })

/** The refusal an `ApiError` is. */
export const refusalOf = (error: ApiError): Refusal => refusal(error.reason, error.message)

/**
 * The `invalid` error for a payload that does not match call `tag`'s schema. The typed client
 * (before sending) and the HTTP and gRPC doors (on receipt) check with the same Schema and word
 * the error with this one function, so the same bad request gets the same error from each.
 */
export const invalidPayload = (tag: string, error: ParseResult.ParseError): ApiError =>
  new ApiError({
    reason: "invalid",
    // One line per problem, `path: what`, instead of the whole schema Schema's tree would print.
    message: `${tag}: ${
      ParseResult.ArrayFormatter.formatErrorSync(error)
        .map((issue) => `${issue.path.length === 0 ? "payload" : issue.path.map(String).join(".")}: ${issue.message}`)
        .join("; ")
    }`
  })
