/**
 * Whether a series sampled under steady load grows without bound. A bounded resource climbs
 * while the run warms up (caches, rooms reaching their history limit), then levels off and
 * wobbles; a leak keeps climbing. So: drop the first quarter (warm-up), then the series grows
 * when even the lowest sample of its last quarter is above the highest of its first quarter by
 * more than `slack` and 10%. One noisy sample cannot cause that, and a level series cannot
 * either, however it wobbles.
 */
export interface Verdict {
  readonly grows: boolean
  /** `undefined` when there are too few samples to judge. */
  readonly firstMax: number | undefined
  readonly lastMin: number | undefined
}

/** Samples needed after the warm-up: fewer say nothing about a trend. */
export const minimumSamples = 8

export const judgeGrowth = (values: ReadonlyArray<number>, slack: number): Verdict => {
  const steady = values.slice(Math.floor(values.length / 4))
  if (steady.length < minimumSamples) return { grows: false, firstMax: undefined, lastMin: undefined }
  const quarter = Math.max(2, Math.floor(steady.length / 4))
  const firstMax = Math.max(...steady.slice(0, quarter))
  const lastMin = Math.min(...steady.slice(-quarter))
  return { grows: lastMin > firstMax + Math.max(slack, firstMax * 0.1), firstMax, lastMin }
}
