/**
 * @weft/client: the Weft client SDK. Connect, subscribe, publish and receive
 * over one WebSocket that heals itself; see the README for the options,
 * events, errors and the offline queue.
 */
export { backoffDelay, goodbyeDelay } from "./Backoff.ts"
export type { BackoffOptions } from "./Backoff.ts"
export { createClient, systemClock, webSocketUrl } from "./Client.ts"
export type {
  ClientOptions,
  Clock,
  Encoding,
  HeartbeatOptions,
  MessageHandler,
  OfflineQueueOptions,
  PublishAck,
  ReconnectOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  UrlContext,
  WeftClient
} from "./Client.ts"
export type {
  BroadcastNotificationEvent,
  ChannelMessage,
  ConnectedEvent,
  ConnectionInfo,
  ConnectionState,
  DisconnectedEvent,
  GoodbyeAdvice,
  NotificationEvent,
  PresenceEvent,
  ReadEvent,
  RefreshEvent,
  RefreshRequiredEvent,
  RoomNotificationEvent,
  SignalEvent,
  StateEvent,
  SubscribedEvent,
  UnsubscribedEvent,
  UserNotificationEvent,
  WeftEvents
} from "./Events.ts"
export type { Listener } from "./Emitter.ts"
export { browserHints } from "./Hints.ts"
export type { Hint, HintSource } from "./Hints.ts"
export { broadcastChannel } from "./MessageEvents.ts"
export { isAfter } from "./Position.ts"
export type { Position } from "./Position.ts"
export type {
  HistoryOptions,
  RoomAccepted,
  RoomHistory,
  RoomMember,
  RoomMethods,
  RoomPin,
  RoomSent,
  RoomSettings,
  Rpc,
  SendOptions
} from "./RoomMethods.ts"
export type { WebSocketConstructor, WebSocketLike } from "./Socket.ts"
export { httpBaseOf, ticketFromJwt } from "./Ticket.ts"
export type { GetTicket, TicketContext, TicketFromJwtOptions } from "./Ticket.ts"
export type {
  InboxEntry,
  InboxNotification,
  InboxPage,
  ListOptions,
  NotificationMethods,
  SendSignal,
  SignalOptions
} from "./UserMethods.ts"
export { categoryOf, ClientErrorCodes, isWeftError, ServerErrorCodes, WeftError } from "./WeftError.ts"
export type { ClientErrorName, ServerErrorName, WeftErrorCategory, WeftErrorDetails, WeftErrorName } from "./WeftError.ts"
