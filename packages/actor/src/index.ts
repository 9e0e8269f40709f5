/**
 * @weft/actor: the local actor runtime. Pure Effect; runs on Bun, Node and Deno.
 */
export * as Actor from "./Actor.ts"
export type { ActorContext, ActorDefinition, ActorRef, Behavior, Handlers, Message } from "./Actor.ts"
export { ActorAddress } from "./ActorAddress.ts"
export * from "./ActorError.ts"
export * as ActorMetrics from "./ActorMetrics.ts"
export { ActorSystem } from "./ActorSystem.ts"
export type { Config as ActorSystemConfig, DeadLetter, KindStats } from "./ActorSystem.ts"
export * as Mailbox from "./Mailbox.ts"
export * as Supervision from "./Supervision.ts"
export * as Termination from "./Termination.ts"
export { Terminated, type TerminationReason } from "./Termination.ts"
export * as BatchLanes from "./BatchLanes.ts"
