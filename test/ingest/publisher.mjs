// A stand-in for another company service that publishes events on the bus it
// already runs, with that bus's own client library and nothing of Weft's:
// `node publisher.mjs <nats|amqp|redis> '<json config>'`. Plain Node, plain JavaScript.
//
// It reads one message per line on stdin, `{"subject": "...", "body": "...", "id"?: "..."}`,
// and publishes them in order; `"__SENT_AT__"` in a body is replaced by the time of its publish
// (ms). With `ratePerSecond` in the config it spreads them out. At the end of stdin it prints
// `{"published": <count>}` once every message is acknowledged by the bus, and exits.
//
// config: nats  {"url": "nats://127.0.0.1:4222"}
//         amqp  {"url": "amqp://guest:guest@127.0.0.1:5672", "exchange": "x"} (routing key = subject)
//         redis {"url": "redis://127.0.0.1:6379", "stream": "key"} (fields `subject`, `envelope`)
import { createInterface } from "node:readline"

const [bus, configText] = process.argv.slice(2)
const config = JSON.parse(configText ?? "{}")
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const messages = []
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "") messages.push(JSON.parse(line))
}

const stamp = (body) => body.replace("\"__SENT_AT__\"", String(Date.now()))

/** Publishes with `send(message)` (which may return a promise to await later), paced when asked. */
const run = async (send) => {
  const pending = []
  const started = Date.now()
  for (const [index, message] of messages.entries()) {
    if (config.ratePerSecond !== undefined) {
      const due = started + (index * 1000) / config.ratePerSecond
      if (due > Date.now()) await sleep(due - Date.now())
    }
    pending.push(send(message))
    // Bounded: at most 256 unconfirmed publishes.
    if (pending.length >= 256) await Promise.all(pending.splice(0))
  }
  await Promise.all(pending)
}

if (bus === "nats") {
  const { connect, headers } = await import("@nats-io/transport-node")
  const { jetstream } = await import("@nats-io/jetstream")
  const nc = await connect({ servers: config.url })
  const js = jetstream(nc)
  await run((message) => {
    const options = {}
    if (message.id !== undefined) {
      const h = headers()
      h.set("Nats-Msg-Id", message.id)
      options.headers = h
    }
    return js.publish(message.subject, stamp(message.body), options)
  })
  await nc.close()
} else if (bus === "amqp") {
  const amqp = (await import("amqplib")).default
  const connection = await amqp.connect(config.url)
  const channel = await connection.createConfirmChannel()
  await run((message) =>
    new Promise((resolve, reject) => {
      const options = { persistent: true, contentType: "application/json", timestamp: Math.floor(Date.now() / 1000) }
      if (message.id !== undefined) options.messageId = message.id
      channel.publish(config.exchange, message.subject, Buffer.from(stamp(message.body)), options, (error) => (error ? reject(error) : resolve()))
    })
  )
  await channel.waitForConfirms()
  await connection.close()
} else if (bus === "redis") {
  const { default: Redis } = await import("ioredis")
  const redis = new Redis(config.url)
  await run((message) => redis.xadd(config.stream, "*", "subject", message.subject, "envelope", stamp(message.body)))
  redis.disconnect()
} else {
  console.error(`unknown bus ${bus}`)
  process.exit(2)
}

console.log(JSON.stringify({ published: messages.length }))
