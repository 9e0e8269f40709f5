/**
 * @weft/api/server: the node's side of the service API.
 *
 * - `ServiceAuth`: service credentials and the `ServiceAuth` middleware (`ServiceAuth.layer(credentials)`).
 * - `Server`: `POST /rpc` (`Server.routes`) and the `/rpc` WebSocket endpoint (`Server.makeWebSocketEndpoint`).
 * - `Invoker`: one call by name with a JSON payload and headers, through the same handlers and
 *   middleware as `/rpc`; what the HTTP JSON and gRPC doors share.
 * - `HttpJson`: the HTTP JSON door, `POST /v1/api/<call>` (`HttpJson.routes`).
 * - `Grpc`: the gRPC door on its own port (`Grpc.layer(options)`), over the shipped `.proto` files.
 * - `ProtoMapping`: how the `.proto` files restate the Schemas, checked (`ProtoMapping.match`).
 * - `Idempotency`: the idempotency-key store handlers use (Redis for a cluster, memory for one node).
 * - `ApiMetrics`: the calls' latency histogram (`ApiMetrics.instrument(handlers)`).
 */
export * as ApiMetrics from "../ApiMetrics.ts"
export * as Idempotency from "../Idempotency.ts"
export * as Server from "../Server.ts"
export * as ServiceAuth from "../ServiceAuth.ts"
export * as Grpc from "./Grpc.ts"
export * as HttpJson from "./HttpJson.ts"
export * as Invoker from "./Invoker.ts"
export * as ProtoMapping from "./ProtoMapping.ts"
