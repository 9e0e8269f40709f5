/**
 * nginx and HAProxy as the tests run them: Debian's binaries in the foreground as child
 * processes, on loopback ports, with a configuration, certificate, pid and logs in a temporary
 * directory. The Weft part of their configuration is the committed one (see balancerConfig.ts).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { once } from "node:events"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createConnection, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { freePort } from "../../support/ports.ts"
import { type Listen, renderHaproxy, renderNginx, type Upstream } from "./balancerConfig.ts"

/** Fails (never skips) with the Debian package to install when a program is missing. */
export const requireProgram = (path: string, debianPackage: string): void => {
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: install the Debian package ${debianPackage} (apt-get install ${debianPackage}; ` +
        `npm test does it through scripts/ensure-deps.mjs)`
    )
  }
}

export interface RunningBalancer {
  /** The TLS entry, `https://127.0.0.1:<port>`: everything a client does goes through it. */
  readonly entry: string
  /** The plain HTTP port, which only redirects to the TLS one. */
  readonly plain: string
  /** The self-signed certificate the entry serves, for clients to trust. */
  readonly ca: string
  readonly dir: string
  /** The process's stdout and stderr lines. */
  readonly output: Array<string>
  readonly stop: () => Promise<void>
}

/** A self-signed certificate for 127.0.0.1 (openssl), as separate files and one PEM. */
const selfSignedCertificate = (dir: string): Omit<Listen, "tlsPort" | "plainPort"> => {
  requireProgram("/usr/bin/openssl", "openssl")
  const certificate = join(dir, "weft.crt")
  const key = join(dir, "weft.key")
  execFileSync("/usr/bin/openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1"
  ], { stdio: "ignore" })
  const pem = join(dir, "weft.pem")
  writeFileSync(pem, readFileSync(certificate, "utf8") + readFileSync(key, "utf8"))
  return { certificate, key, pem }
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = new Socket()
    socket.setTimeout(500)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
    socket.connect(port, "127.0.0.1")
  })

/** Runs `program`, and resolves once the TLS port accepts connections (10 s at most). */
const launch = async (
  program: string,
  args: ReadonlyArray<string>,
  dir: string,
  listen: Listen,
  ca: string
): Promise<RunningBalancer> => {
  const child: ChildProcess = spawn(program, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
  const output: Array<string> = []
  createInterface({ input: child.stdout! }).on("line", (line) => output.push(line))
  createInterface({ input: child.stderr! }).on("line", (line) => output.push(line))
  const exited = once(child, "exit")
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL")
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break
    if (await accepts(listen.tlsPort)) {
      return { entry: `https://127.0.0.1:${listen.tlsPort}`, plain: `http://127.0.0.1:${listen.plainPort}`, ca, dir, output, stop }
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const log = output.join("\n")
  await stop()
  throw new Error(`${program} did not start listening on ${listen.tlsPort}:\n${log}`)
}

const prepare = async () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-balancer-"))
  const listen: Listen = { tlsPort: await freePort(), plainPort: await freePort(), ...selfSignedCertificate(dir) }
  return { dir, listen, ca: readFileSync(listen.certificate, "utf8") }
}

/**
 * nginx with deploy/nginx/weft.conf inside a minimal `http {}`, the way Debian's nginx.conf
 * includes conf.d. One process (`master_process off`): the child the test kills is nginx itself,
 * and as root it does not hand the work to an unprivileged worker that could not reach the
 * temporary directory. Warnings go to `error.log` (where nginx says it took a node out).
 */
export const startNginx = async (upstreams: ReadonlyArray<Upstream>): Promise<RunningBalancer> => {
  requireProgram("/usr/sbin/nginx", "nginx")
  const { dir, listen, ca } = await prepare()
  writeFileSync(join(dir, "weft.conf"), renderNginx(listen, upstreams))
  const temp = (name: string) => join(dir, name)
  writeFileSync(join(dir, "nginx.conf"), [
    "daemon off;",
    "master_process off;",
    `pid ${temp("nginx.pid")};`,
    `error_log ${temp("error.log")} warn;`,
    "events { worker_connections 1024; }",
    "http {",
    "    access_log off;",
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((kind) => `    ${kind}_temp_path ${temp(kind)};`),
    `    include ${temp("weft.conf")};`,
    "}",
    ""
  ].join("\n"))
  return launch("/usr/sbin/nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", temp("error.log")], dir, listen, ca)
}

/** nginx's error log so far. */
export const nginxErrorLog = (balancer: RunningBalancer): string => {
  const path = join(balancer.dir, "error.log")
  return existsSync(path) ? readFileSync(path, "utf8") : ""
}

/**
 * HAProxy with a test `global` section (a stats socket in the temporary directory, logs to
 * stderr) and then deploy/haproxy/weft.cfg, the way the committed file is meant to be loaded
 * after the distribution's haproxy.cfg.
 */
export const startHaproxy = async (upstreams: ReadonlyArray<Upstream>): Promise<RunningBalancer> => {
  requireProgram("/usr/sbin/haproxy", "haproxy")
  const { dir, listen, ca } = await prepare()
  writeFileSync(join(dir, "global.cfg"), [
    "global",
    `    stats socket ${join(dir, "admin.sock")} mode 600 level admin`,
    "    log stderr format short local0 notice",
    ""
  ].join("\n"))
  writeFileSync(join(dir, "weft.cfg"), renderHaproxy(listen, upstreams))
  return launch("/usr/sbin/haproxy", ["-db", "-f", join(dir, "global.cfg"), "-f", join(dir, "weft.cfg")], dir, listen, ca)
}

/** One server's row of HAProxy's `show stat` (CSV with a `# pxname,svname,...` header). */
export const haproxyServerStat = async (
  balancer: RunningBalancer,
  backend: string,
  server: string
): Promise<Readonly<Record<string, string>>> => {
  const socket = createConnection(join(balancer.dir, "admin.sock"))
  socket.setTimeout(5000, () => socket.destroy(new Error("the stats socket did not answer")))
  socket.end("show stat\n")
  const chunks: Array<Buffer> = []
  socket.on("data", (chunk: Buffer) => chunks.push(chunk))
  await once(socket, "close")
  const [header, ...rows] = Buffer.concat(chunks).toString("utf8").split("\n").filter((line) => line !== "")
  if (header === undefined || !header.startsWith("# ")) throw new Error(`unexpected show stat answer: ${header}`)
  const names = header.slice(2).split(",")
  for (const row of rows) {
    const values = row.split(",")
    if (values[0] === backend && values[1] === server) return Object.fromEntries(names.map((name, i) => [name, values[i] ?? ""]))
  }
  throw new Error(`no stats row for ${backend}/${server}`)
}
