/**
 * The committed deployment files, read for the tests: the Dockerfile as instructions, the
 * Kubernetes manifests as YAML documents, and the node's configuration as a manifest sets it,
 * decoded by the node's own loader (so its defaults are never copied into a test).
 */
import { Either } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parseAllDocuments } from "yaml"
import * as NodeConfig from "../../../services/node/src/NodeConfig.ts"
import { repoRoot } from "../../support/bunNode.ts"

export const deployPath = (...parts: ReadonlyArray<string>): string => join(repoRoot, "deploy", ...parts)

export const readRepoFile = (...parts: ReadonlyArray<string>): string => readFileSync(join(repoRoot, ...parts), "utf8")

export const readDeployFile = (...parts: ReadonlyArray<string>): string => readFileSync(deployPath(...parts), "utf8")

/** The node's configuration from these `WEFT_*` variables and no flags; `{}` gives its defaults. */
export const nodeConfig = (env: Readonly<Record<string, string>>): NodeConfig.NodeConfig => {
  const loaded = NodeConfig.load([], env, "deploy-test")
  if (Either.isRight(loaded)) return loaded.right
  throw new Error(loaded.left._tag === "ConfigError" ? loaded.left.message : "unexpected --help")
}

/** Every environment variable the node reads. */
export const knownVariables: ReadonlySet<string> = new Set(NodeConfig.allKeys.map((key) => key.env))

/** Every YAML document of a file under deploy/k8s, as plain data. */
export const manifests = (file: string): ReadonlyArray<unknown> =>
  parseAllDocuments(readDeployFile("k8s", file)).map((document) => {
    if (document.errors.length > 0) throw new Error(`deploy/k8s/${file}: ${document.errors.map(String).join("; ")}`)
    const data: unknown = document.toJS()
    return data
  })

export interface Instruction {
  /** Upper-case keyword: `FROM`, `RUN`, `HEALTHCHECK`... */
  readonly keyword: string
  /** Everything after the keyword, continuation lines joined. */
  readonly args: string
  /** Index of the build stage (the `FROM` it follows), 0 for the first. */
  readonly stage: number
}

/** A Dockerfile's instructions: comments dropped, `\` continuations joined. */
export const dockerInstructions = (text: string): ReadonlyArray<Instruction> => {
  const instructions: Array<Instruction> = []
  let pending = ""
  let stage = -1
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (pending === "" && (line === "" || line.startsWith("#"))) continue
    if (line.startsWith("#")) continue
    const continued = line.endsWith("\\")
    pending += `${continued ? line.slice(0, -1) : line} `
    if (continued) continue
    const [, keyword = "", args = ""] = /^(\S+)\s*([\s\S]*)$/.exec(pending.trim()) ?? []
    const upper = keyword.toUpperCase()
    if (upper === "FROM") stage++
    instructions.push({ keyword: upper, args, stage })
    pending = ""
  }
  if (pending !== "") throw new Error(`Dockerfile ends inside a continued instruction: ${pending}`)
  return instructions
}

/** The argument list of an exec-form instruction (`CMD ["bun", "x"]`). */
export const execForm = (args: string): ReadonlyArray<string> => {
  const parsed: unknown = JSON.parse(args)
  if (!Array.isArray(parsed) || !parsed.every((part): part is string => typeof part === "string")) {
    throw new Error(`not an exec-form array of strings: ${args}`)
  }
  return parsed
}
