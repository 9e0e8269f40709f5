/**
 * The browser pages a node serves: the demo at `/` (nodes running the gateway
 * role) and the live dashboard at `/dashboard` (in dev mode, or with
 * `--dashboard`). Their sources are in `services/node/web/`: the HTML and CSS
 * are served as they are; the scripts (plain DOM TypeScript, the demo on
 * `packages/client`) are bundled for the browser with `Bun.build`, minified,
 * once per process, in memory: when the node starts in dev mode, else on the
 * first request. Everything is served gzipped to browsers that accept it,
 * with an ETag.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { readFile } from "node:fs/promises"
import { basename, join } from "node:path"
import { NodeRoutes } from "../HttpServer.ts"
import { NodeConfigService } from "../NodeConfig.ts"

/** Where the pages' sources are. */
export const sourceDir = join(import.meta.dirname, "..", "..", "web")

/** The scripts bundled for the browser, by the name they are served under (`/assets/<name>`). */
const scripts = { "demo.js": "demo.ts", "dashboard.js": "dashboard.ts" } as const
const staticFiles = { "weft.css": "text/css; charset=utf-8" } as const

export interface Asset {
  readonly body: Uint8Array
  readonly gzip: Uint8Array
  readonly etag: string
  readonly contentType: string
}

const asset = (body: Uint8Array, contentType: string): Asset => ({
  body,
  gzip: Bun.gzipSync(body as Uint8Array<ArrayBuffer>, { level: 9 }),
  etag: `"${Bun.hash(body).toString(36)}"`,
  contentType
})

const encoder = new TextEncoder()

/** Bundles the scripts and reads the other files: every asset by its served name. */
export const build: Effect.Effect<ReadonlyMap<string, Asset>, Error> = Effect.tryPromise({
  try: async () => {
    const names = Object.keys(scripts) as Array<keyof typeof scripts>
    const result = await Bun.build({
      entrypoints: names.map((name) => join(sourceDir, scripts[name])),
      target: "browser",
      format: "esm",
      minify: true,
      // No `process.env` lookups left in the bundle for the browser to trip on.
      define: { "process.env.NODE_ENV": JSON.stringify("production") }
    })
    if (!result.success) throw new Error(result.logs.map(String).join("\n"))
    const assets = new Map<string, Asset>()
    for (const output of result.outputs) {
      if (output.kind !== "entry-point") continue
      assets.set(basename(output.path), asset(new Uint8Array(await output.arrayBuffer()), "text/javascript; charset=utf-8"))
    }
    for (const name of names) if (!assets.has(name)) throw new Error(`Bun.build gave no ${name}`)
    for (const [name, contentType] of Object.entries(staticFiles)) {
      assets.set(name, asset(new Uint8Array(await readFile(join(sourceDir, name))), contentType))
    }
    return assets
  },
  catch: (cause) => (cause instanceof Error ? cause : new Error(String(cause)))
})

/** Which pages this node serves, from its configuration. */
export interface Served {
  readonly demo: boolean
  readonly dashboard: boolean
}

export const served = (config: { readonly roles: ReadonlyArray<string>; readonly dev: boolean; readonly dashboard: boolean }): Served => ({
  demo: config.roles.includes("gateway"),
  dashboard: config.dev || config.dashboard
})

const noCache = { "cache-control": "no-cache" }

const respond = (found: Asset) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const headers = { ...noCache, etag: found.etag, vary: "accept-encoding" }
    if (request.headers["if-none-match"] === found.etag) return HttpServerResponse.empty({ status: 304, headers })
    const gzip = /\bgzip\b/.test(request.headers["accept-encoding"] ?? "")
    return HttpServerResponse.uint8Array(gzip ? found.gzip : found.body, {
      contentType: found.contentType,
      headers: gzip ? { ...headers, "content-encoding": "gzip" } : headers
    })
  })

/**
 * `GET /` (the demo), `GET /dashboard` and `GET /assets/*`, as `served` says. The HTML says
 * whether the node is in dev mode (`data-dev` on `<body>`): the demo offers sign-in only then.
 */
export const routes = NodeRoutes.use((router) =>
  Effect.gen(function*() {
    const config = yield* NodeConfigService
    const pages = served(config)
    if (!pages.demo && !pages.dashboard) return
    const assets = yield* Effect.cached(
      Effect.gen(function*() {
        const started = Date.now()
        const built = new Map(yield* build)
        for (const [page, file] of [["demo.html", "demo.html"], ["dashboard.html", "dashboard.html"]] as const) {
          const html = (yield* Effect.promise(() => readFile(join(sourceDir, file), "utf8")))
            .replaceAll("{{dev}}", String(config.dev))
            .replaceAll("{{node}}", config.nodeId.replace(/[^A-Za-z0-9._-]/g, ""))
          built.set(page, asset(encoder.encode(html), "text/html; charset=utf-8"))
        }
        yield* Effect.logInfo("web pages built").pipe(
          Effect.annotateLogs({
            ms: Date.now() - started,
            bytes: Object.fromEntries(Object.keys(scripts).map((name) => [name, built.get(name)!.body.length])),
            gzipBytes: Object.fromEntries(Object.keys(scripts).map((name) => [name, built.get(name)!.gzip.length]))
          })
        )
        return built as ReadonlyMap<string, Asset>
      }).pipe(Effect.tapErrorCause((cause) => Effect.logError("the web pages could not be built", cause)))
    )
    // In dev mode someone is about to open the page: built in the background from the start. Elsewhere
    // (most nodes never serve it) on the first request, so that a node's start costs no bundling.
    if (config.dev) yield* Effect.forkScoped(Effect.ignore(assets))
    const serve = (name: string) =>
      assets.pipe(
        Effect.flatMap((all) => {
          const found = all.get(name)
          return found === undefined ? Effect.succeed(HttpServerResponse.empty({ status: 404 })) : respond(found)
        }),
        Effect.catchAll(() => Effect.succeed(HttpServerResponse.text("the page could not be built; see the node's log", { status: 500 })))
      )
    if (pages.demo) {
      yield* router.get("/", serve("demo.html"))
      yield* router.get("/assets/demo.js", serve("demo.js"))
    }
    if (pages.dashboard) {
      yield* router.get("/dashboard", serve("dashboard.html"))
      yield* router.get("/assets/dashboard.js", serve("dashboard.js"))
    }
    yield* router.get("/assets/weft.css", serve("weft.css"))
  })
)
