/**
 * @weft/api/server: the node's side of the service API.
 *
 * - `ServiceAuth`: service credentials and the `ServiceAuth` middleware (`ServiceAuth.layer(credentials)`).
 * - `Server`: `POST /rpc` (`Server.routes`) and the `/rpc` WebSocket endpoint (`Server.makeWebSocketEndpoint`).
 * - `Idempotency`: the idempotency-key store handlers use (Redis for a cluster, memory for one node).
 * - `ApiMetrics`: the calls' latency histogram (`ApiMetrics.instrument(handlers)`).
 */
export * as ApiMetrics from "../ApiMetrics.ts"
export * as Idempotency from "../Idempotency.ts"
export * as Server from "../Server.ts"
export * as ServiceAuth from "../ServiceAuth.ts"
