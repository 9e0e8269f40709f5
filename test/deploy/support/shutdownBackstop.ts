/**
 * How long a stopping node takes at most before it exits anyway: services/node/src/main.ts
 * computes it from the config (drain delay + shutdown deadline + a margin). The margin is read
 * from main.ts itself, so a change there cannot leave the manifests' grace period behind.
 */
import type { NodeConfig } from "../../../services/node/src/NodeConfig.ts"
import { readRepoFile } from "./deployFiles.ts"

export const exitDeadlineMs = (config: NodeConfig): number => {
  const source = readRepoFile("services", "node", "src", "main.ts")
  const match = /const exitDeadlineMs = config\.drainDelayMs \+ config\.shutdownDeadlineMs \+ ([\d_]+)\b/.exec(source)
  if (match === null) throw new Error("services/node/src/main.ts: the exitDeadlineMs formula changed; update test/deploy/support/shutdownBackstop.ts")
  return config.drainDelayMs + config.shutdownDeadlineMs + Number(match[1]!.replaceAll("_", ""))
}

/** The signals main.ts drains on. */
export const drainSignals = (): ReadonlyArray<string> => {
  const source = readRepoFile("services", "node", "src", "main.ts")
  const match = /for \(const signal of \[([^\]]*)\]/.exec(source)
  if (match === null) throw new Error("services/node/src/main.ts: the signal handlers changed; update test/deploy/support/shutdownBackstop.ts")
  return [...match[1]!.matchAll(/"([A-Z]+)"/g)].map((signal) => signal[1]!)
}
