/**
 * Single activation and presence, seen from outside: every node asked about a room names the same
 * activation, on a live node; the nodes' entity gauges (`effect_cluster_entities`) add up to one
 * activation per room and per connected user; each room's presence lists its members once, with
 * one device each (no connection of a dead node left behind).
 */
import type { ChatLoad } from "./chatLoad.ts"
import { type ChaosNode, roomActivation, scrape } from "./chaosCluster.ts"

/** Problems with the rooms' activations: asked through every node in `live`. */
export const activationProblems = async (load: ChatLoad, live: ReadonlyArray<ChaosNode>, deadRunners: ReadonlyArray<string> = []): Promise<Array<string>> => {
  const problems: Array<string> = []
  for (const room of load.rooms) {
    const answers = await Promise.all(live.map((node) => roomActivation(node, room)))
    const activations = new Set(answers.map((answer) => answer.activation))
    if (activations.size !== 1) problems.push(`${room}: ${activations.size} activations ${[...activations].join(",")}`)
    const runner = answers[0]!.runner
    if (deadRunners.includes(runner)) problems.push(`${room}: still placed on the dead runner ${runner}`)
  }
  return problems
}

/** The live nodes' `effect_cluster_entities` gauges of `type`, summed. */
export const entityCount = async (live: ReadonlyArray<ChaosNode>, type: "room" | "user"): Promise<number> => {
  const scrapes = await Promise.all(live.map(scrape))
  return scrapes.reduce((sum, metrics) => sum + metrics.total("effect_cluster_entities", { type }), 0)
}

/** Rooms whose presence is not exactly their members, one device each. */
export const presenceProblems = async (load: ChatLoad): Promise<Array<string>> => {
  const problems: Array<string> = []
  for (const room of load.rooms) {
    const members = load.members.filter((m) => m.room === room)
    const present = await members[0]!.recorded.client.rooms.presence(room, { timeoutMs: 20_000 })
    const expected = members.map((m) => `${m.user}:1`).sort()
    const actual = present.map((entry) => `${entry.user}:${entry.devices}`).sort()
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      const extra = actual.filter((entry) => !expected.includes(entry))
      const missing = expected.filter((entry) => !actual.includes(entry))
      problems.push(`${room}: presence extra [${extra.slice(0, 5).join(" ")}] missing [${missing.slice(0, 5).join(" ")}]`)
    }
  }
  return problems
}
