/**
 * @weft/notification: the notification role. User entities (connections,
 * inbox, settings, delivery) and their part of the client protocol.
 */
export * from "./User.ts"
export { layer as gatewayExtension } from "./gateway.ts"
export type { Options as GatewayExtensionOptions } from "./gateway.ts"
