/**
 * The runtime's metrics, on Effect's `Metric` registry. Every series carries a
 * `kind` label; stops and dead letters also carry a `reason`.
 */
import { Metric } from "effect"

/** Live activations, by kind. */
export const actorsAlive = Metric.gauge("weft_actors_alive", { description: "Live actor activations" })
/** Messages handled (replied, failed or crashed), by kind. */
export const messagesHandled = Metric.counter("weft_actor_messages_total", {
  description: "Messages handled by actors",
  incremental: true
})
/** Messages waiting in mailboxes, summed by kind; sampled by the system's housekeeping. */
export const mailboxDepth = Metric.gauge("weft_actor_mailbox_depth", { description: "Messages queued in mailboxes" })
/** Crashes: defects in handlers, hooks or start-up, by kind. */
export const crashes = Metric.counter("weft_actor_crashes_total", { description: "Actor crashes", incremental: true })
/** Restarts by the supervisor, by kind. */
export const restarts = Metric.counter("weft_actor_restarts_total", { description: "Actor restarts", incremental: true })
/** Terminations, by kind and reason (`stopped`, `passivated`, `crashed`, `restart-limit`, ...). */
export const stops = Metric.counter("weft_actor_stops_total", { description: "Actor terminations", incremental: true })
/** Messages that reached no handler, by kind and reason (`dropped`, `stopped`, `shutdown`, ...). */
export const deadLetters = Metric.counter("weft_actor_dead_letters_total", {
  description: "Messages dropped or left undelivered",
  incremental: true
})
