/**
 * The node's certificate and key (`--tls-cert`, `--tls-key`), for the HTTP/WebSocket port and the
 * gRPC door. Read once at start-up, so that a missing or unreadable file stops the node naming its
 * path instead of failing the first handshake.
 */
import { Effect } from "effect"
import { readFile } from "node:fs/promises"

export interface TlsFiles {
  /** PEM certificate chain. */
  readonly cert: string
  /** PEM private key. */
  readonly key: string
}

const readPem = (path: string, flag: string) =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (cause) => (cause instanceof Error ? cause.message : String(cause))
  }).pipe(
    Effect.filterOrFail((text) => text.includes("-----BEGIN "), () => "not PEM"),
    Effect.orDieWith((reason) => new Error(`${flag} ${path}: cannot read a PEM file (${reason})`))
  )

/** Both files, or `undefined` when the node serves no TLS (the configuration allows both or neither). */
export const read = (config: {
  readonly tlsCert?: string | undefined
  readonly tlsKey?: string | undefined
}): Effect.Effect<TlsFiles | undefined> =>
  config.tlsCert === undefined || config.tlsKey === undefined
    ? Effect.succeed(undefined)
    : Effect.all({ cert: readPem(config.tlsCert, "--tls-cert"), key: readPem(config.tlsKey, "--tls-key") })
