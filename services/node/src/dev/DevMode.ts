/**
 * Dev mode (`--dev`, `WEFT_DEV`; what `npm start` runs): a node for trying
 * Weft on one machine, never for production.
 *
 * - Without a JWT key configured, the node makes a random HS256 secret for
 *   this run (`prepare`), so client JWTs work with no identity provider.
 * - It serves `POST /v1/dev/token` (a JWT for any name) and
 *   `POST /v1/dev/notify` (a notification through the service API's handler),
 *   for the demo page (`DevRoutes`).
 * - The dashboard is open to anyone (`web/Pages`, `web/DashboardFeed`).
 * - It says so, loudly, in its log (`warn`), and prints its URLs (`urls`).
 */
import { Effect, Layer, Redacted } from "effect"
import type { NodeConfig } from "../NodeConfig.ts"

const hasJwtKey = (config: NodeConfig): boolean =>
  config.jwtSecret !== undefined || config.jwtPublicKey !== undefined || config.jwtJwksUrl !== undefined

/** 32 random bytes, base64url: a secret for this run only. */
const randomSecret = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")

/** The configuration to run with: in dev mode without a JWT key, with a random HS256 secret. */
export const prepare = (config: NodeConfig): NodeConfig =>
  config.dev && !hasJwtKey(config) ? { ...config, jwtSecret: Redacted.make(randomSecret()) } : config

/** A warning at start-up, in dev mode: `given` is the configuration as given, before `prepare`. */
export const warn = (given: NodeConfig): Layer.Layer<never> =>
  given.dev
    ? Layer.effectDiscard(
      Effect.logWarning(
        "DEV MODE: anyone who can reach this node can sign in as anyone (POST /v1/dev/token) and read the dashboard; never run it in production"
      ).pipe(
        Effect.annotateLogs({
          jwt: hasJwtKey(given) ? "the configured key" : "a random HS256 secret made for this run (tokens die with the process)"
        })
      )
    )
    : Layer.empty

/** The URLs a person opens, for the start-up log and banner; `0.0.0.0` / `::` shown as `localhost`. */
export const urls = (config: NodeConfig, server: { readonly hostname: string; readonly port: number }) => {
  const host = server.hostname === "0.0.0.0" || server.hostname === "::" ? "localhost" : server.hostname
  const http = `http://${host.includes(":") ? `[${host}]` : host}:${server.port}`
  return {
    ...(config.roles.includes("gateway") ? { demo: `${http}/`, websocket: `${http.replace(/^http/, "ws")}/v1/ws` } : {}),
    ...(config.dev || config.dashboard ? { dashboard: `${http}/dashboard` } : {}),
    metrics: `${http}/metrics`,
    health: `${http}/readyz`
  }
}

/** The plain-text banner `npm start` prints in dev mode. */
export const banner = (links: Readonly<Record<string, string>>): string => {
  const width = Math.max(...Object.keys(links).map((name) => name.length))
  return [
    "",
    "  Weft is running in DEV MODE (anyone can sign in as anyone; not for production)",
    "",
    ...Object.entries(links).map(([name, url]) => `    ${name.padEnd(width)}  ${url}`),
    ""
  ].join("\n")
}
