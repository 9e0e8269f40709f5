/**
 * Ingest from RabbitMQ at 127.0.0.1:5672, guest/guest (`.ci/run` starts
 * rabbitmq-server when it is installed): a topic exchange and a queue per
 * run, declared here first as an operator would (with the same arguments
 * Weft declares them with), and the dead-letter queue Weft adds beside it.
 */
import amqp from "amqplib"
import { describe, expect, it } from "vitest"
import { answers, type BusFixture, type DeadLetter, ingestSuite } from "./harness.ts"

const url = process.env["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672"
const parsed = new URL(url)
const available = await answers(Number(parsed.port || 5672), parsed.hostname)

const fixture = async (): Promise<BusFixture> => {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const queue = `weft-t-${suffix}`
  const exchange = `weft-t-${suffix}-events`
  const deadLetter = `${queue}.dead-letter`
  const connection = await amqp.connect(url)
  const channel = await connection.createChannel()
  await channel.assertExchange(deadLetter, "fanout", { durable: true })
  await channel.assertQueue(deadLetter, { durable: true })
  await channel.bindQueue(deadLetter, deadLetter, "")
  await channel.assertExchange(exchange, "topic", { durable: true })
  await channel.assertQueue(queue, { durable: true, deadLetterExchange: deadLetter })
  await channel.bindQueue(queue, exchange, "#")
  const seen: Array<DeadLetter> = []
  const header = (value: unknown): string => (typeof value === "string" ? value : value instanceof Buffer ? value.toString() : "")
  return {
    bus: "amqp",
    flags: ["--ingest-amqp-url", url, "--ingest-amqp-queue", queue, "--ingest-amqp-exchange", exchange],
    publisherConfig: { url, exchange },
    prefix: `t${suffix.replace(/-/g, "")}`,
    // Nothing ready in the queue (what the nodes hold unacked, the suite reads from their metrics).
    drained: async () => (await channel.checkQueue(queue)).messageCount === 0,
    deadLetters: async () => {
      for (;;) {
        const message = await channel.get(deadLetter, { noAck: true })
        if (message === false) break
        seen.push({
          reason: header(message.properties.headers?.["x-weft-dead-letter-reason"]),
          message: header(message.properties.headers?.["x-weft-dead-letter-message"]),
          body: message.content.toString()
        })
      }
      return [...seen]
    },
    cleanup: async () => {
      await channel.deleteQueue(queue).catch(() => undefined)
      await channel.deleteQueue(deadLetter).catch(() => undefined)
      await channel.deleteExchange(exchange).catch(() => undefined)
      await channel.deleteExchange(deadLetter).catch(() => undefined)
      await connection.close().catch(() => undefined)
    }
  }
}

if (available) {
  ingestSuite("ingest from RabbitMQ", fixture)
} else {
  describe("ingest from RabbitMQ", () => {
    // A bus that does not answer is a failure, not a skip: CI must run every source.
    it("has its server", () => {
      expect.fail(`no RabbitMQ answers at ${parsed.hostname}:${parsed.port || 5672} (install rabbitmq-server; .ci/run starts it)`)
    })
  })
}
