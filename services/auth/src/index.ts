/**
 * @weft/auth: client JWT verification and one-time connection tickets.
 *
 * - `Grant` (and its claim Schemas): what a verified client may do, made from JWT claims.
 * - `Jwt`: the `JwtVerifier` service (HS256 secret, RS256 public key, RS256 JWKS, or disabled).
 * - `Tickets`: the `Tickets` service (Redis for a cluster, memory for one node).
 * - `Revocations`: users banned for a time (Redis for a cluster, memory for one node).
 * - `Refresh`: a live connection's new JWT, checked for the same user and device.
 * - `DevTokens`: short-lived HS256 JWTs for any name, for a node in dev mode (the demo page).
 * - `routes` (`POST /v1/tickets`) for the node; `Auth` / `redeem` for the gateway's upgrade.
 */
export * from "./Grant.ts"
export * as DevTokens from "./DevTokens.ts"
export * as Jwt from "./Jwt.ts"
export * as Refresh from "./Refresh.ts"
export * as Revocations from "./Revocations.ts"
export * as Tickets from "./Tickets.ts"
export {
  Auth,
  type AuthService,
  Banned,
  IssuedTicket,
  layerAuth,
  redeem,
  RedeemError,
  RedeemReason,
  redeemStatus,
  routes,
  Unauthorized,
  Unavailable
} from "./http.ts"
