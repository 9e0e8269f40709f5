/**
 * Ordered lanes with batching, by key: `submit(lane, item)` puts the item in its lane in the
 * caller's own step, so a lane keeps the order of the calls. A lane sends one batch at a time
 * (what was submitted while the previous batch was on its way, up to `maxBatch`), so a caller
 * that does not wait for each answer is not held to one item per round trip, and the items of
 * one lane never overtake each other. A lane lives while it has items on their way: no fiber or
 * memory is kept for an idle one. One lane is a group commit for an actor that writes to a store
 * one item at a time: it pays a round trip per batch instead of one per item.
 *
 * @example
 * // A connection's publishes to a room: in the order sent, a batch per trip to the room.
 * const lanes = yield* BatchLanes.make({ maxBatch: 256, send: (room, messages) => rooms(room).Publish({ messages }) })
 * const answer = lanes.submit(room, message) // in line now; `answer` waits for it
 */
import { Deferred, Effect, Exit, FiberId, FiberSet } from "effect"
import type { Array as Arr, Scope } from "effect"

export interface BatchLanes<I, A, E> {
  /** Puts `item` last in `lane` now (in the caller's step); completes with its own answer. */
  readonly submit: (lane: string, item: I) => Effect.Effect<A, E>
  /** Puts `item` last in `lane` now, for a caller that does not wait for its answer. */
  readonly offer: (lane: string, item: I) => void
  /** Lanes with items on their way. */
  readonly size: () => number
}

export interface Options<I, A, E> {
  /** Sends a lane's batch, in order; one answer per item, in the same order. */
  readonly send: (lane: string, batch: Arr.NonEmptyReadonlyArray<I>) => Effect.Effect<ReadonlyArray<A>, E>
  /** Most items in one batch. */
  readonly maxBatch: number
}

interface Queued<I, A, E> {
  readonly item: I
  readonly done: Deferred.Deferred<A, E>
}

/** Lanes whose senders run in the caller's scope; when it closes they stop, and what waits is interrupted. */
export const make = <I, A, E>(options: Options<I, A, E>): Effect.Effect<BatchLanes<I, A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runFork = yield* FiberSet.makeRuntime<never>()
    const lanes = new Map<string, Array<Queued<I, A, E>>>()

    const drive = (lane: string, queue: Array<Queued<I, A, E>>): Effect.Effect<void> => {
      let batch: Array<Queued<I, A, E>> = []
      return Effect.gen(function*() {
        while (true) {
          batch = queue.splice(0, options.maxBatch)
          const [first, ...rest] = batch
          if (first === undefined) {
            lanes.delete(lane)
            return
          }
          const sent = yield* Effect.exit(options.send(lane, [first.item, ...rest.map((entry) => entry.item)]))
          const answered = batch
          batch = []
          answered.forEach((entry, i) => {
            if (Exit.isFailure(sent)) return Deferred.unsafeDone(entry.done, Exit.failCause(sent.cause))
            Deferred.unsafeDone(
              entry.done,
              i < sent.value.length
                ? Exit.succeed(sent.value[i]!)
                : Exit.die(new Error(`BatchLanes: send gave ${sent.value.length} answers for ${answered.length} items`))
            )
          })
        }
      }).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            for (const entry of [...batch, ...queue.splice(0)]) Deferred.unsafeDone(entry.done, Exit.interrupt(FiberId.none))
            lanes.delete(lane)
          })
        )
      )
    }

    const enqueue = (lane: string, item: I): Deferred.Deferred<A, E> => {
      const done = Deferred.unsafeMake<A, E>(FiberId.none)
      const queue = lanes.get(lane)
      if (queue !== undefined) {
        queue.push({ item, done })
      } else {
        const started = [{ item, done }]
        lanes.set(lane, started)
        runFork(drive(lane, started))
      }
      return done
    }

    return {
      submit: (lane, item) => Deferred.await(enqueue(lane, item)),
      offer: (lane, item) => void enqueue(lane, item),
      size: () => lanes.size
    }
  })
