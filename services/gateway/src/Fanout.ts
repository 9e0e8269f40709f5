/**
 * Channel fan-out. A publish is encoded once (a msgpack `message` frame) and
 * crosses to every node with subscribers once, on the cluster topic
 * `ch:<channel>`; each node hands those same bytes to Bun's native topic
 * publish for its msgpack sockets, and re-encodes them to JSON once if it has
 * JSON sockets on the channel. Never one send per recipient in our code.
 *
 * A node subscribes to a channel's cluster topic while at least one of its
 * sockets is subscribed (reference counted here; ClusterTopics keeps one
 * Redis subscription per topic per node).
 */
import { ClusterTopics } from "@weft/cluster"
import { Codec, type Frame } from "@weft/protocol"
import { Context, Deferred, Effect, Exit, FiberId, Layer, Scope } from "effect"
import * as GatewayMetrics from "./GatewayMetrics.ts"
import { Sockets, type Socket } from "./Sockets.ts"

export interface FanoutService {
  /** Subscribes the socket; resolves once the node hears the channel from every node. */
  readonly subscribe: (socket: Socket, channel: string) => Effect.Effect<void, ClusterTopics.TopicError>
  /**
   * Subscribes the socket to a channel with history, without a gap or a repeat: the node
   * listens first and buffers the channel's live messages while `catchUp` runs; then, in one
   * synchronous step, the socket gets the catch-up messages, the buffered ones after the
   * catch-up's position, and joins the live fan-out.
   */
  readonly subscribeAfter: <E>(
    socket: Socket,
    channel: string,
    catchUp: Effect.Effect<CatchUp, E>,
    /** Called in the switching step, before the catch-up messages: the subscriber's answer goes first. */
    first: (result: CatchUp) => void
  ) => Effect.Effect<CatchUp, E | ClusterTopics.TopicError>
  readonly unsubscribe: (socket: Socket, channel: string) => Effect.Effect<void>
  /** Delivers a `message` frame to every subscriber of its channel on every node. */
  readonly publish: (message: typeof Frame.Message.Type) => Effect.Effect<void, ClusterTopics.TopicError>
  /** Channels this node listens to, for metrics. */
  readonly channels: () => number
}

export class Fanout extends Context.Tag("@weft/gateway/Fanout")<Fanout, FanoutService>() {}

/** What a channel's owner sends a subscriber first: the messages it missed, and where they end. */
export interface CatchUp {
  readonly position?: typeof Frame.Position.Type
  readonly messages: ReadonlyArray<typeof Frame.Message.Type>
}

/** The cluster topic a channel's messages travel on between nodes. */
export const clusterTopic = (channel: string): string => `ch:${channel}`
/** Bun topics, one per encoding: a socket subscribes to the one of its protocol. */
export const bunTopic = (channel: string, encoding: Codec.Encoding): string => `${encoding === "msgpack" ? "m" : "j"}:${channel}`

/** The sizes of a msgpack number with its marker byte, the likeliest for an epoch-ms `at` (float 64) first. */
const numberSizes = [9, 5, 3, 2, 1] as const

/**
 * The `at` (epoch ms) of a msgpack `message` frame as `Codec.encodeServerFrame` writes it, read
 * from its last bytes without decoding the rest: `at` is the last field of `Frame.Message`, so
 * the frame ends with the key `at` and one msgpack number. `undefined` when it does not (the
 * caller then records nothing). For the fan-out latency metric: O(1) per message and node.
 */
export const acceptedAt = (bytes: Uint8Array): number | undefined => {
  const end = bytes.length
  for (const size of numberSizes) {
    const start = end - size
    const key = start - 3
    if (key < 0 || bytes[key] !== 0xa2 || bytes[key + 1] !== 0x61 || bytes[key + 2] !== 0x74) continue
    const marker = bytes[start]!
    const view = new DataView(bytes.buffer, bytes.byteOffset + start + 1, size - 1)
    switch (size) {
      case 9:
        if (marker === 0xcb) return view.getFloat64(0)
        if (marker === 0xcf) return Number(view.getBigUint64(0))
        if (marker === 0xd3) return Number(view.getBigInt64(0))
        break
      case 5:
        if (marker === 0xce) return view.getUint32(0)
        if (marker === 0xca) return view.getFloat32(0)
        if (marker === 0xd2) return view.getInt32(0)
        break
      case 3:
        if (marker === 0xcd) return view.getUint16(0)
        if (marker === 0xd1) return view.getInt16(0)
        break
      case 2:
        if (marker === 0xcc) return view.getUint8(0)
        if (marker === 0xd0) return view.getInt8(0)
        break
      case 1:
        if (marker <= 0x7f) return marker
        break
    }
  }
  return undefined
}

interface Listening {
  /** Local sockets subscribed (or subscribing). */
  count: number
  /** Sockets catching up: they get each live message here until they join the fan-out. */
  readonly buffers: Set<(bytes: Uint8Array) => void>
  readonly scope: Scope.CloseableScope
  /** Completes when the cluster subscription is confirmed (or failed). */
  readonly ready: Deferred.Deferred<void, ClusterTopics.TopicError>
}

export const make = Effect.gen(function*() {
  const topics = yield* ClusterTopics.ClusterTopics
  const sockets = yield* Sockets
  const listening = new Map<string, Listening>()

  const deliver = (channel: string) => (bytes: Uint8Array): void => {
    const entry = listening.get(channel)
    if (entry !== undefined) for (const buffer of entry.buffers) buffer(bytes)
    const server = sockets.server()
    if (server === undefined) return
    const msgpack = bunTopic(channel, "msgpack")
    const at = acceptedAt(bytes)
    if (at !== undefined) GatewayMetrics.recordFanout(at, Date.now())
    server.publish(msgpack, bytes)
    GatewayMetrics.recordOut("message", server.subscriberCount(msgpack))
    const json = bunTopic(channel, "json")
    const jsonSubscribers = server.subscriberCount(json)
    if (jsonSubscribers > 0) {
      server.publish(json, Codec.msgpackToJson(bytes))
      GatewayMetrics.recordOut("message", jsonSubscribers)
    }
  }

  const release = (channel: string, entry: Listening): Effect.Effect<void> =>
    Effect.suspend(() => {
      entry.count--
      if (entry.count > 0 || listening.get(channel) !== entry) return Effect.void
      listening.delete(channel)
      GatewayMetrics.setChannels(listening.size)
      return Scope.close(entry.scope, Exit.void)
    })

  const listen = (channel: string): Effect.Effect<Listening, ClusterTopics.TopicError> =>
    Effect.suspend(() => {
      const existing = listening.get(channel)
      if (existing !== undefined) {
        existing.count++
        return Effect.as(Deferred.await(existing.ready), existing).pipe(Effect.tapError(() => release(channel, existing)))
      }
      // Made and registered in one synchronous step, so a second subscriber arriving while
      // the Redis SUBSCRIBE is in flight joins this entry instead of subscribing again.
      const entry: Listening = {
        count: 1,
        buffers: new Set(),
        scope: Effect.runSync(Scope.make()),
        ready: Deferred.unsafeMake(FiberId.none)
      }
      listening.set(channel, entry)
      GatewayMetrics.setChannels(listening.size)
      return topics.subscribe(clusterTopic(channel), deliver(channel)).pipe(
        Scope.extend(entry.scope),
        Effect.exit,
        Effect.flatMap((exit) => Effect.zipRight(Deferred.done(entry.ready, exit), exit)),
        Effect.as(entry),
        Effect.tapError(() => release(channel, entry))
      )
    })

  /** The synchronous switch from catching up to live: nothing can be published in between. */
  const join = (socket: Socket, channel: string, buffered: ReadonlyArray<Uint8Array>, result: CatchUp): void => {
    for (const message of result.messages) sockets.send(socket, message)
    const after = result.position
    for (const bytes of buffered) {
      const decoded = Codec.decodeServerFrame(bytes, "msgpack")
      if (decoded._tag === "Left" || decoded.right.type !== "message") continue
      const position = decoded.right.position
      // Published before the catch-up was read: already in it.
      if (after !== undefined && position !== undefined && position.epoch === after.epoch && position.offset <= after.offset) {
        continue
      }
      const sent = socket.data.encoding === "msgpack" ? socket.sendBinary(bytes) : socket.sendText(Codec.msgpackToJson(bytes))
      if (sent === 0) GatewayMetrics.recordDropped("message")
      else GatewayMetrics.recordOut("message", 1)
    }
    socket.subscribe(bunTopic(channel, socket.data.encoding))
  }

  const service: FanoutService = {
    subscribe: (socket, channel) =>
      Effect.flatMap(listen(channel), () =>
        Effect.sync(() => {
          socket.subscribe(bunTopic(channel, socket.data.encoding))
        })),
    unsubscribe: (socket, channel) =>
      Effect.suspend(() => {
        if (!socket.data.closing) socket.unsubscribe(bunTopic(channel, socket.data.encoding))
        const entry = listening.get(channel)
        return entry === undefined ? Effect.void : release(channel, entry)
      }),
    subscribeAfter: (socket, channel, catchUp, first) =>
      Effect.flatMap(listen(channel), (entry) => {
        const buffered: Array<Uint8Array> = []
        const buffer = (bytes: Uint8Array) => void buffered.push(bytes)
        entry.buffers.add(buffer)
        return catchUp.pipe(
          Effect.tap((result) =>
            Effect.sync(() => {
              entry.buffers.delete(buffer)
              if (socket.data.closing) return
              first(result)
              join(socket, channel, buffered, result)
            })
          ),
          Effect.tapErrorCause(() =>
            Effect.zipRight(Effect.sync(() => entry.buffers.delete(buffer)), release(channel, entry))
          )
        )
      }),
    publish: (message) =>
      Effect.suspend(() => topics.publish(clusterTopic(message.channel), Codec.toBytes(Codec.encodeServerFrame(message, "msgpack")))),
    channels: () => listening.size
  }
  yield* Effect.addFinalizer(() =>
    Effect.forEach(Array.from(listening.values()), (entry) => Scope.close(entry.scope, Exit.void), { discard: true })
  )
  return service
})

export const layer: Layer.Layer<Fanout, never, ClusterTopics.ClusterTopics | Sockets> = Layer.scoped(Fanout, make)
