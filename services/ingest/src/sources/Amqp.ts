/**
 * RabbitMQ (AMQP 0-9-1, `amqplib`): a durable queue with competing consumers
 * across the nodes, each with a prefetch of `maxInFlight` unacked messages.
 * Weft declares what it consumes from: the queue (durable, with its
 * dead-letter exchange), the dead-letter exchange `<queue>.dead-letter`
 * (fanout) and queue `<queue>.dead-letter`, and, when an exchange is given,
 * that topic exchange with the queue bound to it for every routing key (`#`).
 *
 * - ack: once the delivery path accepted the event.
 * - retry: the node holds the message for the delay (its prefetch slot stays
 *   taken: consumption slows while the delivery path is down), then rejects it
 *   with requeue.
 * - dead letter: republished on the dead-letter exchange (publisher confirms)
 *   with `x-weft-dead-letter-reason` / `-message` and `x-weft-source-queue`
 *   headers, then acked; if that publish fails, rejected without requeue, so
 *   that the broker dead-letters it itself (with its `x-death` header).
 * - a node that dies: the broker requeues its unacked messages for the others at once.
 * - the bus's message id: the `message-id` property (without it, and without an
 *   idempotency key, a redelivered event may reach a device twice).
 */
import amqp from "amqplib"
import type { ConsumeMessage, MessagePropertyHeaders } from "amqplib"
import { Deferred, Duration, Effect, Exit, Option, Queue } from "effect"
import type { BusEvent } from "../Pipeline.ts"
import { type Message, type Source, SourceError } from "../Source.ts"

export interface Options {
  /** `amqp://user:password@host:5672/vhost`. */
  readonly url: string
  /** The URL without credentials, for logs. */
  readonly publicUrl: string
  readonly queue: string
  /** A topic exchange to bind the queue to (every routing key); none: the publishers send to the queue. */
  readonly exchange: string | undefined
  /** Unacked messages the broker gives this node at most. */
  readonly prefetch: number
  readonly connectionName: string
}

/** The dead-letter exchange and queue of `queue`. */
export const deadLetterOf = (queue: string): string => `${queue}.dead-letter`

const failure = (what: string) => (cause: unknown) =>
  new SourceError({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const attempt = <A>(what: string, run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: failure(what) })

const act = (what: string, run: () => void) => Effect.try({ try: run, catch: failure(what) })

/** AMQP timestamps are seconds; a value past 10^12 was sent in milliseconds. */
const millisOf = (timestamp: unknown): number | undefined =>
  typeof timestamp === "number" && timestamp > 0 ? (timestamp > 1e12 ? timestamp : timestamp * 1000) : undefined

const deliveriesOf = (message: ConsumeMessage): number => {
  // Quorum queues count deliveries; classic queues only say "again".
  const count: unknown = message.properties.headers?.["x-delivery-count"]
  if (typeof count === "number") return count + 1
  return message.fields.redelivered ? 2 : 1
}

export const make = (options: Options): Source => {
  const { queue } = options
  const deadLetter = deadLetterOf(queue)
  return {
    name: "amqp",
    describe: `amqp ${options.publicUrl} queue ${queue}${options.exchange === undefined ? "" : ` bound to ${options.exchange}`}`,
    subscribe: Effect.gen(function*() {
      const ended = yield* Deferred.make<never, SourceError>()
      const end = (message: string) => Deferred.unsafeDone(ended, Exit.fail(new SourceError({ message })))
      const connection = yield* Effect.acquireRelease(
        attempt("cannot connect to RabbitMQ", () =>
          amqp.connect(options.url, { clientProperties: { connection_name: options.connectionName } })),
        (connection) => Effect.promise(() => connection.close().catch(() => undefined))
      )
      // Without listeners an 'error' event would throw; either event ends this subscription.
      connection.on("error", (error: Error) => end(`connection error: ${error.message}`))
      connection.on("close", () => end("the connection closed"))
      const channel = yield* attempt("cannot open a channel", () => connection.createConfirmChannel())
      channel.on("error", (error: Error) => end(`channel error: ${error.message}`))
      channel.on("close", () => end("the channel closed"))

      yield* attempt(`cannot declare the dead-letter exchange ${deadLetter}`, () => channel.assertExchange(deadLetter, "fanout", { durable: true }))
      yield* attempt(`cannot declare the dead-letter queue ${deadLetter}`, () => channel.assertQueue(deadLetter, { durable: true }))
      yield* attempt(`cannot bind the dead-letter queue ${deadLetter}`, () => channel.bindQueue(deadLetter, deadLetter, ""))
      yield* attempt(`cannot declare the queue ${queue} (an existing queue must be durable with x-dead-letter-exchange ${deadLetter})`, () =>
        channel.assertQueue(queue, { durable: true, deadLetterExchange: deadLetter }))
      const exchange = options.exchange
      if (exchange !== undefined) {
        yield* attempt(`cannot declare the exchange ${exchange}`, () => channel.assertExchange(exchange, "topic", { durable: true }))
        yield* attempt(`cannot bind ${queue} to ${exchange}`, () => channel.bindQueue(queue, exchange, "#"))
      }
      yield* attempt("cannot set the prefetch", () => channel.prefetch(options.prefetch))

      const inbox = yield* Queue.unbounded<ConsumeMessage>()
      yield* attempt(`cannot consume ${queue}`, () =>
        channel.consume(queue, (message) => {
          // null: the broker cancelled the consumer (the queue was deleted).
          if (message === null) end(`the broker cancelled the consumer of ${queue}`)
          else Queue.unsafeOffer(inbox, message)
        }, { noAck: false }))

      const publishDeadLetter = (message: ConsumeMessage, reason: string, problem: string) =>
        Effect.async<void, SourceError>((resume) => {
          const original: MessagePropertyHeaders = message.properties.headers ?? {}
          const { messageId, timestamp, contentType, type, appId, correlationId } = message.properties
          try {
            channel.publish(deadLetter, message.fields.routingKey, message.content, {
              persistent: true,
              headers: {
                ...original,
                "x-weft-dead-letter-reason": reason,
                "x-weft-dead-letter-message": problem.slice(0, 1000),
                "x-weft-source-queue": queue
              },
              ...(typeof messageId === "string" ? { messageId } : {}),
              ...(typeof timestamp === "number" ? { timestamp } : {}),
              ...(typeof contentType === "string" ? { contentType } : {}),
              ...(typeof type === "string" ? { type } : {}),
              ...(typeof appId === "string" ? { appId } : {}),
              ...(typeof correlationId === "string" ? { correlationId } : {})
            }, (error: unknown) => resume(error === null || error === undefined ? Effect.void : Effect.fail(failure("the broker refused the dead letter")(error))))
          } catch (error) {
            resume(Effect.fail(failure("cannot publish the dead letter")(error)))
          }
        })

      const toMessage = (message: ConsumeMessage): Message => {
        const id: unknown = message.properties.messageId
        const event: BusEvent = {
          source: "amqp",
          subject: message.fields.routingKey,
          body: message.content,
          busId: typeof id === "string" && id.length > 0 ? id : undefined,
          publishedAt: millisOf(message.properties.timestamp),
          deliveries: deliveriesOf(message)
        }
        return {
          event,
          ack: act("cannot ack", () => channel.ack(message)),
          retry: (delay) => Effect.delay(act("cannot requeue", () => channel.nack(message, false, true)), delay),
          deadLetter: (reason, problem) =>
            publishDeadLetter(message, reason, problem).pipe(
              Effect.zipRight(act("cannot ack", () => channel.ack(message))),
              Effect.catchAll((error) =>
                Effect.zipRight(
                  Effect.logWarning("ingest: dead letter not republished; the broker dead-letters it").pipe(Effect.annotateLogs({ error: error.message })),
                  act("cannot reject", () => channel.nack(message, false, false))
                )
              )
            )
        }
      }

      return {
        pull: (max, take) =>
          Effect.gen(function*() {
            const first = yield* Effect.raceFirst(
              Queue.take(inbox).pipe(Effect.timeoutOption(Duration.seconds(1))),
              Deferred.await(ended)
            )
            if (Option.isNone(first)) return
            const rest = max > 1 ? yield* Queue.takeUpTo(inbox, max - 1) : []
            for (const message of [first.value, ...rest]) yield* take(toMessage(message))
          }),
        lag: Effect.map(attempt("queue info", () => channel.checkQueue(queue)), (info) => info.messageCount)
      }
    })
  }
}
