/**
 * The ingest role's metrics, per `source` (`nats`, `amqp`, `redis`), on
 * Effect's `Metric` registry (the node renders them at `/metrics`).
 *
 * Every event taken from a bus is counted once in `consumed` and, when it is
 * settled, once in `delivered`, `duplicate`, `expired` or `dead_lettered`,
 * or in `retried` when it goes back to the bus for a later try (then it is
 * consumed again). `record*` keep one label array per label combination
 * (`Metric.unsafeUpdate` caches its registry hook by the array's identity);
 * the label values come from closed sets.
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"

export type SourceName = "nats" | "amqp" | "redis"

/** Why an event went to the dead-letter path. */
export type DeadLetterReason = "envelope" | "route" | "refused"

export const consumed = Metric.counter("weft_ingest_events_consumed_total", {
  description: "Events taken from the bus by this node, by source",
  incremental: true
})

export const delivered = Metric.counter("weft_ingest_events_delivered_total", {
  description: "Events the delivery path accepted (delivered, stored or scheduled), by source",
  incremental: true
})

export const duplicates = Metric.counter("weft_ingest_events_duplicate_total", {
  description: "Events dropped as repeats of one already delivered (same idempotency key or bus message id), by source",
  incremental: true
})

export const expired = Metric.counter("weft_ingest_events_expired_total", {
  description: "Events dropped because they were older than their ttlMs, by source",
  incremental: true
})

export const deadLettered = Metric.counter("weft_ingest_events_dead_lettered_total", {
  description: "Events sent to the dead-letter path, by source and reason (envelope, route, refused)",
  incremental: true
})

export const redelivered = Metric.counter("weft_ingest_events_redelivered_total", {
  description: "Events the bus gave again (after a failure, a timeout or a dead consumer), by source",
  incremental: true
})

export const retried = Metric.counter("weft_ingest_events_retried_total", {
  description: "Events handed back to the bus for a later try (the delivery path was unavailable), by source",
  incremental: true
})

export const lag = Metric.gauge("weft_ingest_lag", {
  description: "Events waiting in the bus for Weft's consumers (as the bus counts them), by source; sampled every 5 s"
})

export const inFlight = Metric.gauge("weft_ingest_in_flight", {
  description: "Events this node has taken from the bus and not yet settled, by source"
})

/** Seconds from the bus's publish time to the delivery path's acceptance (includes clock skew between hosts). */
export const eventAge = Metric.histogram(
  "weft_ingest_event_age_seconds",
  MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]),
  "Seconds from an event's publish on the bus to its acceptance by the delivery path, by source"
)

const cache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

const labels = (source: SourceName, reason?: DeadLetterReason): ReadonlyArray<MetricLabel.MetricLabel> => {
  const id = reason === undefined ? source : `${source}\u0000${reason}`
  let found = cache.get(id)
  if (found === undefined) {
    found = reason === undefined
      ? [MetricLabel.make("source", source)]
      : [MetricLabel.make("source", source), MetricLabel.make("reason", reason)]
    cache.set(id, found)
  }
  return found
}

export const recordConsumed = (source: SourceName, redelivery: boolean): void => {
  consumed.unsafeUpdate(1, labels(source))
  if (redelivery) redelivered.unsafeUpdate(1, labels(source))
}

export const recordDelivered = (source: SourceName, duplicate: boolean): void =>
  (duplicate ? duplicates : delivered).unsafeUpdate(1, labels(source))

export const recordExpired = (source: SourceName): void => expired.unsafeUpdate(1, labels(source))

export const recordDeadLettered = (source: SourceName, reason: DeadLetterReason): void =>
  deadLettered.unsafeUpdate(1, labels(source, reason))

export const recordRetried = (source: SourceName): void => retried.unsafeUpdate(1, labels(source))

export const setLag = (source: SourceName, events: number): void => lag.unsafeUpdate(events, labels(source))

export const setInFlight = (source: SourceName, events: number): void => inFlight.unsafeUpdate(events, labels(source))

/** An event published at `publishedAt` (epoch ms) was accepted at `now` (epoch ms). */
export const recordAge = (source: SourceName, publishedAt: number, now: number): void =>
  eventAge.unsafeUpdate(Math.max(0, now - publishedAt) / 1000, labels(source))
