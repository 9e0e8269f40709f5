/**
 * @weft/gateway: WebSocket termination, connection actors and channel fan-out.
 */
export { Connection, ConnectionLive, CredentialsDue, Disconnect, Inbound, Push, SocketClosed } from "./ConnectionActor.ts"
export * as CredentialExpiry from "./CredentialExpiry.ts"
export type { ConnectionMessage } from "./ConnectionActor.ts"
export * as Extensions from "./Extensions.ts"
export * as Fanout from "./Fanout.ts"
export * as GatewayMetrics from "./GatewayMetrics.ts"
export { GatewayConfigService } from "./GatewayConfig.ts"
export type { GatewayConfig } from "./GatewayConfig.ts"
export { broadcastChannel } from "./ConnectionActor.ts"
export { layer, path, WebSocketGateway } from "./Gateway.ts"
export type { WebSocketGatewayService } from "./Gateway.ts"
export { Sockets } from "./Sockets.ts"
export type { Socket, SocketState } from "./Sockets.ts"
