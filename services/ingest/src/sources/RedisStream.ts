/**
 * Redis Streams, on the node's own Redis: a consumer group shared by the
 * cluster's nodes (each node one consumer, named by its node id). Weft
 * creates the group if it is missing (new entries only; `MKSTREAM`).
 *
 * An entry carries the envelope in its `envelope` field and, optionally, the
 * subject for the mapping rules in `subject` (default: the stream's key).
 *
 * - ack: `XACK` once the delivery path accepted the event.
 * - retry: left pending; claimed again after `holdMs`. While an entry is being
 *   delivered, the node resets its idle time (`XCLAIM ... JUSTID`) so that no
 *   other node claims it meanwhile.
 * - a node that dies: its pending entries, idle longer than `holdMs`, are
 *   claimed by the other nodes (`XAUTOCLAIM`, every half `holdMs`).
 * - dead letter: `XADD <stream>:dead-letter` (capped near 10,000 entries) with
 *   `reason`, `message`, `source-id`, `subject` and `envelope`, then `XACK`.
 * - the bus's message id: the entry id.
 *
 * Reads block (`XREADGROUP ... BLOCK`) on a connection of their own, so that
 * the node's command connection never waits behind them.
 */
import { Redis as ClusterRedis } from "@weft/cluster"
import { Clock, Effect, Option, Schema } from "effect"
import type IORedis from "ioredis"
import { describe } from "../internal/parseError.ts"
import type { BusEvent } from "../Pipeline.ts"
import { type Message, type Source, SourceError } from "../Source.ts"

export interface Options {
  /** The stream's key, as the publishers write it. */
  readonly key: string
  readonly group: string
  /** This node's consumer name in the group. */
  readonly consumer: string
  /** How long an entry stays pending with a consumer before another may claim it. */
  readonly holdMs: number
  readonly connectionName: string
}

/** Where dead letters of `key` go. */
export const deadLetterOf = (key: string): string => `${key}:dead-letter`

const blockMs = 500
const deadLetterMaxLength = 10_000
const encoder = new TextEncoder()

const Entry = Schema.Tuple(Schema.String, Schema.NullOr(Schema.Array(Schema.String)))
type Entry = typeof Entry.Type
const ReadReply = Schema.NullOr(Schema.Array(Schema.Tuple(Schema.String, Schema.Array(Entry))))
const ClaimReply = Schema.Tuple([Schema.String, Schema.Array(Entry)], Schema.Array(Schema.String))
const GroupsReply = Schema.Array(Schema.Array(Schema.Union(Schema.String, Schema.Number, Schema.Null)))

const failure = (what: string) => (cause: unknown) =>
  new SourceError({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const decode = <A, I>(schema: Schema.Schema<A, I>, what: string) => (reply: unknown) =>
  Effect.mapError(Schema.decodeUnknown(schema)(reply), (error) => new SourceError({ message: `unexpected ${what} reply: ${describe(error)}` }))

const fieldsOf = (fields: ReadonlyArray<string>): ReadonlyMap<string, string> => {
  const map = new Map<string, string>()
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!)
  return map
}

export const make = (options: Options): Source => {
  const { consumer, group, key } = options
  const deadLetter = deadLetterOf(key)
  return {
    name: "redis",
    describe: `redis stream ${key} group ${group}`,
    subscribe: Effect.gen(function*() {
      const redis = yield* Effect.serviceOption(ClusterRedis.Redis).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(new SourceError({ message: "a Redis stream source needs the node's Redis (--redis-url)" })),
          onSome: Effect.succeed
        }))
      )
      const command = (what: string, ...args: Array<string>) =>
        Effect.mapError(redis.use((client) => client.call(args[0]!, ...args.slice(1))), failure(what))
      const reader = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const connection: IORedis = redis.client.duplicate({
              connectionName: options.connectionName,
              commandTimeout: blockMs + 2000,
              lazyConnect: true
            })
            connection.on("error", () => undefined)
            try {
              await connection.connect()
            } catch (error) {
              connection.disconnect()
              throw error
            }
            return connection
          },
          catch: failure("cannot open a Redis connection for reads")
        }),
        (connection) => Effect.promise(() => connection.quit().catch(() => connection.disconnect()))
      )
      yield* command(`cannot create the group ${group} on ${key}`, "XGROUP", "CREATE", key, group, "$", "MKSTREAM").pipe(
        Effect.catchIf((error) => error.message.includes("BUSYGROUP"), () => Effect.void)
      )

      const ack = (id: string) => Effect.asVoid(command("cannot ack", "XACK", key, group, id))

      const toMessage = ([id, fields]: Entry, claimed: boolean): Message => {
        const values = fieldsOf(fields ?? [])
        const at = Number(id.slice(0, id.indexOf("-")))
        const subject = values.get("subject") ?? key
        const envelope = values.get("envelope") ?? ""
        const event: BusEvent = {
          source: "redis",
          subject,
          body: encoder.encode(envelope),
          busId: `${key}:${id}`,
          publishedAt: Number.isFinite(at) ? at : undefined,
          deliveries: claimed ? 2 : 1
        }
        return {
          event,
          ack: ack(id),
          // Left pending: claimed again once idle for `holdMs`.
          retry: () => Effect.void,
          // Resets the entry's idle time (JUSTID: without counting a delivery), so that no other node claims it meanwhile.
          working: Effect.ignore(command("working", "XCLAIM", key, group, consumer, "0", id, "JUSTID")),
          deadLetter: (reason, message) =>
            command(
              "cannot add the dead letter",
              "XADD",
              deadLetter,
              "MAXLEN",
              "~",
              String(deadLetterMaxLength),
              "*",
              "reason",
              reason,
              "message",
              message.slice(0, 1000),
              "source-id",
              id,
              "subject",
              subject,
              "envelope",
              envelope
            ).pipe(Effect.zipRight(ack(id)))
        }
      }

      const claimEveryMs = Math.max(250, Math.floor(options.holdMs / 2))
      let nextClaimAt = 0
      let cursor = "0-0"

      /** Entries idle past `holdMs` with any consumer (one that died, or this one's retries), a page at a time. */
      const claim = (max: number) =>
        Effect.gen(function*() {
          const reply = yield* command("cannot claim", "XAUTOCLAIM", key, group, consumer, String(options.holdMs), cursor, "COUNT", String(max)).pipe(
            Effect.flatMap(decode(ClaimReply, "XAUTOCLAIM"))
          )
          const [next, entries, ...deleted] = reply
          cursor = next
          // Deleted from the stream while pending (listed apart since Redis 7, with no fields before): nothing to deliver.
          for (const id of deleted.flat()) yield* ack(id)
          for (const [id, fields] of entries) if (fields === null) yield* ack(id)
          return entries.filter(([, fields]) => fields !== null)
        })

      return {
        pull: (max, take) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            if (now >= nextClaimAt) {
              const claimed = yield* claim(max)
              // More to claim: the next pull goes on from the cursor.
              nextClaimAt = cursor === "0-0" ? now + claimEveryMs : now
              if (claimed.length > 0) {
                for (const entry of claimed) yield* take(toMessage(entry, true))
                return
              }
            }
            const reply = yield* Effect.tryPromise({
              try: () => reader.call("XREADGROUP", "GROUP", group, consumer, "COUNT", String(max), "BLOCK", String(blockMs), "STREAMS", key, ">"),
              catch: failure("cannot read")
            }).pipe(Effect.flatMap(decode(ReadReply, "XREADGROUP")))
            for (const [, entries] of reply ?? []) for (const entry of entries) yield* take(toMessage(entry, false))
          }),
        lag: command("group info", "XINFO", "GROUPS", key).pipe(
          Effect.flatMap(decode(GroupsReply, "XINFO GROUPS")),
          Effect.flatMap((groups) => {
            for (const fields of groups) {
              const info = new Map<string, string | number | null>()
              for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]!)
              if (info.get("name") !== group) continue
              const lag = info.get("lag")
              if (typeof lag === "number") return Effect.succeed(lag)
            }
            return Effect.fail(new SourceError({ message: `the lag of group ${group} is not known` }))
          })
        )
      }
    })
  }
}
