/**
 * `fc.assert` for big run counts: the runs go in chunks of a few thousand, each with its own
 * random seed (reported with the counterexample if it fails), and the event loop gets a turn
 * between chunks. One synchronous `fc.assert` of 100,000 runs would block the test worker long
 * enough for vitest's worker-to-main calls to time out.
 */
import { FastCheck as fc } from "effect"

const chunk = 5_000

/** `examples` (counterexamples found before, kept as regressions) run first, in the first chunk. */
export const assertAll = async <Ts>(property: fc.IProperty<Ts>, runs: number, examples: ReadonlyArray<Ts> = []): Promise<void> => {
  for (let done = 0; done < runs; done += chunk) {
    fc.assert(property, { numRuns: Math.min(chunk, runs - done), examples: done === 0 ? [...examples] : [] })
    await new Promise((resolve) => setImmediate(resolve))
  }
}
