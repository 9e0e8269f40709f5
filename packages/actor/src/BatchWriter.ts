/**
 * Group commit for an actor that writes to a store one item at a time: `submit` queues an item
 * in the caller's own step, so items keep the order of the calls; one fiber hands everything
 * queued (up to `maxBatch`) to `write` in one call; each caller gets its own item's result when
 * its batch is done. While a batch is being written the next one gathers, so a busy actor pays
 * one round trip per batch instead of one per item.
 *
 * @example
 * const writer = yield* BatchWriter.make({
 *   maxBatch: 256,
 *   write: (lines) => Effect.as(store.appendAll(lines), lines.map(() => "stored"))
 * })
 * const result = yield* writer.submit("a line")
 */
import { Deferred, Effect, Exit, FiberId, Queue } from "effect"
import type { Array as Arr, Scope } from "effect"

export interface BatchWriter<I, A, E> {
  /** Queues `item` now (in the caller's step, keeping call order); completes with its result. */
  readonly submit: (item: I) => Effect.Effect<A, E>
  /** Queues `item` now, for a caller that does not wait for its result. */
  readonly offer: (item: I) => void
}

export interface Options<I, A, E> {
  /** Writes a batch in queue order; its result has one entry per item, in the same order. */
  readonly write: (batch: Arr.NonEmptyReadonlyArray<I>) => Effect.Effect<ReadonlyArray<A>, E>
  /** Most items handed to one `write`. */
  readonly maxBatch: number
}

interface Queued<I, A, E> {
  readonly item: I
  readonly done: Deferred.Deferred<A, E> | undefined
}

/**
 * A writer running in the caller's scope. When the scope closes, items still queued (and the
 * batch being written) complete as interrupted.
 */
export const make = <I, A, E>(options: Options<I, A, E>): Effect.Effect<BatchWriter<I, A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Effect.acquireRelease(Queue.unbounded<Queued<I, A, E>>(), Queue.shutdown)
    let writing: ReadonlyArray<Queued<I, A, E>> = []
    const interrupted = Exit.interrupt(FiberId.none)

    const settle = (entries: ReadonlyArray<Queued<I, A, E>>, exitOf: (i: number) => Exit.Exit<A, E>) =>
      entries.forEach((entry, i) => {
        if (entry.done !== undefined) Deferred.unsafeDone(entry.done, exitOf(i))
      })

    const writeNext = Effect.gen(function*() {
      const taken = yield* Queue.takeBetween(queue, 1, options.maxBatch)
      const entries = Array.from(taken)
      const [first, ...rest] = entries
      if (first === undefined) return
      writing = entries
      const written = yield* Effect.exit(options.write([first.item, ...rest.map((entry) => entry.item)]))
      writing = []
      if (Exit.isFailure(written)) return settle(entries, () => Exit.failCause(written.cause))
      const results = written.value
      settle(entries, (i) =>
        i < results.length
          ? Exit.succeed(results[i]!)
          : Exit.die(new Error(`BatchWriter: write returned ${results.length} results for ${entries.length} items`)))
    })

    yield* Effect.forkScoped(
      Effect.forever(writeNext).pipe(
        Effect.onInterrupt(() =>
          Effect.map(Queue.takeAll(queue), (queued) => {
            settle([...writing, ...queued], () => interrupted)
          })
        )
      )
    )

    const enqueue = (item: I, done: Deferred.Deferred<A, E> | undefined): void => {
      // A writer whose scope has closed takes nothing: the caller hears so at once.
      if (!Queue.unsafeOffer(queue, { item, done }) && done !== undefined) Deferred.unsafeDone(done, interrupted)
    }

    return {
      submit: (item) => {
        const done = Deferred.unsafeMake<A, E>(FiberId.none)
        enqueue(item, done)
        return Deferred.await(done)
      },
      offer: (item) => enqueue(item, undefined)
    }
  })
