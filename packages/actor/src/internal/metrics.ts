/**
 * Per-kind metric updates on the hot path. `Metric.unsafeUpdate` caches its
 * registry hook by the identity of the label array, so each kind keeps its
 * label arrays for the life of the process.
 */
import { MetricLabel } from "effect"
import * as ActorMetrics from "../ActorMetrics.ts"

export class KindMetrics {
  private readonly labels: ReadonlyArray<MetricLabel.MetricLabel>
  private readonly byReason = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
  private alive = 0

  constructor(readonly kind: string) {
    this.labels = [MetricLabel.make("kind", kind)]
  }

  handled(): void {
    ActorMetrics.messagesHandled.unsafeUpdate(1, this.labels)
  }

  started(): void {
    this.alive++
    ActorMetrics.actorsAlive.unsafeUpdate(this.alive, this.labels)
  }

  crashed(): void {
    ActorMetrics.crashes.unsafeUpdate(1, this.labels)
  }

  restarted(): void {
    ActorMetrics.restarts.unsafeUpdate(1, this.labels)
  }

  stopped(reason: string): void {
    this.alive--
    ActorMetrics.actorsAlive.unsafeUpdate(this.alive, this.labels)
    ActorMetrics.stops.unsafeUpdate(1, this.reasonLabels(reason))
  }

  deadLetter(reason: string): void {
    ActorMetrics.deadLetters.unsafeUpdate(1, this.reasonLabels(reason))
  }

  mailboxDepth(depth: number): void {
    ActorMetrics.mailboxDepth.unsafeUpdate(depth, this.labels)
  }

  get aliveCount(): number {
    return this.alive
  }

  private reasonLabels(reason: string): ReadonlyArray<MetricLabel.MetricLabel> {
    let labels = this.byReason.get(reason)
    if (labels === undefined) {
      labels = [...this.labels, MetricLabel.make("reason", reason)]
      this.byReason.set(reason, labels)
    }
    return labels
  }
}
