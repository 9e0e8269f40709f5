/**
 * deploy/haproxy/weft.cfg in front of three real Bun nodes on the real Redis (Debian's HAProxy,
 * TLS with a self-signed certificate, loopback only). SDK clients reach the cluster only through
 * HAProxy's TLS entry; one node is drained with SIGTERM, and HAProxy's active health check on
 * /readyz marks it DOWN (503 from a node still running) while its clients move.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startCluster, stopAll } from "../../packages/client/test/support/nodes.ts"
import { waitUntil } from "../support/wait.ts"
import { haproxyServerStat, type RunningBalancer, startHaproxy } from "./support/balancerProcess.ts"
import { checkEdge, drainThroughBalancer, type NamedNode, upstreamsOf } from "./support/drainScenario.ts"
import { productionConfig } from "./support/productionConfig.ts"
import { closeAll } from "./support/tlsClient.ts"

let nodes: ReadonlyArray<NamedNode> = []
let balancer: RunningBalancer | undefined

/** The backend of deploy/haproxy/weft.cfg. */
const backend = "weft_nodes"

beforeAll(async () => {
  // The drain delay the Kubernetes manifests give the nodes.
  const started = await startCluster("haproxy", 3, ["--drain-delay-ms", String(productionConfig().drainDelayMs)])
  nodes = started.map((node, i) => ({ name: `haproxy-${i}`, node }))
  balancer = await startHaproxy(upstreamsOf(nodes))
}, 90_000)

afterAll(async () => {
  await closeAll()
  await balancer?.stop()
  await stopAll()
})

describe("HAProxy (deploy/haproxy/weft.cfg) in front of three nodes", () => {
  it("checks every node on /readyz, terminates TLS, redirects plain HTTP to it and keeps /metrics private", async () => {
    const running = balancer!
    for (const { name } of nodes) {
      // Servers start UP before their first check; wait for a check that answered 200.
      await waitUntil(`HAProxy checks ${name}`, async () => (await haproxyServerStat(running, backend, name))["check_status"] === "L7OK", 10_000)
      expect(await haproxyServerStat(running, backend, name)).toMatchObject({ status: "UP", check_code: "200" })
    }
    await checkEdge(running, nodes)
  })

  it("clients chat across nodes; a drained node's clients come back through HAProxy to the others, losing nothing", async () => {
    const running = balancer!
    await drainThroughBalancer(running, nodes, async (victim) => {
      await waitUntil("HAProxy marks the draining node DOWN", async () =>
        (await haproxyServerStat(running, backend, victim.name))["status"] === "DOWN", 15_000)
      // Its check got an answer, 503: the node was draining, not gone.
      expect(await haproxyServerStat(running, backend, victim.name)).toMatchObject({ check_status: "L7STS", check_code: "503" })
    })
  }, 90_000)
})
