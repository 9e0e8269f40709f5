/** Bounded polling for tests: every wait has a deadline and says what it waited for. */

export const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting until ${what}`)
}

export interface NodeReadiness {
  readonly ready: boolean
  readonly shardGroups: ReadonlyArray<string>
  readonly shardsHeld: number
}

/**
 * Every node ready and the shard assignment no longer moving: the same per-node counts,
 * summing to every shard, over several samples. Right after start-up shards still move to
 * the nodes that joined last, and an entity activated during that move is re-activated after.
 */
export const waitUntilSettled = (
  sample: () => Promise<ReadonlyArray<NodeReadiness>>,
  shardsPerGroup = 300,
  timeoutMs = 30_000
): Promise<void> => {
  let previous = ""
  let stableSamples = 0
  return waitUntil("the cluster settles", async () => {
    const states = await sample()
    const counts = states.map((state) => state.shardsHeld).join(",")
    const groups = new Set(states.flatMap((state) => state.shardGroups))
    const whole = states.every((state) => state.ready) &&
      states.reduce((sum, state) => sum + state.shardsHeld, 0) === groups.size * shardsPerGroup
    stableSamples = whole && counts === previous ? stableSamples + 1 : 0
    previous = counts
    return stableSamples >= 5
  }, timeoutMs)
}
