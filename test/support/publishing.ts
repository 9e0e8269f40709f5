/**
 * A room fed with numbered messages while nodes drain under it, and the checks that nothing the
 * room acknowledged was lost: the drain tests on plain nodes (test/ops) and through a balancer
 * (test/deploy). A received message is anything with a `body`, so that the clients of either test
 * (SDK clients over `ws` or over TLS) can be checked.
 */
import { expect } from "vitest"

interface WithBody {
  readonly body: unknown
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Publishes numbered messages until stopped, recording the acknowledged ones and the failures. */
export const publishing = (publish: (n: number) => Promise<unknown>) => {
  let running = true
  const acked: Array<number> = []
  const failed: Array<string> = []
  const done = (async () => {
    for (let n = 1; running && n < 100_000; n++) {
      await publish(n).then(() => acked.push(n), (error: unknown) => failed.push(`${n}: ${String(error)}`))
      await sleep(20)
    }
  })()
  return {
    acked,
    failed,
    stop: async () => {
      running = false
      await done
    }
  }
}

/** Whether every room's subscriber has received every acknowledged number (for `eventually`). */
export const allArrived = (
  rooms: ReadonlyArray<{ readonly received: ReadonlyArray<WithBody> }>,
  acked: ReadonlyArray<number>
): boolean =>
  rooms.every(({ received }) => {
    const bodies = new Set(received.map((entry) => entry.body))
    return acked.every((n) => bodies.has(n))
  })

/** Every acknowledged number arrived, each message once, in the room's order. */
export const expectNothingLost = (received: ReadonlyArray<WithBody>, acked: ReadonlyArray<number>) => {
  const bodies = received.map((entry) => entry.body)
  const arrived = new Set(bodies)
  expect(acked.filter((n) => !arrived.has(n))).toEqual([])
  expect(arrived.size).toBe(bodies.length)
  expect(bodies).toEqual([...bodies].sort((x, y) => Number(x) - Number(y)))
}
