/**
 * The gateway's metrics, on Effect's `Metric` registry (the node renders them
 * at `/metrics`; read one in code with `Metric.value`).
 *
 * Tagged metrics are recorded per label value: `Metric.value(messagesIn)` is
 * the untagged series (always 0); read one frame type with
 * `Metric.value(Metric.tagged(messagesIn, "type", "publish"))`.
 *
 * The per-frame paths use `record*` below, which keep one label array per
 * label value: `Metric.unsafeUpdate` caches its registry hook by that array's
 * identity, so recording costs a map lookup and an add.
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"

/** Live WebSocket connections on this node (sockets open and not yet closed). */
export const connections = Metric.gauge("weft_gateway_connections", {
  description: "Live WebSocket connections on this node"
}).register()

/** Frames received from clients, by frame `type` (`invalid` for frames that did not decode). */
export const messagesIn = Metric.counter("weft_gateway_messages_in_total", {
  description: "Frames received from clients, by frame type",
  incremental: true
})

/**
 * Frames handed to sockets, one per recipient socket, by frame `type`. A fan-out through
 * Bun's topic publish counts the topic's subscribers on this node.
 */
export const messagesOut = Metric.counter("weft_gateway_messages_out_total", {
  description: "Frames delivered to client sockets (one per recipient), by frame type",
  incremental: true
})

/** Frames a socket refused because its send buffer was past the backpressure limit, by frame `type`. */
export const messagesDropped = Metric.counter("weft_gateway_messages_dropped_total", {
  description: "Frames dropped by sockets past the backpressure limit, by frame type",
  incremental: true
})

/**
 * Seconds from when a message was accepted (its frame's `at`, stamped by the room, the user,
 * the service API or the publishing connection) to when this node hands it to Bun's topic
 * publish. Across nodes this includes clock skew; a negative difference counts as 0.
 */
export const fanoutLatency = Metric.histogram(
  "weft_gateway_fanout_latency_seconds",
  MetricBoundaries.fromIterable([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
  "Seconds from a message's acceptance to this node's fan-out to its sockets"
)

/** Channels this node listens to (its cluster topic subscriptions for channels). */
export const channels = Metric.gauge("weft_gateway_channels", {
  description: "Channels with subscribers on this node"
}).register()

const labelsByType = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

/** One label array per frame type, for the life of the process (frame types are a closed set). */
const typeLabels = (type: string): ReadonlyArray<MetricLabel.MetricLabel> => {
  let labels = labelsByType.get(type)
  if (labels === undefined) {
    labels = [MetricLabel.make("type", type)]
    labelsByType.set(type, labels)
  }
  return labels
}

const noLabels: ReadonlyArray<MetricLabel.MetricLabel> = []

/** A frame of `type` arrived from a client. */
export const recordIn = (type: string): void => messagesIn.unsafeUpdate(1, typeLabels(type))

/** `count` frames of `type` went to sockets. */
export const recordOut = (type: string, count: number): void => {
  if (count > 0) messagesOut.unsafeUpdate(count, typeLabels(type))
}

/** A socket refused a frame of `type` (backpressure). */
export const recordDropped = (type: string): void => messagesDropped.unsafeUpdate(1, typeLabels(type))

/** A message accepted at `acceptedAt` (epoch ms) is being fanned out at `now` (epoch ms). */
export const recordFanout = (acceptedAt: number, now: number): void =>
  fanoutLatency.unsafeUpdate(Math.max(0, now - acceptedAt) / 1000, noLabels)

export const setConnections = (count: number): void => connections.unsafeUpdate(count, noLabels)

export const setChannels = (count: number): void => channels.unsafeUpdate(count, noLabels)
