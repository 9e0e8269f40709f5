/**
 * deploy/k8s agrees with the node: ports, probe paths, the runner address, the grace period
 * against the drain, the non-root user against deploy/Dockerfile, and every variable of the
 * ConfigMap and the Secret decoded by the node's own config loader. Parsing only: no cluster.
 */
import { existsSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { deployPath, dockerInstructions, knownVariables, manifests, readDeployFile } from "./support/deployFiles.ts"
import { type Container, decode, Deployment, Kustomization, only, PodDisruptionBudget, Service } from "./support/kubernetes.ts"
import { configMap, productionConfig, secret } from "./support/productionConfig.ts"
import { exitDeadlineMs } from "./support/shutdownBackstop.ts"

const deployment = () => decode(Deployment, only(manifests("deployment.yaml"), "Deployment", "deployment.yaml"), "deploy/k8s/deployment.yaml")
const service = (file: string) => decode(Service, only(manifests(file), "Service", file), `deploy/k8s/${file}`)
const container = (): Container => deployment().spec.template.spec.containers[0]

/** A probe's or Service's port (a number or a container port's name) as a number. */
const containerPort = (port: number | string): number => {
  if (typeof port === "number") return port
  const named = container().ports.find((candidate) => candidate.name === port)
  if (named === undefined) throw new Error(`no container port named ${port}`)
  return named.containerPort
}

/** `selector` picks the Deployment's pods. */
const selectsPods = (selector: Readonly<Record<string, string>>) => {
  const labels = deployment().spec.template.metadata.labels
  expect(Object.keys(selector).length).toBeGreaterThan(0)
  for (const [key, value] of Object.entries(selector)) expect(labels[key]).toBe(value)
}

describe("deploy/k8s", () => {
  it("lists every manifest in kustomization.yaml (Redis stays optional)", () => {
    const { resources } = decode(Kustomization, only(manifests("kustomization.yaml"), "Kustomization", "kustomization.yaml"), "kustomization.yaml")
    for (const file of resources) expect(existsSync(deployPath("k8s", file)), file).toBe(true)
    expect([...resources].sort()).toEqual(["configmap.yaml", "deployment.yaml", "pdb.yaml", "secret.yaml", "service-runners.yaml", "service.yaml"])
    expect(existsSync(deployPath("k8s", "redis.yaml"))).toBe(true)
  })

  it("configures the node only with variables it knows, and values it accepts", () => {
    const variables = [...Object.keys(configMap().data), ...Object.keys(secret().stringData)]
    expect(variables.filter((name) => !knownVariables.has(name))).toEqual([])
    // Throws with the node's own message on a value it would refuse at start.
    const config = productionConfig()
    expect(config.redisUrl).toBeDefined()
    expect(config.dev).toBe(false)
    // The ConfigMap and the Secret reach the container.
    expect(container().envFrom).toEqual(expect.arrayContaining([
      { configMapRef: { name: configMap().metadata.name } },
      { secretRef: { name: secret().metadata.name } }
    ]))
  })

  it("exposes the node's HTTP and runner ports and takes the runner address from the pod IP", () => {
    const config = productionConfig()
    expect(containerPort("http")).toBe(config.port)
    expect(containerPort("runner")).toBe(config.runnerPort)
    const env = new Map(container().env.map((variable) => [variable.name, variable]))
    expect(env.get("WEFT_RUNNER_HOST")?.valueFrom?.fieldRef?.fieldPath).toBe("status.podIP")
    expect(configMap().data["WEFT_RUNNER_HOST"]).toBeUndefined()
    expect(env.get("WEFT_NODE_ID")?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.name")
    const annotations = deployment().spec.template.metadata.annotations ?? {}
    expect(annotations).toMatchObject({ "prometheus.io/port": String(config.port), "prometheus.io/path": "/metrics" })
  })

  it("probes readiness on /readyz and liveness on /healthz, and readiness fails within the drain delay", () => {
    const config = productionConfig()
    const { readinessProbe, livenessProbe, startupProbe } = container()
    expect(readinessProbe.httpGet.path).toBe("/readyz")
    expect(livenessProbe.httpGet.path).toBe("/healthz")
    expect(startupProbe?.httpGet.path).toBe("/healthz")
    for (const probe of [readinessProbe, livenessProbe, startupProbe]) expect(containerPort(probe!.httpGet.port)).toBe(config.port)
    // /readyz says 503 from SIGTERM on; the pod must be out before its clients are sent away.
    expect(readinessProbe.periodSeconds * readinessProbe.failureThreshold * 1000).toBeLessThanOrEqual(config.drainDelayMs)
    expect(config.drainDelayMs).toBeGreaterThan(0)
  })

  it("gives a stopping pod longer than the node can take to drain and exit", () => {
    const config = productionConfig()
    expect(deployment().spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(exitDeadlineMs(config))
  })

  it("requests resources and runs as the Dockerfile's non-root user", () => {
    const { requests } = container().resources
    expect(requests.cpu).not.toBe("")
    expect(requests.memory).not.toBe("")
    const security = deployment().spec.template.spec.securityContext
    expect(security.runAsNonRoot).toBe(true)
    const user = dockerInstructions(readDeployFile("Dockerfile")).filter((instruction) => instruction.keyword === "USER").at(-1)?.args
    expect(user).toBe(`${security.runAsUser}:${security.runAsGroup}`)
    expect(security.runAsUser).toBeGreaterThan(0)
  })

  it("has a client Service on the HTTP port and a headless Service on the runner port", () => {
    const clients = service("service.yaml")
    selectsPods(clients.spec.selector)
    expect(clients.spec.clusterIP).toBeUndefined()
    expect(clients.spec.ports.map((port) => containerPort(port.targetPort))).toEqual([productionConfig().port])

    const runners = service("service-runners.yaml")
    selectsPods(runners.spec.selector)
    expect(runners.spec.clusterIP).toBe("None")
    // A starting node must be reachable by the others before it is ready.
    expect(runners.spec.publishNotReadyAddresses).toBe(true)
    expect(runners.spec.ports.map((port) => [port.port, containerPort(port.targetPort)])).toEqual([
      [productionConfig().runnerPort, productionConfig().runnerPort]
    ])
  })

  it("lets voluntary disruptions take at most one pod at a time", () => {
    const budget = decode(PodDisruptionBudget, only(manifests("pdb.yaml"), "PodDisruptionBudget", "pdb.yaml"), "deploy/k8s/pdb.yaml")
    selectsPods(budget.spec.selector.matchLabels)
    expect(budget.spec.maxUnavailable).toBe(1)
    expect(deployment().spec.replicas).toBeGreaterThan(1)
  })

  it("points the Secret's Redis URL at the optional reference Redis", () => {
    const redis = decode(Service, only(manifests("redis.yaml"), "Service", "redis.yaml"), "deploy/k8s/redis.yaml")
    const url = new URL(productionConfig().redisUrl ?? "")
    expect(url.hostname).toBe(redis.metadata.name)
    expect(Number(url.port)).toBe(redis.spec.ports[0].port)
  })
})
