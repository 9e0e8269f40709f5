/**
 * How many cases the fuzz suite runs. `FUZZ_RUNS` (set by `npm run fuzz -- --runs N`) is the
 * number of in-process decoder cases, shared among the decoder properties; the end-to-end and
 * model-based tests take a fixed fraction of it, since each of their cases costs far more.
 * Plain `npm test` (CI) runs the default: 100,000 decoder cases.
 */

const readRuns = (): number => {
  const text = process.env["FUZZ_RUNS"]
  if (text === undefined || text === "") return 100_000
  const runs = Number(text)
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`FUZZ_RUNS must be a positive integer, got ${JSON.stringify(text)}`)
  return runs
}

export const totalRuns = readRuns()

/** An equal share of `totalRuns` for each of `parts` properties (so that the shares add up to at least the total). */
export const shareOf = (parts: number): number => Math.ceil(totalRuns / parts)

/** End-to-end frames sent to a real node: one per 50 decoder cases, at least 500. */
export const e2eFrames = Math.max(500, Math.ceil(totalRuns / 50))

/** Command sequences for the room model: one per 2,000 decoder cases, at least 25. */
export const modelSequences = Math.max(25, Math.ceil(totalRuns / 2_000))

/** Random room sequences run by real WebSocket clients: one per 10,000 decoder cases, at least 5. */
export const clientSequences = Math.max(5, Math.ceil(totalRuns / 10_000))

/**
 * A test timeout that grows with the work: the default 30 s plus a generous cost per case, so a
 * big `--runs` is not cut short (this is a ceiling against hangs, never a speed requirement).
 */
export const timeoutFor = (cases: number, msPerCase: number): number => 60_000 + Math.ceil(cases * msPerCase)
