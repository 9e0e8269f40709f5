// The SDK's built ESM bundle under Bun or Deno, on the runtime's own global
// WebSocket and fetch: connect, subscribe, publish, receive, rpc, close.
// Prints one JSON line. Arguments: <node url> <jwt> <channel>.
import { createClient, ticketFromJwt } from "./index.js"

const deno = globalThis.Deno
const args = deno !== undefined ? deno.args : process.argv.slice(2)
const exit = (code) => (deno !== undefined ? deno.exit(code) : process.exit(code))
const runtime = deno !== undefined ? `deno ${deno.version.deno}` : `bun ${globalThis.Bun.version}`
const [url, jwt, channel] = args

const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, runtime, error: "no result within 15 s" }))
  exit(1)
}, 15_000)

try {
  const client = createClient({ url, getTicket: ticketFromJwt({ jwt }) })
  const info = await client.connect()
  let resolveMessage
  const received = new Promise((resolve) => (resolveMessage = resolve))
  const subscription = client.subscribe(channel, (message) => resolveMessage(message))
  await subscription.ready
  const ack = await client.publish(channel, { hello: runtime, bytes: new Uint8Array([1, 2, 3]) })
  const message = await received
  const conn = await client.rpc("conn.info")
  await client.close()
  clearTimeout(deadline)
  console.log(JSON.stringify({
    ok: true,
    runtime,
    node: info.node,
    ack,
    channel: message.channel,
    from: message.from,
    hello: message.data.hello,
    bytes: message.data.bytes instanceof Uint8Array ? Array.from(message.data.bytes) : null,
    subscriptions: conn.subscriptions,
    state: client.state
  }))
  exit(0)
} catch (error) {
  console.log(JSON.stringify({ ok: false, runtime, error: String(error && error.stack || error) }))
  exit(1)
}
