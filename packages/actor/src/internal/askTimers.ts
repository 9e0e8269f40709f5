/**
 * Ask deadlines without a fiber per ask. `Effect.timeout` races two forked
 * fibers, which costs more than the ask itself; here pending asks sit in a
 * set and one system fiber expires them every `RESOLUTION_MILLIS` while any
 * are pending (and sleeps on a latch while none are). It sleeps on the
 * system's Clock, so TestClock drives it in tests.
 */
import { Duration, Effect } from "effect"

/** How late an ask timeout may fire, at most. */
export const RESOLUTION_MILLIS = 10

export interface PendingAsk {
  readonly deadline: number
  readonly expire: () => void
}

export class AskTimers {
  private readonly pending = new Set<PendingAsk>()
  private wake: (() => void) | undefined = undefined

  add(ask: PendingAsk): void {
    this.pending.add(ask)
    const wake = this.wake
    if (wake !== undefined) {
      this.wake = undefined
      wake()
    }
  }

  remove(ask: PendingAsk): void {
    this.pending.delete(ask)
  }

  get size(): number {
    return this.pending.size
  }

  private expire(now: number): void {
    for (const ask of this.pending) {
      if (ask.deadline > now) continue
      this.pending.delete(ask)
      ask.expire()
    }
  }

  /** The timer fiber's body: runs until interrupted with the system's scope. */
  run(): Effect.Effect<never> {
    const idle = Effect.async<void>((resume) => {
      this.wake = () => resume(Effect.void)
      return Effect.sync(() => {
        this.wake = undefined
      })
    })
    const tick = Effect.clockWith((clock) =>
      Effect.zipRight(
        clock.sleep(Duration.millis(RESOLUTION_MILLIS)),
        Effect.sync(() => this.expire(clock.unsafeCurrentTimeMillis()))
      )
    )
    return Effect.forever(Effect.suspend(() => (this.pending.size === 0 ? idle : tick)))
  }
}
