/**
 * A source: one bus that events come from. The adapters (`sources/Nats.ts`,
 * `sources/Amqp.ts`, `sources/RedisStream.ts`) are the only places that know
 * a bus; the consumer loop (`Consumer.ts`) drives any of them the same way:
 * subscribe, pull at most as many messages as it has room for, and settle
 * each one (ack, retry later, dead-letter) once the pipeline has an outcome.
 *
 * `makeMemory` beside them is a bus in memory with the same contract
 * (competing consumers, redelivery of what a closed subscription left
 * unsettled, a dead-letter list): the unit tests drive the consumer loop on it.
 */
import { Chunk, Data, Duration, Effect, Option, Queue } from "effect"
import type { Scope } from "effect"
import type { DeadLetterReason, SourceName } from "./IngestMetrics.ts"
import type { BusEvent } from "./Pipeline.ts"

/** The bus failed (connection lost, a refused command): the consumer reconnects. */
export class SourceError extends Data.TaggedError("SourceError")<{ readonly message: string; readonly cause?: unknown }> {}

/** One message taken from the bus, and what can be done with it. Each is settled once. */
export interface Message {
  readonly event: BusEvent
  /** The delivery path has it (or it was a repeat, or expired): the bus forgets it. */
  readonly ack: Effect.Effect<void, SourceError>
  /** Not now: the bus gives it again, to this node or another, after about `delay`. */
  readonly retry: (delay: Duration.Duration) => Effect.Effect<void, SourceError>
  /** It can never be delivered: onto the bus's dead-letter path with the reason, then off the stream. */
  readonly deadLetter: (reason: DeadLetterReason, message: string) => Effect.Effect<void, SourceError>
  /** Still being delivered: keeps the bus from handing it to another consumer meanwhile (where the bus has that). */
  readonly working?: Effect.Effect<void>
}

export interface Subscription {
  /**
   * Asks the bus for at most `max` messages and gives each to `take` as it arrives; returns when
   * the request is over (all came, or the bus's wait of about a second ended).
   */
  readonly pull: (max: number, take: (message: Message) => Effect.Effect<void>) => Effect.Effect<void, SourceError>
  /** Events waiting in the bus for Weft's consumers, as the bus counts them. */
  readonly lag: Effect.Effect<number, SourceError>
}

export interface Source {
  readonly name: SourceName
  /** Where it consumes from, for logs (no credentials). */
  readonly describe: string
  /** Connects (declaring what Weft owns: consumer group, durable consumer, queue) and subscribes until the scope closes. */
  readonly subscribe: Effect.Effect<Subscription, SourceError, Scope.Scope>
}

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

interface Stored {
  readonly id: string
  readonly subject: string
  readonly body: Uint8Array
  readonly publishedAt: number
  deliveries: number
}

export interface DeadLetter {
  readonly id: string
  readonly subject: string
  readonly reason: DeadLetterReason
  readonly message: string
}

export interface MemoryBus {
  readonly source: Source
  readonly publish: (subject: string, body: string | Uint8Array, id?: string) => Effect.Effect<void>
  /** Ids of the messages acked, in order. */
  readonly acked: () => ReadonlyArray<string>
  readonly deadLetters: () => ReadonlyArray<DeadLetter>
  /** Messages taken by a consumer and not settled yet. */
  readonly unsettled: () => number
  /** The most messages that were ever taken and not settled at once. */
  readonly mostUnsettled: () => number
  /** Makes every following `pull` fail, as a lost connection would (until `heal`). */
  readonly break: () => void
  readonly heal: () => void
}

const encoder = new TextEncoder()

/** A bus in memory: competing consumers share one ready queue; a closed subscription's unsettled messages go back to it. */
export const makeMemory = (name: SourceName = "nats"): Effect.Effect<MemoryBus> =>
  Effect.gen(function*() {
    const ready = yield* Queue.unbounded<Stored>()
    const acked: Array<string> = []
    const deadLetters: Array<DeadLetter> = []
    let unsettled = 0
    let mostUnsettled = 0
    let broken = false
    let next = 0

    const subscribe = Effect.gen(function*() {
      if (broken) return yield* new SourceError({ message: "the memory bus is broken" })
      const held = new Set<Stored>()
      // A subscription that ends (a dead consumer) leaves its unsettled messages to the others.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          const left = Array.from(held)
          held.clear()
          unsettled -= left.length
          for (const stored of left) stored.deliveries++
          return Queue.offerAll(ready, left)
        })
      )
      const settle = (stored: Stored, then: Effect.Effect<void>) =>
        Effect.suspend(() => {
          if (!held.delete(stored)) return Effect.void
          unsettled--
          return then
        })
      const toMessage = (stored: Stored): Message => ({
        event: {
          source: name,
          subject: stored.subject,
          body: stored.body,
          busId: stored.id,
          publishedAt: stored.publishedAt,
          deliveries: stored.deliveries
        },
        ack: settle(stored, Effect.sync(() => void acked.push(stored.id))),
        retry: (delay) =>
          settle(
            stored,
            Effect.forkDaemon(Effect.delay(Effect.suspend(() => {
              stored.deliveries++
              return Queue.offer(ready, stored)
            }), delay)).pipe(Effect.asVoid)
          ),
        deadLetter: (reason, message) =>
          settle(stored, Effect.sync(() => void deadLetters.push({ id: stored.id, subject: stored.subject, reason, message })))
      })
      return {
        pull: (max, take) =>
          Effect.gen(function*() {
            if (broken) return yield* new SourceError({ message: "the memory bus is broken" })
            const first = yield* Queue.take(ready).pipe(Effect.timeoutOption("100 millis"))
            if (Option.isNone(first)) return
            if (broken) {
              yield* Queue.offer(ready, first.value)
              return yield* new SourceError({ message: "the memory bus is broken" })
            }
            const rest = max > 1 ? Chunk.toReadonlyArray(yield* Queue.takeUpTo(ready, max - 1)) : []
            for (const stored of [first.value, ...rest]) {
              held.add(stored)
              unsettled++
              mostUnsettled = Math.max(mostUnsettled, unsettled)
              yield* take(toMessage(stored))
            }
          }),
        lag: Queue.size(ready)
      } satisfies Subscription
    })

    return {
      source: { name, describe: "memory", subscribe },
      publish: (subject, body, id) =>
        Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) =>
          Queue.offer(ready, {
            id: id ?? String(++next),
            subject,
            body: typeof body === "string" ? encoder.encode(body) : body,
            publishedAt: now,
            deliveries: 1
          })).pipe(Effect.asVoid),
      acked: () => acked,
      deadLetters: () => deadLetters,
      unsettled: () => unsettled,
      mostUnsettled: () => mostUnsettled,
      break: () => void (broken = true),
      heal: () => void (broken = false)
    }
  })
