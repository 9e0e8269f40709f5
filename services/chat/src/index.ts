/**
 * @weft/chat: the chat role. Room entities, their history and their part of
 * the client protocol.
 */
export * from "./Room.ts"
export * as RoomEvent from "./RoomEvent.ts"
export * as History from "./History.ts"
export * as Members from "./Members.ts"
export * as MemoryHistory from "./MemoryHistory.ts"
export * as RedisHistory from "./RedisHistory.ts"
export { layer as gatewayExtension } from "./gateway.ts"
export { routes } from "./http.ts"
