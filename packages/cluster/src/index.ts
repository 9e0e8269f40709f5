/**
 * @weft/cluster: Weft's cluster on @effect/cluster.
 */
export * as ActorMail from "./ActorMail.ts"
export * as ClusterMetrics from "./ClusterMetrics.ts"
export * as ClusterNode from "./ClusterNode.ts"
export * as ClusterTopics from "./ClusterTopics.ts"
export * as Directory from "./Directory.ts"
export * as Entities from "./Entities.ts"
export * as History from "./History.ts"
export * as MemoryHistory from "./MemoryHistory.ts"
export * as MemoryRunnerStorage from "./MemoryRunnerStorage.ts"
export * as NodeLeases from "./NodeLeases.ts"
export * as NodeStats from "./NodeStats.ts"
export * as Redis from "./Redis.ts"
export * as RedisHistory from "./RedisHistory.ts"
export * as RedisRunnerStorage from "./RedisRunnerStorage.ts"
