/** `--tls-cert` and `--tls-key`: both or neither, from flags or the environment. (The wss test is in test/security.) */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as NodeConfig from "../src/NodeConfig.ts"

const load = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => NodeConfig.load(argv, env, "n1")

describe("the TLS keys", () => {
  it("are unset by default, and read from flags or the environment", () => {
    expect(Either.getOrThrow(load([]))).not.toHaveProperty("tlsCert")
    const config = Either.getOrThrow(load(["--tls-cert", "/etc/weft/cert.pem"], { WEFT_TLS_KEY: "/etc/weft/key.pem" }))
    expect(config).toMatchObject({ tlsCert: "/etc/weft/cert.pem", tlsKey: "/etc/weft/key.pem" })
  })

  it("go together", () => {
    for (const argv of [["--tls-cert", "/c.pem"], ["--tls-key", "/k.pem"]]) {
      const refused = Either.flip(load(argv)).pipe(Either.getOrThrow)
      expect(refused._tag === "ConfigError" && refused.message).toMatch(/--tls-cert and --tls-key go together/)
    }
  })
})
