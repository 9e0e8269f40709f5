/**
 * @weft/api: the service API other services call, as @effect/rpc groups.
 *
 * - `WeftApi` (and its Schemas, `ApiError`, `ServiceAuth`, `Caller`): the contract.
 * - `makeWeftClient` / `layerWeftClient`: a typed client over HTTP or WebSocket.
 *
 * The node's side (serving `/rpc`, checking credentials, idempotency keys) is
 * `@weft/api/server`, kept apart so that a client does not load Redis.
 */
export * from "./Api.ts"
export {
  credentialHeader,
  layerWeftClient,
  makeWeftClient,
  WeftClient,
  type WeftApiClient,
  type WeftClientOptions
} from "./Client.ts"
