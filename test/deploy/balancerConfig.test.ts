/**
 * deploy/nginx and deploy/haproxy agree with the node and the Kubernetes manifests: they forward
 * to the node's port, wait longer than the heartbeat on open WebSockets, and (HAProxy) check
 * /readyz often enough to take a draining node out within its drain delay. The e2e tests next
 * to this one run both files for real.
 */
import { describe, expect, it } from "vitest"
import {
  durationMs,
  haproxyConfig,
  haproxyDefaultServer,
  haproxyServers,
  haproxyTimeouts,
  nginxConfig,
  nginxDirective,
  nginxServers
} from "./support/balancerConfig.ts"
import { productionConfig } from "./support/productionConfig.ts"

const config = productionConfig()
/** A client sends a frame at least every heartbeat; the node closes a socket silent for twice that. */
const longestSilenceMs = 2 * config.heartbeatMs

describe("deploy/nginx/weft.conf", () => {
  it("forwards to the node's port", () => {
    const servers = nginxServers(nginxConfig())
    expect(servers.length).toBeGreaterThan(1)
    for (const server of servers) expect(server.port).toBe(config.port)
  })

  it("upgrades WebSockets and keeps them open longer than a heartbeat-sized silence", () => {
    const text = nginxConfig()
    expect(nginxDirective(text, "proxy_http_version")).toEqual([["1.1"]])
    expect(nginxDirective(text, "proxy_set_header")).toEqual(expect.arrayContaining([["Upgrade", "$http_upgrade"], ["Connection", "$weft_connection"]]))
    for (const name of ["proxy_read_timeout", "proxy_send_timeout"]) {
      const values = nginxDirective(text, name)
      expect(values, name).toHaveLength(1)
      expect(durationMs(values[0]![0]!, "s"), name).toBeGreaterThan(longestSilenceMs)
    }
  })

  it("hashes on the affinity key consistently and retries a refused handshake elsewhere", () => {
    const text = nginxConfig()
    expect(nginxDirective(text, "hash")).toEqual([["$weft_affinity", "consistent"]])
    expect(nginxDirective(text, "proxy_next_upstream")[0]).toContain("http_503")
  })
})

describe("deploy/haproxy/weft.cfg", () => {
  const text = haproxyConfig()

  it("forwards to the node's port", () => {
    const servers = haproxyServers(text)
    expect(servers.length).toBeGreaterThan(1)
    for (const server of servers) expect(server.port).toBe(config.port)
  })

  it("keeps WebSockets open longer than a heartbeat-sized silence", () => {
    const timeouts = haproxyTimeouts(text)
    for (const name of ["client", "server", "tunnel"]) expect(timeouts.get(name), name).toBeGreaterThan(longestSilenceMs)
  })

  it("checks /readyz and takes a draining node out within the nodes' drain delay", () => {
    expect(text).toMatch(/^\s*http-check send meth GET uri \/readyz\s*$/m)
    expect(text).toMatch(/^\s*http-check expect status 200\s*$/m)
    const server = haproxyDefaultServer(text)
    expect(server.has("check")).toBe(true)
    const inter = durationMs(server.get("inter") ?? "", "ms")
    const fall = Number(server.get("fall"))
    const checkTimeout = haproxyTimeouts(text).get("check") ?? inter
    // The worst case: a check passes just before SIGTERM, then `fall` checks fail, the last one slow.
    expect(inter * fall + checkTimeout).toBeLessThanOrEqual(config.drainDelayMs)
  })

  it("hashes on the affinity key consistently", () => {
    expect(text).toMatch(/^\s*balance hash var\(txn\.affinity\)\s*$/m)
    expect(text).toMatch(/^\s*hash-type consistent\s*$/m)
  })
})
