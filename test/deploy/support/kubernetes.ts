/**
 * The parts of Kubernetes objects the manifest test checks, as Schemas: decoding a manifest
 * both types it and fails with the path of whatever is missing or malformed.
 */
import { Either, ParseResult, Schema } from "effect"

const Name = Schema.Struct({ name: Schema.String })
const Labels = Schema.Record({ key: Schema.String, value: Schema.String })
/** A port by number or by the name of a container port. */
const PortRef = Schema.Union(Schema.Number, Schema.String)

const HttpProbe = Schema.Struct({
  httpGet: Schema.Struct({ path: Schema.String, port: PortRef }),
  periodSeconds: Schema.Number,
  failureThreshold: Schema.Number,
  timeoutSeconds: Schema.optional(Schema.Number)
})

const EnvVar = Schema.Struct({
  name: Schema.String,
  value: Schema.optional(Schema.String),
  valueFrom: Schema.optional(Schema.Struct({ fieldRef: Schema.optional(Schema.Struct({ fieldPath: Schema.String })) }))
})

const Container = Schema.Struct({
  name: Schema.String,
  image: Schema.String,
  ports: Schema.Array(Schema.Struct({ name: Schema.String, containerPort: Schema.Number })),
  envFrom: Schema.Array(Schema.Struct({ configMapRef: Schema.optional(Name), secretRef: Schema.optional(Name) })),
  env: Schema.Array(EnvVar),
  startupProbe: Schema.optional(HttpProbe),
  readinessProbe: HttpProbe,
  livenessProbe: HttpProbe,
  resources: Schema.Struct({ requests: Schema.Struct({ cpu: Schema.String, memory: Schema.String }) })
})

export const Deployment = Schema.Struct({
  kind: Schema.Literal("Deployment"),
  metadata: Name,
  spec: Schema.Struct({
    replicas: Schema.Number,
    selector: Schema.Struct({ matchLabels: Labels }),
    template: Schema.Struct({
      metadata: Schema.Struct({ labels: Labels, annotations: Schema.optional(Labels) }),
      spec: Schema.Struct({
        terminationGracePeriodSeconds: Schema.Number,
        securityContext: Schema.Struct({ runAsNonRoot: Schema.Boolean, runAsUser: Schema.Number, runAsGroup: Schema.Number }),
        containers: Schema.NonEmptyArray(Container)
      })
    })
  })
})
export type Deployment = typeof Deployment.Type
export type Container = typeof Container.Type

export const Service = Schema.Struct({
  kind: Schema.Literal("Service"),
  metadata: Name,
  spec: Schema.Struct({
    clusterIP: Schema.optional(Schema.String),
    publishNotReadyAddresses: Schema.optional(Schema.Boolean),
    selector: Labels,
    ports: Schema.NonEmptyArray(Schema.Struct({ name: Schema.String, port: Schema.Number, targetPort: PortRef }))
  })
})
export type Service = typeof Service.Type

export const PodDisruptionBudget = Schema.Struct({
  kind: Schema.Literal("PodDisruptionBudget"),
  metadata: Name,
  spec: Schema.Struct({
    maxUnavailable: Schema.optional(Schema.Number),
    minAvailable: Schema.optional(Schema.Number),
    selector: Schema.Struct({ matchLabels: Labels })
  })
})

export const ConfigMap = Schema.Struct({ kind: Schema.Literal("ConfigMap"), metadata: Name, data: Labels })

export const Secret = Schema.Struct({ kind: Schema.Literal("Secret"), metadata: Name, stringData: Labels })

export const Kustomization = Schema.Struct({ kind: Schema.Literal("Kustomization"), resources: Schema.Array(Schema.String) })

/** Decodes `value` as `schema`, or throws naming `what` and the path of the problem. */
export const decode = <A, I>(schema: Schema.Schema<A, I>, value: unknown, what: string): A =>
  Either.getOrThrowWith(
    Schema.decodeUnknownEither(schema)(value),
    (error) => new Error(`${what}:\n${ParseResult.TreeFormatter.formatErrorSync(error)}`)
  )

/** The one document of `kind` among `documents` (a manifest file may hold several). */
export const only = (documents: ReadonlyArray<unknown>, kind: string, what: string): unknown => {
  const found = documents.filter((document) =>
    typeof document === "object" && document !== null && "kind" in document && document.kind === kind
  )
  if (found.length !== 1) throw new Error(`${what}: expected one ${kind}, found ${found.length}`)
  return found[0]
}
