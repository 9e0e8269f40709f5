/**
 * The committed nginx and HAProxy configurations, read and rendered for a test run. Rendering
 * changes only where the balancer listens, its certificate and its list of nodes; every rule
 * must match what it expects, so a reshaped config fails here instead of being tested half-way.
 */
import { readDeployFile } from "./deployFiles.ts"

export const nginxConfig = (): string => readDeployFile("nginx", "weft.conf")
export const haproxyConfig = (): string => readDeployFile("haproxy", "weft.cfg")

/** A node as a balancer sees it: a name (HAProxy's server name) and its loopback HTTP port. */
export interface Upstream {
  readonly name: string
  readonly port: number
}

/** Where a rendered balancer listens and the certificate it serves (see `selfSignedCertificate`). */
export interface Listen {
  readonly tlsPort: number
  readonly plainPort: number
  readonly certificate: string
  readonly key: string
  /** Certificate and key in one file, HAProxy's format. */
  readonly pem: string
}

export interface ServerLine {
  readonly name: string
  readonly address: string
  readonly port: number
  /** Everything after the address, e.g. ` max_fails=1 fail_timeout=10s`. */
  readonly params: string
}

/** nginx `server 10.0.1.11:8080 max_fails=1;` lines (those of `upstream` blocks: `server {` has no address). */
const nginxServer = /^(\s*)server\s+([^\s:;{]+):(\d+)([^;]*);\s*$/
/** HAProxy `server weft-1 10.0.1.11:8080 ...` lines. */
const haproxyServer = /^(\s*)server\s+(\S+)\s+([^\s:]+):(\d+)(.*)$/

const serverLines = (text: string, pattern: RegExp, nginx: boolean): ReadonlyArray<ServerLine> =>
  text.split("\n").flatMap((line) => {
    const match = pattern.exec(line)
    if (match === null) return []
    return nginx
      ? [{ name: match[2]!, address: match[2]!, port: Number(match[3]), params: match[4]! }]
      : [{ name: match[2]!, address: match[3]!, port: Number(match[4]), params: match[5]! }]
  })

export const nginxServers = (text: string): ReadonlyArray<ServerLine> => serverLines(text, nginxServer, true)
export const haproxyServers = (text: string): ReadonlyArray<ServerLine> => serverLines(text, haproxyServer, false)

interface Rule {
  readonly what: string
  readonly pattern: RegExp
  /** The lines that replace a matching line (none: it is dropped). */
  readonly replace: (match: RegExpExecArray) => ReadonlyArray<string>
  readonly expected: number
}

const apply = (file: string, text: string, rules: ReadonlyArray<Rule>): string => {
  const counts = rules.map(() => 0)
  const lines = text.split("\n").flatMap((line) => {
    for (const [i, rule] of rules.entries()) {
      const match = rule.pattern.exec(line)
      if (match === null) continue
      counts[i]!++
      return [...rule.replace(match)]
    }
    return [line]
  })
  for (const [i, rule] of rules.entries()) {
    if (counts[i] !== rule.expected) {
      throw new Error(`${file}: expected ${rule.expected} line(s) for ${rule.what}, found ${counts[i]}; update the test's rendering`)
    }
  }
  return lines.join("\n")
}

/** Every committed server line must carry the same parameters: the test's nodes get them. */
const sharedParams = (file: string, servers: ReadonlyArray<ServerLine>): string => {
  const params = new Set(servers.map((server) => server.params))
  if (servers.length === 0 || params.size !== 1) throw new Error(`${file}: the server lines should share their parameters`)
  return servers[0]!.params
}

/** Nodes replace the first server line; the other committed ones are dropped. */
const nodeLines = (upstreams: ReadonlyArray<Upstream>, line: (upstream: Upstream) => string) => {
  let first = true
  return (): ReadonlyArray<string> => {
    if (!first) return []
    first = false
    return upstreams.map(line)
  }
}

/** deploy/nginx/weft.conf on loopback ports, with the test's certificate and nodes. */
export const renderNginx = (listen: Listen, upstreams: ReadonlyArray<Upstream>): string => {
  const text = nginxConfig()
  const servers = nginxServers(text)
  const params = sharedParams("deploy/nginx/weft.conf", servers)
  const nodes = nodeLines(upstreams, (upstream) => `    server 127.0.0.1:${upstream.port}${params};`)
  return apply("deploy/nginx/weft.conf", text, [
    // IPv6 loopback may not exist where the test runs; the IPv4 lines are the same server.
    { what: "IPv6 listen", pattern: /^\s*listen\s+\[::\]:\d+[^;]*;\s*$/, replace: () => [], expected: 2 },
    { what: "listen 443 ssl", pattern: /^(\s*)listen\s+443\s+ssl;\s*$/, replace: (m) => [`${m[1]}listen 127.0.0.1:${listen.tlsPort} ssl;`], expected: 1 },
    { what: "listen 80", pattern: /^(\s*)listen\s+80;\s*$/, replace: (m) => [`${m[1]}listen 127.0.0.1:${listen.plainPort};`], expected: 1 },
    { what: "ssl_certificate", pattern: /^(\s*)ssl_certificate\s+\S+;\s*$/, replace: (m) => [`${m[1]}ssl_certificate ${listen.certificate};`], expected: 1 },
    { what: "ssl_certificate_key", pattern: /^(\s*)ssl_certificate_key\s+\S+;\s*$/, replace: (m) => [`${m[1]}ssl_certificate_key ${listen.key};`], expected: 1 },
    { what: "upstream servers", pattern: nginxServer, replace: nodes, expected: servers.length }
  ])
}

/** deploy/haproxy/weft.cfg on loopback ports, with the test's certificate and nodes (named as the nodes). */
export const renderHaproxy = (listen: Listen, upstreams: ReadonlyArray<Upstream>): string => {
  const text = haproxyConfig()
  const servers = haproxyServers(text)
  const params = sharedParams("deploy/haproxy/weft.cfg", servers)
  const nodes = nodeLines(upstreams, (upstream) => `    server ${upstream.name} 127.0.0.1:${upstream.port}${params}`)
  return apply("deploy/haproxy/weft.cfg", text, [
    {
      what: "bind :443 ssl crt",
      pattern: /^(\s*)bind\s+:443\s+ssl\s+crt\s+\S+(.*)$/,
      replace: (m) => [`${m[1]}bind 127.0.0.1:${listen.tlsPort} ssl crt ${listen.pem}${m[2]}`],
      expected: 1
    },
    { what: "bind :80", pattern: /^(\s*)bind\s+:80\s*$/, replace: (m) => [`${m[1]}bind 127.0.0.1:${listen.plainPort}`], expected: 1 },
    { what: "backend servers", pattern: haproxyServer, replace: nodes, expected: servers.length }
  ])
}

/** `75s`, `500ms`, `2m`, or a bare number in `bareUnit`, in milliseconds. */
export const durationMs = (text: string, bareUnit: "s" | "ms"): number => {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text.trim())
  if (match === null) throw new Error(`not a duration: ${text}`)
  const unit = match[2] ?? bareUnit
  const factor = unit === "h" ? 3_600_000 : unit === "m" ? 60_000 : unit === "s" ? 1000 : 1
  return Number(match[1]) * factor
}

/** The values of a directive (`proxy_read_timeout 75s;`), each line's arguments. */
export const nginxDirective = (text: string, name: string): ReadonlyArray<ReadonlyArray<string>> =>
  text.split("\n").flatMap((line) => {
    const match = new RegExp(`^\\s*${name}\\s+([^;]*);`).exec(line)
    return match === null ? [] : [match[1]!.trim().split(/\s+/)]
  })

/** HAProxy `timeout <name> <value>` lines, by name, in milliseconds (a bare number is ms). */
export const haproxyTimeouts = (text: string): ReadonlyMap<string, number> =>
  new Map(text.split("\n").flatMap((line) => {
    const match = /^\s*timeout\s+(\S+)\s+(\S+)\s*$/.exec(line)
    return match === null ? [] : [[match[1]!, durationMs(match[2]!, "ms")] as const]
  }))

/** The keyword arguments of HAProxy's `default-server` line (`inter 2s fall 2` → inter: "2s", fall: "2"). */
export const haproxyDefaultServer = (text: string): ReadonlyMap<string, string> => {
  const lines = text.split("\n").filter((line) => /^\s*default-server\s/.test(line))
  if (lines.length !== 1) throw new Error(`deploy/haproxy/weft.cfg: expected one default-server line, found ${lines.length}`)
  const words = lines[0]!.trim().split(/\s+/).slice(1)
  const values = new Map<string, string>()
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    // `check` is a flag; the others take a value.
    if (word === "check") values.set(word, "")
    else values.set(word, words[++i] ?? "")
  }
  return values
}
