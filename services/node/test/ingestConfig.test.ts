/** The ingest role's keys in the node's configuration: decoded and checked at start, with a message naming the key. */
import { Either, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { ingestConfig } from "../src/Node.ts"
import * as NodeConfig from "../src/NodeConfig.ts"

const load = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => NodeConfig.load(argv, env, "n1")
const problem = (argv: ReadonlyArray<string>): string =>
  Either.match(load(argv), { onLeft: (error) => (error._tag === "ConfigError" ? error.message : "help"), onRight: () => "accepted" })

describe("the ingest keys", () => {
  it("default to a role that consumes nothing, and the role is among the defaults", () => {
    const config = Either.getOrThrow(load([]))
    expect(config.roles).toContain("ingest")
    const ingest = ingestConfig(config)
    expect(ingest).toMatchObject({ rules: [], dedupeWindowMs: 3_600_000, maxInFlight: 64, redeliveryMs: 30_000 })
    expect(ingest.nats).toBeUndefined()
    expect(ingest.amqp).toBeUndefined()
    expect(ingest.redisStream).toBeUndefined()
  })

  it("become each source's settings, from flags and the environment", () => {
    const rules = [{ match: "user.{user}.>", to: { users: ["{user}"] } }]
    const config = Either.getOrThrow(load([
      "--ingest-nats-url", "nats://a:4222,nats://b:4222",
      "--ingest-nats-stream", "ORDERS",
      "--ingest-amqp-queue", "weft-events",
      "--ingest-redis-stream", "events",
      "--redis-url", "redis://127.0.0.1:6379",
      "--ingest-max-in-flight", "8"
    ], { WEFT_INGEST_AMQP_URL: "amqp://guest:secret@127.0.0.1:5672", WEFT_INGEST_RULES: JSON.stringify(rules) }))
    const ingest = ingestConfig(config)
    expect(ingest.nats).toEqual({ servers: ["nats://a:4222", "nats://b:4222"], stream: "ORDERS" })
    expect(ingest.amqp && Redacted.value(ingest.amqp.url)).toBe("amqp://guest:secret@127.0.0.1:5672")
    expect(String(config.ingestAmqpUrl)).not.toContain("secret")
    expect(ingest.redisStream).toBe("events")
    expect(ingest.rules).toEqual(rules)
    expect(ingest.maxInFlight).toBe(8)
  })

  it("refuse bad rules and keys that need each other, saying which", () => {
    expect(problem(["--ingest-rules", "[{\"match\": \"user.*\", \"to\": {\"users\": [\"{user}\"]}}]"])).toMatch(/ingestRules[\s\S]*\{user\}.*is not captured/)
    expect(problem(["--ingest-rules", "not json"])).toMatch(/ingestRules/)
    expect(problem(["--ingest-nats-url", "nats://127.0.0.1:4222"])).toMatch(/--ingest-nats-url and --ingest-nats-stream go together/)
    expect(problem(["--ingest-amqp-queue", "q"])).toMatch(/--ingest-amqp-url and --ingest-amqp-queue go together/)
    expect(problem(["--ingest-redis-stream", "events"])).toMatch(/--ingest-redis-stream needs --redis-url/)
    expect(problem(["--ingest-nats-url", "http://x", "--ingest-nats-stream", "S"])).toMatch(/nats:\/\//)
    expect(problem(["--ingest-amqp-url", "amqp://x", "--ingest-amqp-queue", "amq.reserved"])).toMatch(/ingestAmqpQueue/)
    expect(problem(["--ingest-redelivery-ms", "10"])).toMatch(/ingestRedeliveryMs/)
    expect(problem(["--roles", "ingest,gateway"])).toBe("accepted")
  })
})
