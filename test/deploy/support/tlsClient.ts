/**
 * SDK clients that reach the nodes only through a balancer's TLS entry, trusting its
 * self-signed certificate: WebSockets over `ws` with the certificate as CA, and tickets fetched
 * through the SDK's own `ticketFromJwt` with an HTTPS `fetch` that trusts it too (Node's global
 * `fetch` takes no CA). They are the client package's recording test clients (`sdkClient`) given
 * that transport; `closeAll` closes them all.
 */
import { request } from "node:https"
import type { ClientOptions } from "../../../packages/client/src/index.ts"
import { closeClients, type Recorded, sdkClient } from "../../../packages/client/test/support/nodes.ts"
import type { Claims } from "../../support/wsClient.ts"

/** A `fetch` for `https://127.0.0.1` URLs signed by `ca`: method, headers and signal, whole bodies. */
export const httpsFetch = (ca: string) => (input: string, init: RequestInit = {}): Promise<Response> =>
  new Promise((resolve, reject) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries())
    const outgoing = request(input, { method: init.method ?? "GET", headers, ca, signal: init.signal ?? undefined }, (incoming) => {
      const chunks: Array<Buffer> = []
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk))
      incoming.on("error", reject)
      incoming.on("end", () => {
        const body = Buffer.concat(chunks)
        const responseHeaders = new Headers()
        for (const [name, value] of Object.entries(incoming.headers)) {
          if (typeof value === "string") responseHeaders.set(name, value)
        }
        resolve(new Response(body.length === 0 ? null : body, { status: incoming.statusCode ?? 500, headers: responseHeaders }))
      })
    })
    outgoing.on("error", reject)
    outgoing.end()
  })

/** A client through the balancer: its `tickets` (one per connection attempt), `disconnects` and the rest `sdkClient` records. */
export type TlsClient = Recorded

/** An SDK client for `claims` connecting to `url` (through the balancer), trusting `ca`. */
export const tlsSdkClient = (
  url: string,
  claims: Claims,
  ca: string,
  options: Omit<Partial<ClientOptions>, "url" | "getTicket" | "WebSocket"> = {}
): TlsClient => sdkClient(url, claims, options, { fetch: httpsFetch(ca), socketOptions: { ca } })

/** Closes every SDK client, these included, before the balancer stops (the nodes keep running). */
export const closeAll = closeClients
