/**
 * SDK clients that reach the nodes only through a balancer's TLS entry, trusting its
 * self-signed certificate: WebSockets over `ws` with the certificate as CA, and tickets fetched
 * through the SDK's own `ticketFromJwt` with an HTTPS `fetch` that trusts it too (Node's global
 * `fetch` takes no CA). Each client records its tickets and disconnections; `closeAll` closes them all.
 */
import { request } from "node:https"
import WebSocket from "ws"
import {
  type ClientOptions,
  createClient,
  type DisconnectedEvent,
  ticketFromJwt,
  type WeftClient
} from "../../../packages/client/src/index.ts"
import { type Claims, makeJwt } from "../../support/wsClient.ts"

const clients: Array<WeftClient> = []

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

export interface TlsClient {
  readonly client: WeftClient
  /** Every ticket the client got, one per connection attempt. */
  readonly tickets: Array<string>
  readonly disconnects: Array<DisconnectedEvent>
}

/** An SDK client for `claims` connecting to `url` (through the balancer), trusting `ca`. */
export const tlsSdkClient = (
  url: string,
  claims: Claims,
  ca: string,
  options: Omit<Partial<ClientOptions>, "url" | "getTicket" | "WebSocket"> = {}
): TlsClient => {
  class TrustingWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | Array<string>) {
      super(address, protocols, { ca })
    }
  }
  const tickets: Array<string> = []
  const fromJwt = ticketFromJwt({ jwt: () => makeJwt(claims), fetch: httpsFetch(ca) })
  const client = createClient({
    url,
    getTicket: async (context) => {
      const ticket = await fromJwt(context)
      tickets.push(ticket)
      return ticket
    },
    WebSocket: TrustingWebSocket,
    ...options
  })
  clients.push(client)
  const recorded: TlsClient = { client, tickets, disconnects: [] }
  client.on("disconnected", (event) => recorded.disconnects.push(event))
  return recorded
}

export const closeAll = async (): Promise<void> => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
}
