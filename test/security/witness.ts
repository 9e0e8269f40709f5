/**
 * A witness of a node's health for abuse tests: a publisher and a subscriber (other users than
 * the abusers) that exchange a message on demand. Each check waits (bounded) for the message, so
 * a node that stopped serving other clients fails the test; no check measures speed.
 */
import { expect } from "vitest"
import type { RunningNode } from "../support/bunNode.ts"
import { isServing, residentBytes } from "../support/gatewayNodes.ts"
import { type Client, connectAs } from "../support/wsClient.ts"

export interface Witness {
  /** Publishes one message and waits until the subscriber has it, in order. */
  readonly stillServed: () => Promise<void>
  readonly clients: ReadonlyArray<Client>
}

export const startWitness = async (node: RunningNode, label: string): Promise<Witness> => {
  const channel = `witness:${label}`
  const { client: publisher } = await connectAs(node.url(), { sub: `${label}-pub`, weft: { publish: [channel] } })
  const { client: subscriber } = await connectAs(node.url(), { sub: `${label}-sub`, weft: { subscribe: [channel] } }, "json")
  subscriber.send({ type: "subscribe", id: 1, channel })
  expect(await subscriber.answer(1)).toEqual({ type: "ack", id: 1 })
  let sent = 0
  return {
    clients: [publisher, subscriber],
    stillServed: async () => {
      const seq = ++sent
      publisher.send({ type: "publish", id: seq, channel, data: { seq } })
      expect(await publisher.answer(seq, 15_000)).toEqual({ type: "ack", id: seq })
      expect((await subscriber.nextOf("message", undefined, 15_000)).data).toEqual({ seq })
      expect(subscriber.undecodable).toEqual([])
    }
  }
}

const mib = 1024 * 1024

/**
 * Runs `abuse` and checks that the node's resident memory grew by less than `boundMiB` over it
 * (measured after the witness saw the node serve again), that the node still answers /healthz,
 * and that the witness is served before and after. `warmUp`, run before the first measure, lets
 * the node reach its working size (JIT, heap, caches) so that the bound is about the abuse; the
 * garbage collector still swings RSS by a few tens of MiB, which the bounds allow for.
 */
export const withinMemory = async (
  node: RunningNode,
  witness: Witness,
  boundMiB: number,
  abuse: () => Promise<void>,
  warmUp?: () => Promise<void>
): Promise<void> => {
  if (warmUp !== undefined) await warmUp()
  await witness.stillServed()
  const before = residentBytes(node)
  await abuse()
  await witness.stillServed()
  const after = residentBytes(node)
  expect(after - before, `resident memory grew by ${((after - before) / mib).toFixed(1)} MiB (bound ${boundMiB} MiB)`).toBeLessThan(boundMiB * mib)
  expect(node.process.exitCode).toBeNull()
  expect(await isServing(node)).toBe(true)
}
