/**
 * What a chaos scenario checks once the load stopped, as lists of problems (empty: fine), so
 * that the tests and the soak runner share them. Each list is cut at `limit` entries: one
 * line per problem is enough to start from, a thousand are noise.
 */
import type { WeftClient } from "../../../packages/client/src/index.ts"
import type { ChatLoad, Member } from "./chatLoad.ts"
import { keyOf } from "./chatLoad.ts"

const limit = 20

const capped = (problems: Array<string>): Array<string> =>
  problems.length <= limit ? problems : [...problems.slice(0, limit), `... and ${problems.length - limit} more`]

/**
 * Per member: every message acknowledged in its room arrived, none twice, in the room's order
 * (offsets strictly growing within one epoch).
 */
export const deliveryProblems = (load: ChatLoad): Array<string> => {
  const acked = load.ackedByRoom()
  const problems: Array<string> = []
  for (const m of load.members) {
    const keys = m.received.map((entry) => keyOf(entry.body))
    const seen = new Set(keys)
    if (seen.size !== keys.length) problems.push(`${m.user}: received a message twice`)
    const epochs = new Set(m.received.map((entry) => entry.position?.epoch))
    if (epochs.size > 1) problems.push(`${m.user}: messages from ${epochs.size} epochs`)
    const offsets = m.received.map((entry) => entry.position?.offset ?? Number.NaN)
    const outOfOrder = offsets.findIndex((offset, i) => i > 0 && !(offset > offsets[i - 1]!))
    if (outOfOrder !== -1) problems.push(`${m.user}: offset ${offsets[outOfOrder]} after ${offsets[outOfOrder - 1]}`)
    const missing = (acked.get(m.room) ?? []).filter((entry) => !seen.has(entry.key))
    if (missing.length > 0) problems.push(`${m.user} (${m.room}): ${missing.length} acknowledged messages missing, first ${missing[0]!.key}`)
  }
  return capped(problems)
}

/** Whether every member has every acknowledged message of its room (to wait on before checking). */
export const allDelivered = (load: ChatLoad): boolean => {
  const acked = load.ackedByRoom()
  return load.members.every((m) => {
    const wanted = acked.get(m.room) ?? []
    if (m.received.length < wanted.length) return false
    const seen = new Set(m.received.map((entry) => keyOf(entry.body)))
    return wanted.every((entry) => seen.has(entry.key))
  })
}

export interface StoredMessage {
  readonly key: string | undefined
  readonly epoch: string | undefined
  readonly offset: number | undefined
}

/** The room's whole retained history, oldest first, read through `client` (`room.history`). */
export const readHistory = async (client: WeftClient, room: string): Promise<Array<StoredMessage>> => {
  const stored: Array<StoredMessage> = []
  let after = 0
  // Bounded: 200 pages of 500 is far more than any scenario writes.
  for (let page = 0; page < 200; page++) {
    const result = await client.rooms.history(room, { after, limit: 500, timeoutMs: 20_000 })
    for (const message of result.messages) {
      const data = message.data
      const body = typeof data === "object" && data !== null && "kind" in data && data.kind === "message" && "body" in data ? data.body : undefined
      stored.push({ key: keyOf(body), epoch: message.position?.epoch, offset: message.position?.offset })
    }
    const last = result.messages.at(-1)?.position?.offset
    if (last === undefined || last >= result.last) break
    after = last
  }
  return stored
}

/**
 * Per room: one epoch, dense offsets, every acknowledged message stored once, at the position
 * its acknowledgement named.
 */
export const historyProblems = async (load: ChatLoad, reader: Member): Promise<Array<string>> => {
  const problems: Array<string> = []
  const acked = load.ackedByRoom()
  for (const room of load.rooms) {
    const stored = await readHistory(reader.recorded.client, room)
    const epochs = new Set(stored.map((entry) => entry.epoch))
    if (epochs.size > 1) problems.push(`${room}: history has ${epochs.size} epochs`)
    const gap = stored.findIndex((entry, i) => i > 0 && entry.offset !== (stored[i - 1]!.offset ?? 0) + 1)
    if (gap !== -1) problems.push(`${room}: offset ${stored[gap]!.offset} follows ${stored[gap - 1]!.offset}`)
    const byKey = new Map<string, Array<number | undefined>>()
    for (const entry of stored) {
      if (entry.key === undefined) continue
      byKey.set(entry.key, [...(byKey.get(entry.key) ?? []), entry.offset])
    }
    const twice = [...byKey].filter(([, offsets]) => offsets.length > 1)
    if (twice.length > 0) problems.push(`${room}: ${twice.length} messages stored twice, e.g. ${twice[0]![0]} at ${twice[0]![1].join(",")}`)
    // Two acknowledgements at one position: two writers each believed they appended there (a fork).
    const positions = (acked.get(room) ?? []).flatMap((entry) => (entry.position === undefined ? [] : [`${entry.position.epoch}/${entry.position.offset}`]))
    if (new Set(positions).size !== positions.length) problems.push(`${room}: two acknowledgements name the same position`)
    // A room keeps its newest events only (`--history-max-length`): older ones were trimmed, not lost.
    const firstRetained = stored[0]?.offset ?? Number.POSITIVE_INFINITY
    for (const entry of acked.get(room) ?? []) {
      if (entry.position !== undefined && entry.position.offset < firstRetained) continue
      const offsets = byKey.get(entry.key)
      if (offsets === undefined) problems.push(`${room}: acknowledged ${entry.key} is not in the history`)
      else if (entry.position !== undefined && !offsets.includes(entry.position.offset)) {
        problems.push(`${room}: ${entry.key} acknowledged at ${entry.position.offset}, stored at ${offsets.join(",")}`)
      }
    }
  }
  return capped(problems)
}
