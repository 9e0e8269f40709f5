/**
 * deploy/nginx/weft.conf in front of three real Bun nodes on the real Redis (Debian's nginx,
 * TLS with a self-signed certificate, loopback only). SDK clients reach the cluster only through
 * nginx's TLS entry; one node is drained with SIGTERM, and nginx's passive health check (a
 * draining node refuses new WebSockets with 503) takes it out while its clients move.
 */
import { afterAll, beforeAll, describe, it } from "vitest"
import { startCluster, stopAll } from "../../packages/client/test/support/nodes.ts"
import { waitUntil } from "../support/wait.ts"
import { nginxErrorLog, type RunningBalancer, startNginx } from "./support/balancerProcess.ts"
import { checkEdge, drainThroughBalancer, type NamedNode, portOf, upstreamsOf } from "./support/drainScenario.ts"
import { productionConfig } from "./support/productionConfig.ts"
import { closeAll } from "./support/tlsClient.ts"

let nodes: ReadonlyArray<NamedNode> = []
let balancer: RunningBalancer | undefined

beforeAll(async () => {
  // The drain delay the Kubernetes manifests give the nodes.
  const started = await startCluster("nginx", 3, ["--drain-delay-ms", String(productionConfig().drainDelayMs)])
  nodes = started.map((node, i) => ({ name: `nginx-${i}`, node }))
  balancer = await startNginx(upstreamsOf(nodes))
}, 90_000)

afterAll(async () => {
  await closeAll()
  await balancer?.stop()
  await stopAll()
})

describe("nginx (deploy/nginx/weft.conf) in front of three nodes", () => {
  it("terminates TLS, redirects plain HTTP to it and keeps /metrics private", async () => {
    await checkEdge(balancer!, nodes)
  })

  it("clients chat across nodes; a drained node's clients come back through nginx to the others, losing nothing", async () => {
    const running = balancer!
    await drainThroughBalancer(running, nodes, async (victim) => {
      // nginx logs the node it takes out, with the request that found it refusing.
      const disabled = (line: string) =>
        line.includes("upstream server temporarily disabled while reading response header") &&
        line.includes(`127.0.0.1:${portOf(victim.node)}`)
      await waitUntil("nginx takes the draining node out", async () => nginxErrorLog(running).split("\n").some(disabled), 10_000)
    })
  }, 90_000)
})
