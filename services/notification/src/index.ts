/**
 * @weft/notification: the notification role. User entities (connections,
 * inbox, settings, delivery) and their part of the client protocol.
 */
export * from "./User.ts"
export { layer as gatewayExtension } from "./gateway.ts"
export type { Options as GatewayExtensionOptions } from "./gateway.ts"
export { layer as serviceApi } from "./ServiceApi.ts"
export * as DeliveryPath from "./DeliveryPath.ts"
export * as ScheduledDelivery from "./ScheduledDelivery.ts"
export * as LocalTime from "./LocalTime.ts"
export * as Scheduler from "./Scheduler.ts"
export * as MemoryScheduler from "./MemoryScheduler.ts"
export * as RedisScheduler from "./RedisScheduler.ts"
