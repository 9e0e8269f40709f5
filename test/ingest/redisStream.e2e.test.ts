/**
 * Ingest from a Redis stream on the nodes' own Redis (REDIS_URL, default
 * 127.0.0.1:6379; `.ci/run` starts one): a stream key per run, its consumer
 * group made by the nodes, dead letters in `<stream>:dead-letter`.
 */
import IORedis from "ioredis"
import { describe, expect, it } from "vitest"
import { redisUrl } from "../support/ports.ts"
import { answers, type BusFixture, ingestSuite } from "./harness.ts"

const parsed = new URL(redisUrl)
const available = await answers(Number(parsed.port || 6379), parsed.hostname)

const fieldsOf = (fields: ReadonlyArray<string>): Map<string, string> => {
  const map = new Map<string, string>()
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!)
  return map
}

const fixture = async (): Promise<BusFixture> => {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const stream = `weft-t-${suffix}:events`
  const redis = new IORedis(redisUrl, { maxRetriesPerRequest: 1 })
  return {
    bus: "redis",
    flags: ["--ingest-redis-stream", stream],
    publisherConfig: { url: redisUrl, stream },
    prefix: `t${suffix.replace(/-/g, "")}`,
    drained: async (cluster) => {
      const group = `weft-${cluster}`
      const groups: unknown = await redis.call("XINFO", "GROUPS", stream)
      if (!Array.isArray(groups)) return false
      for (const entry of groups) {
        if (!Array.isArray(entry)) continue
        const info = new Map<unknown, unknown>()
        for (let i = 0; i + 1 < entry.length; i += 2) info.set(entry[i], entry[i + 1])
        if (info.get("name") === group) return info.get("lag") === 0 && info.get("pending") === 0
      }
      return false
    },
    deadLetters: async () => {
      const entries = await redis.xrange(`${stream}:dead-letter`, "-", "+")
      return entries.map(([, fields]) => {
        const values = fieldsOf(fields)
        return { reason: values.get("reason") ?? "", message: values.get("message") ?? "", body: values.get("envelope") ?? "" }
      })
    },
    cleanup: async () => {
      await redis.del(stream, `${stream}:dead-letter`).catch(() => 0)
      redis.disconnect()
    }
  }
}

if (available) {
  ingestSuite("ingest from a Redis stream", fixture)
} else {
  describe("ingest from a Redis stream", () => {
    // A bus that does not answer is a failure, not a skip: CI must run every source.
    it("has its server", () => {
      expect.fail(`no Redis answers at ${redisUrl} (.ci/run starts one)`)
    })
  })
}
