/**
 * Ingest from NATS JetStream at 127.0.0.1:4222 (`.ci/run` starts nats-server
 * when it is installed): a stream per run, made here as an operator would,
 * and a stream that keeps the dead-letter subject.
 */
import { jetstreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { describe, expect, it } from "vitest"
import { answers, type BusFixture, ingestSuite } from "./harness.ts"

const url = process.env["NATS_URL"] ?? "nats://127.0.0.1:4222"
const port = Number(new URL(url).port || 4222)
const available = await answers(port, new URL(url).hostname)

const fixture = async (): Promise<BusFixture> => {
  const suffix = Math.random().toString(36).slice(2, 8)
  const stream = `WEFT_T_${process.pid}_${suffix}`
  const prefix = `t${suffix}`
  const deadLetterSubject = `weft.dead-letter.${stream}`
  const nc: NatsConnection = await connect({ servers: url })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] })
  await jsm.streams.add({ name: `${stream}_DLQ`, subjects: [deadLetterSubject] })
  return {
    bus: "nats",
    flags: ["--ingest-nats-url", url, "--ingest-nats-stream", stream],
    publisherConfig: { url },
    prefix,
    drained: async (cluster) => {
      const info = await jsm.consumers.info(stream, `weft-${cluster}`)
      return info.num_pending === 0 && info.num_ack_pending === 0
    },
    deadLetters: async () => {
      const letters = []
      const last = (await jsm.streams.info(`${stream}_DLQ`)).state.last_seq
      for (let seq = 1; seq <= last; seq++) {
        const message = await jsm.streams.getMessage(`${stream}_DLQ`, { seq })
        if (message === null) continue
        letters.push({
          reason: message.header.get("Weft-Dead-Letter-Reason"),
          message: message.header.get("Weft-Dead-Letter-Message"),
          body: new TextDecoder().decode(message.data)
        })
      }
      return letters
    },
    cleanup: async () => {
      await jsm.streams.delete(stream).catch(() => false)
      await jsm.streams.delete(`${stream}_DLQ`).catch(() => false)
      await nc.close()
    }
  }
}

if (available) {
  ingestSuite("ingest from NATS JetStream", fixture)
} else {
  describe("ingest from NATS JetStream", () => {
    // A bus that does not answer is a failure, not a skip: CI must run every source.
    it("has its server", () => {
      expect.fail(`no NATS server answers at ${url} (install nats-server; .ci/run starts it)`)
    })
  })
}
