/**
 * Tickets: a WebSocket is opened with a one-time ticket (`?ticket=...`) that
 * the app trades its JWT for with `POST /v1/tickets` (docs/protocol.md,
 * section 2). The client asks for a new one before every attempt through the
 * app's `getTicket`; `ticketFromJwt` is a ready `getTicket`.
 */
import { clientError, describeError } from "./WeftError.ts"

/** What the client tells `getTicket`: the WebSocket URL it is about to open and the attempt number. */
export interface TicketContext {
  /** The WebSocket URL of this attempt (without the ticket), e.g. `wss://weft.example.com/v1/ws`. */
  readonly url: string
  /** 0 for the first attempt after a connection (or the first ever), then 1, 2, ... while attempts fail. */
  readonly attempt: number
}

export type GetTicket = (context: TicketContext) => string | Promise<string>

export interface TicketFromJwtOptions {
  /** The JWT, or a function giving the current one (called for every ticket, so it can refresh). */
  readonly jwt: string | (() => string | Promise<string>)
  /**
   * The HTTP base of the node to ask (`https://weft.example.com`). Default: the
   * origin of the WebSocket URL being connected to (`wss:` becomes `https:`).
   */
  readonly baseUrl?: string
  /** Default: the global `fetch`. */
  readonly fetch?: (input: string, init: RequestInit) => Promise<Response>
  /** Default 10000 ms. */
  readonly timeoutMs?: number
}

/** `ws://host:port/v1/ws` -> `http://host:port`. */
export const httpBaseOf = (webSocketUrl: string): string => {
  const url = new URL(webSocketUrl)
  const protocol = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : url.protocol
  return `${protocol}//${url.host}`
}

const readTicket = (body: unknown): string | undefined =>
  typeof body === "object" && body !== null && "ticket" in body && typeof body.ticket === "string" && body.ticket.length > 0
    ? body.ticket
    : undefined

/**
 * A `getTicket` that calls `POST {baseUrl}/v1/tickets` with
 * `Authorization: Bearer <jwt>`. Fails with a `WeftError` `ticket_failed`
 * carrying the HTTP `status` (401: the JWT is no longer good; 503: try again).
 */
export const ticketFromJwt = (options: TicketFromJwtOptions): GetTicket => async (context) => {
  const jwt = typeof options.jwt === "string" ? options.jwt : await options.jwt()
  const base = (options.baseUrl ?? httpBaseOf(context.url)).replace(/\/+$/, "")
  const doFetch = options.fetch ?? ((input: string, init: RequestInit) => fetch(input, init))
  let response: Response
  try {
    response = await doFetch(`${base}/v1/tickets`, {
      method: "POST",
      headers: { authorization: `Bearer ${jwt}` },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000)
    })
  } catch (cause) {
    throw clientError("ticket_failed", `POST ${base}/v1/tickets failed: ${describeError(cause)}`, { cause })
  }
  if (response.status !== 200) {
    const text = await response.text().catch(() => "")
    throw clientError("ticket_failed", `POST ${base}/v1/tickets: HTTP ${response.status} ${text}`.trim(), { status: response.status })
  }
  const body: unknown = await response.json().catch(() => undefined)
  const ticket = readTicket(body)
  if (ticket === undefined) throw clientError("ticket_failed", `POST ${base}/v1/tickets: no ticket in the answer`, { status: response.status })
  return ticket
}
