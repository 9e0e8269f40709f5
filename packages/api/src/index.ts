/**
 * @weft/api: the service API other services call, as @effect/rpc groups.
 *
 * - `WeftApi` (and its Schemas, `ApiError`, `ServiceAuth`, `Caller`): the contract.
 * - `Errors`: the error catalogue (stable codes, HTTP and gRPC statuses) every door answers with.
 * - `makeWeftClient` / `layerWeftClient`: a typed client over HTTP or WebSocket.
 *
 * The node's side (serving `/rpc`, checking credentials, idempotency keys) is
 * `@weft/api/server`, kept apart so that a client does not load Redis.
 */
export * from "./Api.ts"
export * as Errors from "./Errors.ts"
export {
  credentialHeader,
  layerWeftClient,
  makeWeftClient,
  WeftClient,
  type WeftApiClient,
  type WeftClientOptions
} from "./Client.ts"
