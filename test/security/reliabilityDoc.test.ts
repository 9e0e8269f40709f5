/**
 * docs/reliability.md names, for each guarantee, the test that proves it (`file` › test name).
 * This keeps it honest: every file it names exists, and every test name it quotes is in that
 * file (compared by its beginning, up to an ellipsis; backticks and line breaks ignored).
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "..", "..")
const doc = readFileSync(join(root, "docs", "reliability.md"), "utf8")

/** A template placeholder (`${encoding}`) in a test name: it stands for any one word of the doc. */
const placeholder = "\u0001"

/** Text without backticks and escapes, placeholders marked, whitespace collapsed. */
const normalize = (text: string): string =>
  text.replace(/\$\{[^}]*\}/g, placeholder).replace(/\\`/g, "").replace(/`/g, "").replace(/\s+/g, " ")

const escape = (word: string): string => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Whether `source` holds `head`, any one of whose words may be a placeholder there. */
const holds = (source: string, head: string): boolean =>
  source.includes(head) ||
  new RegExp(head.split(" ").map((word) => `(?:${escape(word)}|${placeholder})`).join(" ")).test(source)

/** The doc's items: each table row, and each bullet or paragraph (its lines joined). */
const items = (): Array<string> => {
  const found: Array<string> = []
  let current: Array<string> = []
  const flush = () => {
    if (current.length > 0) found.push(current.join(" "))
    current = []
  }
  for (const line of doc.split("\n")) {
    const text = line.trim()
    if (text === "" || text.startsWith("|") || text.startsWith("- ") || text.startsWith("#")) flush()
    if (text.startsWith("|")) found.push(text)
    else if (text !== "") current.push(text)
  }
  flush()
  return found
}

/** Each `path` with the `› name` fragments that follow it, up to the next path or the item's end. */
const references = (): Array<{ readonly path: string; readonly names: Array<string> }> =>
  items().flatMap((item) => {
    const matches = [...item.matchAll(/`((?:test|packages|services)\/[^`*]+?\.ts)`/g)]
    return matches.map((match, i) => {
      const end = i + 1 < matches.length ? matches[i + 1]!.index : item.length
      const tail = item.slice(match.index + match[0].length, end)
      return { path: match[1]!, names: [...tail.matchAll(/›\s*([^›;|]+)/g)].map((fragment) => fragment[1]!.trim()) }
    })
  })

/** The part of a quoted name to look for: up to the first ellipsis or parenthetical remark. */
const headOf = (name: string): string =>
  normalize(name).split("...")[0]!.split(" (")[0]!.replace(/[.,:]\s*$/, "").trim()

describe("docs/reliability.md", () => {
  const refs = references()

  it("names test files, and each exists", () => {
    expect(refs.length).toBeGreaterThan(40)
    for (const { path } of refs) expect(existsSync(join(root, path)), path).toBe(true)
  })

  it("quotes test names that are in the files it names", () => {
    let checked = 0
    for (const { path, names } of refs) {
      const source = normalize(readFileSync(join(root, path), "utf8"))
      for (const name of names) {
        const head = headOf(name)
        if (head.length < 12) continue
        checked++
        expect(holds(source, head), `"${head}" in ${path}`).toBe(true)
      }
    }
    expect(checked).toBeGreaterThan(40)
  })
})
