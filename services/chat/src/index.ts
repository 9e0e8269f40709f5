/**
 * @weft/chat: the chat role. Room entities, their history and their part of
 * the client protocol.
 */
export * from "./Room.ts"
export * as RoomEvent from "./RoomEvent.ts"
export * as Members from "./Members.ts"
export * as ActiveRooms from "./ActiveRooms.ts"
export { layer as gatewayExtension } from "./gateway.ts"
export { routes } from "./http.ts"
