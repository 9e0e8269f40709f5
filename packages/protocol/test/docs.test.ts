/**
 * docs/protocol.md and the code are one contract: every example in the doc
 * decodes with the codec and is exactly what the codec writes, the JSON and
 * msgpack forms of each example are the same frame, every frame type has
 * both, and the doc's tables of fields, error codes, close codes and goodbye
 * reasons are exactly the code's. The conventions are stated in the doc
 * ("How the examples are checked").
 */
import { decode as plainDecode } from "@msgpack/msgpack"
import { Channel, Codec, CloseCodes, ErrorCodes, Frame, type ProtocolError } from "@weft/protocol"
import { Either, Option, SchemaAST } from "effect"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { bytesFromHex, hexOf, jsonView } from "./helpers.ts"

const doc = readFileSync(new URL("../../../docs/protocol.md", import.meta.url), "utf8")
const lines = doc.split("\n")

// ---------------------------------------------------------------------------
// Reading the doc
// ---------------------------------------------------------------------------

interface Fence {
  readonly info: string
  readonly body: string
  /** 1-based line of the opening fence, for messages. */
  readonly line: number
}

const fences: ReadonlyArray<Fence> = (() => {
  const found: Array<Fence> = []
  let open: { info: string; line: number; body: Array<string> } | undefined
  lines.forEach((text, index) => {
    if (open === undefined) {
      const start = /^```(.*)$/.exec(text)
      if (start !== null) open = { info: (start[1] ?? "").trim(), line: index + 1, body: [] }
    } else if (/^```\s*$/.test(text)) {
      found.push({ info: open.info, line: open.line, body: open.body.join("\n") })
      open = undefined
    } else {
      open.body.push(text)
    }
  })
  if (open !== undefined) throw new Error(`docs/protocol.md: the fence at line ${open.line} is never closed`)
  return found
})()

type Encoding = Codec.Encoding
type Direction = "client" | "server"

interface FrameExample {
  readonly encoding: Encoding
  readonly direction: Direction
  readonly type: string
  readonly variant: string
  readonly fence: Fence
}

interface BadExample {
  readonly encoding: Encoding
  readonly code: number
  readonly id: number | undefined
  readonly fence: Fence
}

const frameExamples: Array<FrameExample> = []
const badExamples: Array<BadExample> = []
const sessions: Array<Fence> = []
/** Fences that look tagged (`json something`, `msgpack-hex ...`) but follow no convention: typos. */
const unrecognized: Array<Fence> = []

for (const fence of fences) {
  const words = fence.info.split(/\s+/).filter((word) => word.length > 0)
  const [first, second, third, fourth, ...rest] = words
  if (first === "weft-session" && words.length === 1) {
    sessions.push(fence)
    continue
  }
  if (first !== "json" && first !== "msgpack-hex") continue
  if (first === "json" && words.length === 1) continue // an ordinary JSON block (a JWT's claims, ...)
  const encoding: Encoding = first === "json" ? "json" : "msgpack"
  if ((second === "client" || second === "server") && third !== undefined && rest.length === 0) {
    frameExamples.push({ encoding, direction: second, type: third, variant: fourth ?? "", fence })
  } else if (second === "bad-client" && third !== undefined && /^\d+$/.test(third) && rest.length === 0) {
    const id = fourth === undefined ? undefined : /^id=(\d+)$/.exec(fourth)?.[1]
    if (fourth !== undefined && id === undefined) unrecognized.push(fence)
    else badExamples.push({ encoding, code: Number(third), id: id === undefined ? undefined : Number(id), fence })
  } else {
    unrecognized.push(fence)
  }
}

const rawOf = (encoding: Encoding, fence: Fence): Codec.Raw => encoding === "json" ? fence.body.trim() : bytesFromHex(fence.body)

type Decoded =
  | { readonly direction: "client"; readonly frame: Frame.ClientFrame }
  | { readonly direction: "server"; readonly frame: Frame.ServerFrame }

const decodeAs = (direction: Direction, raw: Codec.Raw, encoding: Encoding): Either.Either<Decoded, ProtocolError> =>
  direction === "client"
    ? Either.map(Codec.decodeClientFrame(raw, encoding), (frame): Decoded => ({ direction, frame }))
    : Either.map(Codec.decodeServerFrame(raw, encoding), (frame): Decoded => ({ direction, frame }))

/** The codec's own encoding of a decoded frame, as text (JSON) or hex (msgpack). */
const reencode = (decoded: Decoded, encoding: Encoding): string => {
  const raw = decoded.direction === "client"
    ? Codec.encodeClientFrame(decoded.frame, encoding)
    : Codec.encodeServerFrame(decoded.frame, encoding)
  return typeof raw === "string" ? raw : hexOf(raw)
}

/** Table rows after `<!-- table: NAME -->` or `<!-- fields: NAME -->`: cells of each row, header and separator dropped. */
const tableAfter = (marker: string): ReadonlyArray<ReadonlyArray<string>> => {
  const at = lines.flatMap((text, index) => (text.trim() === marker ? [index] : []))
  const start = at[0]
  if (at.length !== 1 || start === undefined) throw new Error(`docs/protocol.md: expected exactly one ${marker}, found ${at.length}`)
  const rows: Array<ReadonlyArray<string>> = []
  for (const line of lines.slice(start + 1)) {
    const text = line.trim()
    if (!text.startsWith("|")) break
    rows.push(text.slice(1, text.endsWith("|") ? -1 : undefined).split("|").map((cell) => cell.trim()))
  }
  if (rows.length < 3) throw new Error(`docs/protocol.md: ${marker} is not followed by a table with rows`)
  return rows.slice(2)
}

const unquote = (cell: string): string => cell.replace(/^`(.*)`$/, "$1")

// ---------------------------------------------------------------------------
// What the code says
// ---------------------------------------------------------------------------

const clientTypes: ReadonlyArray<string> = Frame.ClientFrame.members.map((member) => member.fields.type.literals[0])
const serverTypes: ReadonlyArray<string> = Frame.ServerFrame.members.map((member) => member.fields.type.literals[0])

/** Every frame's struct, keyed like the doc's field tables. */
const structs: ReadonlyArray<readonly [string, SchemaAST.AST]> = [
  ...Frame.ClientFrame.members.map((member) => [`client ${member.fields.type.literals[0]}`, member.ast] as const),
  ...Frame.ServerFrame.members.map((member) => [`server ${member.fields.type.literals[0]}`, member.ast] as const),
  ["server welcome limits", Frame.Welcome.fields.limits.ast],
  ["position", Frame.Position.ast]
]

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe("docs/protocol.md examples", () => {
  it("every tagged fence follows the convention", () => {
    expect(unrecognized.map((fence) => `line ${fence.line}: ${fence.info}`)).toEqual([])
    expect(frameExamples.length).toBeGreaterThan(0)
    expect(badExamples.length).toBeGreaterThan(0)
    expect(sessions.length).toBeGreaterThan(0)
  })

  it("every frame type in Frame.ts has an example in both encodings", () => {
    expect(clientTypes).toEqual(expect.arrayContaining([...Frame.clientFrameTypes]))
    const missing: Array<string> = []
    for (const [direction, types] of [["client", clientTypes], ["server", serverTypes]] as const) {
      for (const type of types) {
        for (const encoding of ["json", "msgpack"] as const) {
          const has = frameExamples.some((example) =>
            example.direction === direction && example.type === type && example.encoding === encoding
          )
          if (!has) missing.push(`${encoding} ${direction} ${type}`)
        }
      }
    }
    expect(missing).toEqual([])
  })

  it("no example names a type that is not in Frame.ts", () => {
    const unknown = frameExamples.filter((example) =>
      !(example.direction === "client" ? clientTypes : serverTypes).includes(example.type)
    )
    expect(unknown.map((example) => `line ${example.fence.line}: ${example.fence.info}`)).toEqual([])
  })

  for (const example of frameExamples) {
    const { direction, encoding, fence, type } = example
    it(`line ${fence.line} (${fence.info}) decodes to a ${type} and is exactly what the codec writes`, () => {
      const decoded = decodeAs(direction, rawOf(encoding, fence), encoding)
      if (Either.isLeft(decoded)) throw new Error(`does not decode: ${decoded.left.message}`)
      expect(decoded.right.frame.type).toBe(type)
      const expected = encoding === "json" ? fence.body.trim() : hexOf(bytesFromHex(fence.body))
      expect(reencode(decoded.right, encoding), "the codec writes this frame differently").toBe(expected)
    })
  }

  const groups = new Map<string, Array<FrameExample>>()
  for (const example of frameExamples) {
    const key = `${example.direction} ${example.type}${example.variant === "" ? "" : ` ${example.variant}`}`
    groups.set(key, [...(groups.get(key) ?? []), example])
  }
  for (const [key, group] of groups) {
    it(`${key}: one JSON and one msgpack example, and they are the same frame`, () => {
      const json = group.filter((example) => example.encoding === "json")
      const msgpack = group.filter((example) => example.encoding === "msgpack")
      expect(json.length, "JSON examples").toBe(1)
      expect(msgpack.length, "msgpack examples").toBe(1)
      const [j] = json
      const [m] = msgpack
      if (j === undefined || m === undefined) return
      const fromJson = Either.getOrThrow(decodeAs(j.direction, rawOf("json", j.fence), "json"))
      const fromMsgpack = Either.getOrThrow(decodeAs(m.direction, rawOf("msgpack", m.fence), "msgpack"))
      // The documented mapping: bytes reach JSON clients as {"$base64": ...}.
      expect(jsonView(fromMsgpack.frame)).toEqual(jsonView(fromJson.frame))
    })
  }

  for (const example of frameExamples.filter((candidate) => candidate.encoding === "msgpack")) {
    it(`line ${example.fence.line} (${example.fence.info}) is plain msgpack`, () => {
      const bytes = bytesFromHex(example.fence.body)
      const plain = plainDecode(bytes)
      const ours = Either.getOrThrow(decodeAs(example.direction, bytes, "msgpack"))
      expect(jsonView(plain)).toEqual(jsonView(ours.frame))
    })
  }

  for (const example of badExamples) {
    const { code, encoding, fence, id } = example
    it(`line ${fence.line} (${fence.info}) is refused with ${code}${id === undefined ? " and no id" : ` and id ${id}`}`, () => {
      const decoded = Codec.decodeClientFrame(rawOf(encoding, fence), encoding)
      if (Either.isRight(decoded)) throw new Error("the server accepts this frame")
      expect(decoded.left.code).toBe(code)
      expect(decoded.left.id).toBe(id)
    })
  }

  for (const session of sessions) {
    it(`the session at line ${session.line} is valid JSON frames, each answered once`, () => {
      const frames: Array<Decoded> = []
      for (const text of session.body.split("\n")) {
        if (text.trim() === "" || text.startsWith("# ")) continue
        const direction: Direction | undefined = text.startsWith(">> ") ? "client" : text.startsWith("<< ") ? "server" : undefined
        if (direction === undefined) throw new Error(`not a transcript line: ${text}`)
        const json = text.slice(3)
        const decoded = decodeAs(direction, json, "json")
        if (Either.isLeft(decoded)) throw new Error(`${json}: ${decoded.left.message}`)
        expect(reencode(decoded.right, "json")).toBe(json)
        frames.push(decoded.right)
      }
      expect(frames[0]?.frame.type).toBe("welcome")
      // Every request and every ping with an id gets exactly one answer with that id, after it.
      frames.forEach(({ direction, frame }, index) => {
        if (direction !== "client" || !("id" in frame) || frame.id === undefined) return
        const answers = frames.slice(index + 1).filter((later) =>
          later.direction === "server" && "id" in later.frame && later.frame.id === frame.id
        )
        const expected = frame.type === "ping" ? ["pong"] : frame.type === "pong" ? [] : ["ack", "reply", "error"]
        expect(answers.length, `answers to ${frame.type} ${frame.id}`).toBe(expected.length === 0 ? 0 : 1)
        if (answers[0] !== undefined) expect(expected).toContain(answers[0].frame.type)
      })
    })
  }
})

describe("docs/protocol.md tables", () => {
  it("the error catalogue is exactly ErrorCodes", () => {
    const rows = tableAfter("<!-- table: error-codes -->").map((cells) => [unquote(cells[1] ?? ""), Number(cells[0])] as const)
    expect(rows).toEqual(Object.entries(ErrorCodes))
  })

  it("the close codes are exactly CloseCodes", () => {
    const rows = tableAfter("<!-- table: close-codes -->").map((cells) => [unquote(cells[1] ?? ""), Number(cells[0])] as const)
    expect(rows).toEqual(Object.entries(CloseCodes))
  })

  it("the goodbye reasons are exactly Goodbye's", () => {
    const rows = tableAfter("<!-- table: goodbye-reasons -->").map((cells) => unquote(cells[0] ?? ""))
    expect(rows).toEqual([...Frame.Goodbye.fields.reason.literals])
  })

  it("every frame has a field table", () => {
    const markers = lines.flatMap((text) => {
      const match = /^<!-- fields: (.+) -->$/.exec(text.trim())
      return match === null ? [] : [match[1]]
    })
    expect([...markers].sort()).toEqual(structs.map(([name]) => name).sort())
  })

  for (const [name, ast] of structs) {
    it(`the fields of ${name} are exactly the schema's, with the right required column`, () => {
      const documented = tableAfter(`<!-- fields: ${name} -->`).map((cells) => [unquote(cells[0] ?? ""), cells[2]] as const)
      const actual = SchemaAST.getPropertySignatures(ast).map((signature) =>
        [String(signature.name), signature.isOptional ? "no" : "yes"] as const
      )
      expect(documented).toEqual(actual)
    })
  }

  it("names the subprotocols the codec negotiates", () => {
    expect(doc).toContain(`\`${Codec.subprotocols.msgpack}\``)
    expect(doc).toContain(`\`${Codec.subprotocols.json}\``)
    expect(Codec.defaultEncoding).toBe("msgpack")
    expect(doc).toContain("| no header (or an empty one) | msgpack")
  })

  it("gives the channel syntax Channel.ts checks", () => {
    const pattern = SchemaAST.getJSONSchemaAnnotation(Channel.Channel.ast).pipe(
      Option.flatMap((annotation) => ("pattern" in annotation && typeof annotation.pattern === "string" ? Option.some(annotation.pattern) : Option.none()))
    )
    expect(Option.isSome(pattern)).toBe(true)
    expect(doc).toContain(`\`${Option.getOrElse(pattern, () => "")}\``)
  })

  it("states the nesting limit the codec enforces", () => {
    expect(doc).toContain(`| nesting | ${Codec.maxDepth} levels`)
  })
})
