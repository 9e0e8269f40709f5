/**
 * NATS JetStream (`@nats-io/jetstream` over `@nats-io/transport-node`): a
 * durable pull consumer on the configured stream, shared by every node of
 * the cluster (each pulls what it has room for). Weft creates the consumer
 * if it is missing (explicit ack, ack wait = `holdMs`, new messages only) and
 * keeps its ack wait in line with the config; the stream is the operator's.
 *
 * - ack: once the delivery path accepted the event; while it works on one,
 *   the node signals progress (`working`) so that no other node takes it.
 * - retry: `nak` with a delay growing with the delivery count.
 * - dead letter: the body is published to the dead-letter subject with
 *   `Weft-Dead-Letter-Reason` / `-Message` and `Weft-Source-*` headers (through
 *   JetStream when a stream keeps the subject at subscription time, else as a
 *   plain message), then the event is terminated (`term`), never redelivered.
 * - a node that dies leaves its unacked events to the others after the ack wait.
 * - the bus's message id: `Nats-Msg-Id` when the publisher set one, else `<stream>:<sequence>`.
 */
import { AckPolicy, DeliverPolicy, jetstream, JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JsMsg } from "@nats-io/jetstream"
import { connect, headers, nanos, NoRespondersError, RequestError } from "@nats-io/transport-node"
import { Duration, Effect, Stream } from "effect"
import type { BusEvent } from "../Pipeline.ts"
import { type Message, type Source, SourceError } from "../Source.ts"

export interface Options {
  /** Server URLs (`nats://host:4222`); the client tries each. */
  readonly servers: ReadonlyArray<string>
  readonly stream: string
  /** The durable consumer's name, shared by the cluster's nodes. */
  readonly durable: string
  readonly deadLetterSubject: string
  /** The consumer's ack wait: how long an unacked event stays with a node before another may take it. */
  readonly holdMs: number
  /** The connection's name, for the server's monitoring. */
  readonly connectionName: string
}

const failure = (what: string) => (cause: unknown) =>
  new SourceError({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const attempt = <A>(what: string, run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: failure(what) })

const act = (what: string, run: () => void) => Effect.try({ try: run, catch: failure(what) })

/** Header values are one line. */
const oneLine = (text: string, max = 1000): string => text.replace(/[\r\n]+/g, " ").slice(0, max)

const isApiError = (error: unknown, code: number): boolean => error instanceof JetStreamApiError && error.code === code

/** A JetStream publish that no stream answered (the client reports it as "jetstream is not enabled", the no-responders error as its cause). */
const noStreamKeeps = (error: unknown): boolean => {
  for (let link: unknown = error, depth = 0; link instanceof Error && depth < 5; link = link.cause, depth++) {
    if (link instanceof NoRespondersError || (link instanceof RequestError && link.isNoResponders())) return true
  }
  return false
}

export const make = (options: Options): Source => {
  const { deadLetterSubject, durable, stream } = options
  return {
    name: "nats",
    describe: `nats ${options.servers.join(",")} stream ${stream} consumer ${durable}`,
    subscribe: Effect.gen(function*() {
      const nc = yield* Effect.acquireRelease(
        attempt("cannot connect to NATS", () =>
          connect({ servers: [...options.servers], name: options.connectionName, maxReconnectAttempts: -1, reconnectTimeWait: 1000 })),
        // Closed, not drained: what this node has not acked, the consumer gives to another after the ack wait.
        (nc) => Effect.promise(() => nc.close().catch(() => undefined))
      )
      const jsm = yield* attempt("JetStream is not available", () => jetstreamManager(nc))
      yield* attempt(`stream ${stream}`, () => jsm.streams.info(stream))
      // A dead-letter subject that feeds the source stream would bring every poison event back.
      const capturing = yield* Effect.promise(() => jsm.streams.find(deadLetterSubject).catch(() => undefined))
      if (capturing === stream) {
        return yield* new SourceError({
          message: `the dead-letter subject ${deadLetterSubject} is in the source stream ${stream}; choose another --ingest-nats-dead-letter-subject`
        })
      }
      // Through JetStream when a stream keeps the subject; else a plain message (a JetStream publish
      // that a plain subscriber hears but no stream answers would wait for its timeout every time).
      const durableDeadLetters = capturing !== undefined
      if (!durableDeadLetters) {
        yield* Effect.logWarning("ingest: no JetStream stream keeps the dead-letter subject; dead letters go out as plain messages").pipe(
          Effect.annotateLogs({ subject: deadLetterSubject })
        )
      }
      const ackWait = nanos(options.holdMs)
      const info = yield* Effect.tryPromise({
        try: () => jsm.consumers.info(stream, durable),
        catch: (error) => error
      }).pipe(
        Effect.catchIf((error) => isApiError(error, JetStreamApiCodes.ConsumerNotFound), () =>
          attempt(`cannot create the consumer ${durable}`, () =>
            jsm.consumers.add(stream, {
              durable_name: durable,
              ack_policy: AckPolicy.Explicit,
              ack_wait: ackWait,
              deliver_policy: DeliverPolicy.New
            }))),
        Effect.mapError(failure(`consumer ${durable} on stream ${stream}`))
      )
      if (info.config.ack_wait !== ackWait) {
        yield* attempt(`cannot update the consumer ${durable}`, () => jsm.consumers.update(stream, durable, { ack_wait: ackWait }))
      }
      const js = jetstream(nc)
      const consumer = yield* attempt(`consumer ${durable}`, () => js.consumers.get(stream, durable))

      const deadLetter = (m: JsMsg, reason: string, message: string) =>
        Effect.gen(function*() {
          const h = headers()
          for (const key of m.headers?.keys() ?? []) {
            // The server's own headers (`Nats-Msg-Id` would make the dead-letter stream drop a second poison event).
            if (key.toLowerCase().startsWith("nats-")) continue
            for (const value of m.headers?.values(key) ?? []) h.append(key, value)
          }
          h.set("Weft-Dead-Letter-Reason", reason)
          h.set("Weft-Dead-Letter-Message", oneLine(message))
          h.set("Weft-Source-Stream", stream)
          h.set("Weft-Source-Subject", m.subject)
          h.set("Weft-Source-Sequence", String(m.seq))
          const plain = act("cannot publish the dead letter", () => nc.publish(deadLetterSubject, m.data, { headers: h }))
          yield* durableDeadLetters
            ? Effect.tryPromise({ try: () => js.publish(deadLetterSubject, m.data, { headers: h }), catch: (error) => error }).pipe(
              // The stream went away since: as a plain message.
              Effect.catchIf(noStreamKeeps, () => plain),
              Effect.mapError(failure("cannot publish the dead letter"))
            )
            : plain
          // Without a reason: servers before 2.10.4 ignore `+TERM <reason>` (and redeliver); the reason is in the dead letter.
          yield* act("cannot terminate the event", () => m.term())
        })

      const toMessage = (m: JsMsg): Message => {
        const msgId = m.headers?.get("Nats-Msg-Id") ?? ""
        const event: BusEvent = {
          source: "nats",
          subject: m.subject,
          body: m.data,
          busId: msgId === "" ? `${stream}:${m.seq}` : msgId,
          publishedAt: Math.floor(Number(m.info.timestampNanos) / 1e6),
          deliveries: m.info.deliveryCount
        }
        return {
          event,
          ack: act("cannot ack", () => m.ack()),
          retry: (delay) => act("cannot nak", () => m.nak(Duration.toMillis(delay))),
          deadLetter: (reason, message) => deadLetter(m, reason, message),
          working: Effect.ignore(act("working", () => m.working()))
        }
      }

      return {
        pull: (max, take) =>
          Effect.acquireUseRelease(
            attempt("cannot fetch", () => consumer.fetch({ max_messages: max, expires: 1000 })),
            (batch) => Stream.runForEach(Stream.fromAsyncIterable(batch, failure("fetch failed")), (m) => take(toMessage(m))),
            (batch) => Effect.sync(() => batch.stop())
          ),
        lag: Effect.map(attempt("consumer info", () => jsm.consumers.info(stream, durable)), (info) => info.num_pending)
      }
    })
  }
}
