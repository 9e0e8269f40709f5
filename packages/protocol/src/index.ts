/**
 * @weft/protocol: the client wire protocol. See docs/protocol.md.
 */
export * as Channel from "./Channel.ts"
export * as Codec from "./Codec.ts"
export { ProtocolError } from "./Codec.ts"
export type { Encoding } from "./Codec.ts"
export { CloseCodes, ErrorCodes } from "./ErrorCode.ts"
export type { ErrorName } from "./ErrorCode.ts"
export * as Frame from "./Frame.ts"
export type { ClientFrame, ServerFrame } from "./Frame.ts"
