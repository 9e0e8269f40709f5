/**
 * Real Bun nodes and SDK clients for the end-to-end tests. Nodes listen on
 * 127.0.0.1 with the test JWT secret; clients run under Node with the `ws`
 * package injected as their WebSocket (Node 20 has no global one), get their
 * tickets through the SDK's own `ticketFromJwt`, and record what happens to
 * them. `stopAll` kills every node and closes every client.
 */
import IORedis from "ioredis"
import WebSocket from "ws"
import { type RunningNode, startListeningNode } from "../../../../test/support/bunNode.ts"
import { freePort, redisUrl, uniqueCluster } from "../../../../test/support/ports.ts"
import { type NodeReadiness, waitUntil, waitUntilSettled } from "../../../../test/support/wait.ts"
import { type Claims, jwtSecret, makeJwt } from "../../../../test/support/wsClient.ts"
import {
  type ChannelMessage,
  type ClientOptions,
  createClient,
  type DisconnectedEvent,
  type Position,
  type StateEvent,
  ticketFromJwt,
  type WeftClient,
  type WeftError,
  type WeftEvents
} from "../../src/index.ts"

export { jwtSecret, makeJwt }

const nodes: Array<RunningNode> = []
const clients: Array<WeftClient> = []
const clusters: Array<string> = []

export const startSingleNode = async (args: ReadonlyArray<string> = []): Promise<RunningNode> => {
  const node = await startListeningNode(["--jwt-secret", jwtSecret, ...args])
  nodes.push(node)
  return node
}

const isReadiness = (value: unknown): value is NodeReadiness =>
  typeof value === "object" && value !== null && "ready" in value && typeof value.ready === "boolean" &&
  "shardsHeld" in value && typeof value.shardsHeld === "number"

const readiness = async (node: RunningNode): Promise<NodeReadiness> => {
  const body: unknown = await (await fetch(`${node.url()}/readyz`, { signal: AbortSignal.timeout(5000) })).json()
  if (!isReadiness(body)) throw new Error(`unexpected /readyz body ${JSON.stringify(body)}`)
  return { ready: body.ready, shardsHeld: body.shardsHeld, shardGroups: "shardGroups" in body && Array.isArray(body.shardGroups) ? body.shardGroups.map(String) : [] }
}

/** `count` nodes of one cluster over the real Redis, with short shard locks, once their shards settle. */
export const startCluster = async (label: string, count: number, args: ReadonlyArray<string> = []): Promise<Array<RunningNode>> => {
  const cluster = uniqueCluster(label)
  clusters.push(cluster)
  const runnerPorts = await Promise.all(Array.from({ length: count }, () => freePort()))
  const started = await Promise.all(runnerPorts.map(async (runnerPort, i) => {
    const node = await startListeningNode([
      "--jwt-secret", jwtSecret,
      "--node-id", `${label}-${i}`,
      "--redis-url", redisUrl,
      "--cluster", cluster,
      "--runner-host", "127.0.0.1",
      "--runner-port", String(runnerPort),
      "--lock-expiration-ms", "2000",
      ...args
    ])
    nodes.push(node)
    return node
  }))
  await waitUntilSettled(() => Promise.all(started.map(readiness)), 300, 40_000)
  return started
}

/** Closes every client made so far (the nodes keep running). */
export const closeClients = async (): Promise<void> => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
}

/** Kills every node (resuming stopped ones first), closes every client, and removes the clusters' Redis keys. */
export const stopAll = async (): Promise<void> => {
  await closeClients()
  for (const node of nodes.splice(0)) {
    node.kill("SIGCONT")
    node.kill("SIGKILL")
  }
  await removeClusterKeys(clusters.splice(0))
}

/** Deletes the Redis keys of the given clusters. */
export const removeClusterKeys = async (names: ReadonlyArray<string>): Promise<void> => {
  if (names.length === 0) return
  const redis = new IORedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    for (const cluster of names) {
      const keys = await redis.keys(`weft:{${cluster}}:*`)
      if (keys.length > 0) await redis.del(...keys)
    }
  } finally {
    redis.disconnect()
  }
}

export interface Received {
  readonly body: unknown
  readonly position: Position | undefined
}

/** A room's `message` events as (body, position); other room events (typing...) are left out. */
export const roomMessages = () => {
  const received: Array<Received> = []
  const handler = (message: ChannelMessage) => {
    const data = message.data
    if (typeof data === "object" && data !== null && "kind" in data && data.kind === "message" && "body" in data) {
      received.push({ body: data.body, position: message.position })
    }
  }
  return { received, handler }
}

export const wsUrlOf = (node: RunningNode): string => `${node.url().replace(/^http/, "ws")}/v1/ws`

export interface Recorded {
  readonly client: WeftClient
  /** Every ticket getTicket returned, in order. */
  readonly tickets: Array<string>
  /** Every URL a WebSocket was opened on (with its ticket). */
  readonly socketUrls: Array<string>
  readonly states: Array<StateEvent>
  readonly errors: Array<WeftError>
  readonly disconnects: Array<DisconnectedEvent>
  readonly messages: Array<ChannelMessage>
}

/**
 * How a client reaches the nodes when plain HTTP and `ws` will not do: a node behind a balancer's
 * TLS entry with a self-signed certificate needs it trusted both by the `fetch` that asks for
 * tickets and by the sockets (test/deploy/support/tlsClient.ts).
 */
export interface Transport {
  readonly fetch: (input: string, init: RequestInit) => Promise<Response>
  readonly socketOptions: WebSocket.ClientOptions
}

/**
 * An SDK client for `claims`, over `ws` (with `transport` when given), recording its tickets,
 * sockets, states, errors and messages.
 */
export const sdkClient = (
  url: string | ReadonlyArray<string>,
  claims: Claims,
  options: Omit<Partial<ClientOptions>, "url" | "getTicket" | "WebSocket"> = {},
  transport?: Transport
): Recorded => {
  const tickets: Array<string> = []
  const socketUrls: Array<string> = []
  const jwt = () => makeJwt(claims)
  const fromJwt = ticketFromJwt(transport === undefined ? { jwt } : { jwt, fetch: transport.fetch })
  class RecordingWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | Array<string>) {
      socketUrls.push(address)
      super(address, protocols, transport?.socketOptions)
    }
  }
  const client = createClient({
    url,
    getTicket: async (context) => {
      const ticket = await fromJwt(context)
      tickets.push(ticket)
      return ticket
    },
    WebSocket: RecordingWebSocket,
    ...options
  })
  clients.push(client)
  const recorded: Recorded = { client, tickets, socketUrls, states: [], errors: [], disconnects: [], messages: [] }
  client.on("state", (event) => recorded.states.push(event))
  client.on("error", (error) => recorded.errors.push(error))
  client.on("disconnected", (event) => recorded.disconnects.push(event))
  client.on("message", (message) => recorded.messages.push(message))
  return recorded
}

/** Waits (bounded) until `check` holds. */
export const eventually = (what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> =>
  waitUntil(what, async () => check(), timeoutMs)

/** Resolves with the next event of `type` matching `predicate`, or rejects after `timeoutMs`. */
export const nextEvent = <K extends keyof WeftEvents>(
  client: WeftClient,
  type: K,
  predicate: (event: WeftEvents[K]) => boolean = () => true,
  timeoutMs = 15_000
): Promise<WeftEvents[K]> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no ${type} event within ${timeoutMs} ms`))
    }, timeoutMs)
    const off = client.on(type, (event) => {
      if (!predicate(event)) return
      clearTimeout(timer)
      off()
      resolve(event)
    })
  })
