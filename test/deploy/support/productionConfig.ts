/**
 * The configuration deploy/k8s gives every pod: the ConfigMap's and the Secret's variables, and
 * the node's configuration decoded from them by the node's own loader.
 */
import type { NodeConfig } from "../../../services/node/src/NodeConfig.ts"
import { manifests, nodeConfig } from "./deployFiles.ts"
import { ConfigMap, decode, only, Secret } from "./kubernetes.ts"

export const configMap = () => decode(ConfigMap, only(manifests("configmap.yaml"), "ConfigMap", "configmap.yaml"), "deploy/k8s/configmap.yaml")

export const secret = () => decode(Secret, only(manifests("secret.yaml"), "Secret", "secret.yaml"), "deploy/k8s/secret.yaml")

/** Every `WEFT_*` variable a pod gets from the ConfigMap and the Secret. */
export const productionEnv = (): Readonly<Record<string, string>> => ({ ...configMap().data, ...secret().stringData })

export const productionConfig = (): NodeConfig => nodeConfig(productionEnv())
