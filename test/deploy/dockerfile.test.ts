/**
 * deploy/Dockerfile agrees with the node (ports, stop signal, health check path and port, entry
 * point) and with package.json (Bun's version, production dependencies only, every workspace).
 * Docker is not needed: the file is parsed, and its HEALTHCHECK command is run with the local
 * Bun against a real node.
 */
import { execFile } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, describe, expect, it } from "vitest"
import { bunBinary, repoRoot, type RunningNode, startListeningNode } from "../support/bunNode.ts"
import { freePort } from "../support/ports.ts"
import { dockerInstructions, execForm, type Instruction, nodeConfig, readDeployFile, readRepoFile } from "./support/deployFiles.ts"
import { drainSignals } from "./support/shutdownBackstop.ts"

const instructions = dockerInstructions(readDeployFile("Dockerfile"))
const lastStage = Math.max(...instructions.map((instruction) => instruction.stage))
const final = (keyword: string): ReadonlyArray<Instruction> =>
  instructions.filter((instruction) => instruction.stage === lastStage && instruction.keyword === keyword)
const one = (keyword: string): string => {
  const found = final(keyword)
  if (found.length !== 1) throw new Error(`deploy/Dockerfile: expected one ${keyword} in the final stage, found ${found.length}`)
  return found[0]!.args
}

const defaults = nodeConfig({})

/** HEALTHCHECK [--options] CMD ["..."]: the options and the command. */
const healthcheck = (): { readonly options: string; readonly command: ReadonlyArray<string> } => {
  const match = /^((?:--\S+\s+)*)CMD\s+(\[[\s\S]*\])\s*$/.exec(one("HEALTHCHECK"))
  if (match === null) throw new Error("deploy/Dockerfile: HEALTHCHECK should be [--options] CMD [\"exec\", \"form\"]")
  return { options: match[1]!, command: execForm(match[2]!) }
}

const running: Array<RunningNode> = []
afterAll(() => {
  for (const node of running.splice(0)) node.kill("SIGKILL")
})

describe("deploy/Dockerfile", () => {
  it("builds in stages and runs the Bun version package.json pins", () => {
    expect(lastStage).toBeGreaterThanOrEqual(1)
    const rootPackage: unknown = JSON.parse(readRepoFile("package.json"))
    const bun = typeof rootPackage === "object" && rootPackage !== null && "dependencies" in rootPackage &&
        typeof rootPackage.dependencies === "object" && rootPackage.dependencies !== null && "bun" in rootPackage.dependencies
      ? rootPackage.dependencies.bun
      : undefined
    expect(typeof bun).toBe("string")
    expect(one("FROM")).toMatch(new RegExp(`^oven/bun:${String(bun).replaceAll(".", "\\.")}(-[a-z]+)?(\\s+AS\\s+\\S+)?$`, "i"))
  })

  it("installs production dependencies only, from the lockfile, for every workspace the node needs", () => {
    const installs = instructions.filter((instruction) => instruction.keyword === "RUN" && instruction.args.includes("npm ci"))
    expect(installs).toHaveLength(1)
    expect(installs[0]!.stage).toBeLessThan(lastStage)
    expect(installs[0]!.args).toContain("--omit=dev")
    // The runtime stage takes node_modules from that stage and installs nothing itself.
    expect(final("RUN").some((instruction) => /\b(npm|bun)\s+(ci|install|add)\b/.test(instruction.args))).toBe(false)
    expect(final("COPY").some((instruction) => /^--from=\S+\s+\/app\/node_modules\s/.test(instruction.args))).toBe(true)
    // npm ci needs the package.json of every workspace it links.
    const copied = new Set(instructions.filter((instruction) => instruction.keyword === "COPY").map((instruction) => instruction.args.split(/\s+/)[0]))
    for (const folder of ["packages", "services"]) {
      for (const name of readdirSync(join(repoRoot, folder))) {
        if (existsSync(join(repoRoot, folder, name, "package.json"))) expect(copied, `${folder}/${name}`).toContain(`${folder}/${name}/package.json`)
      }
    }
  })

  it("runs the node as a user that is not root", () => {
    expect(one("USER")).toMatch(/^[1-9]\d*:[1-9]\d*$/)
    const [command, entry] = execForm(one("ENTRYPOINT"))
    expect(command).toBe("bun")
    expect(entry).toBe("services/node/src/main.ts")
    expect(existsSync(join(repoRoot, entry!))).toBe(true)
  })

  it("exposes the node's default ports and stops it with the signal it drains on", () => {
    expect(one("EXPOSE").split(/\s+/).map(Number).sort()).toEqual([defaults.port, defaults.runnerPort].sort())
    expect(one("STOPSIGNAL")).toBe("SIGTERM")
    expect(drainSignals()).toContain("SIGTERM")
  })

  it("checks health on /healthz at WEFT_PORT or the default port, and the check works", async () => {
    const { command } = healthcheck()
    expect(command[0]).toBe("bun")
    const script = command.join(" ")
    expect(script).toContain("/healthz")
    expect(script).toContain(`process.env.WEFT_PORT || ${defaults.port}`)

    const node = await startListeningNode([])
    running.push(node)
    const run = (port: number) =>
      promisify(execFile)(bunBinary, command.slice(1), { env: { ...process.env, WEFT_PORT: String(port) }, timeout: 10_000 }).then(
        () => 0,
        (error: unknown) => (typeof error === "object" && error !== null && "code" in error && typeof error.code === "number" ? error.code : -1)
      )
    expect(await run(Number(new URL(node.url()).port))).toBe(0)
    expect(await run(await freePort())).toBe(1)
  })
})

describe(".dockerignore", () => {
  it("keeps local state and tests out of the build context", () => {
    const patterns = readRepoFile(".dockerignore").split("\n").map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"))
    expect(patterns).toEqual(expect.arrayContaining([".git", "**/node_modules", "**/test"]))
  })
})
