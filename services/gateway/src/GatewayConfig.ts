/**
 * The gateway's limits. Every one is a node flag and environment variable
 * (services/node/src/NodeConfig.ts) and is documented in docs/protocol.md.
 */
import { Context } from "effect"

export interface GatewayConfig {
  readonly nodeId: string
  /** `undefined`: any Origin may connect. */
  readonly allowedOrigins: ReadonlyArray<string> | undefined
  readonly maxFrameBytes: number
  readonly ratePerSecond: number
  readonly rateBurst: number
  readonly maxSubscriptions: number
  readonly heartbeatMs: number
  readonly slowConsumerBytes: number
  readonly slowConsumerPolicy: "disconnect" | "drop"
  /** How long before its credentials expire a connection is sent `refresh-required` (ms). */
  readonly refreshMarginMs: number
  /** How long after its credentials expired a connection without a refresh is kept (ms); then 4003. */
  readonly expiryGraceMs: number
}

export class GatewayConfigService extends Context.Tag("@weft/gateway/GatewayConfig")<GatewayConfigService, GatewayConfig>() {}

/** Sustained abuse: this many rate-limited frames within `abuseWindowMs` closes the connection (1008). */
export const abuseThreshold = 50
export const abuseWindowMs = 10_000
