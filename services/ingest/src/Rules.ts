/**
 * Mapping rules: which subjects (NATS subjects, AMQP routing keys, the
 * `subject` field of a Redis stream entry) Weft delivers, and to whom. Given
 * as JSON in `--ingest-rules` and checked when the node starts:
 *
 * ```json
 * [
 *   { "match": "user.{user}.>", "to": { "users": ["{user}"] } },
 *   { "match": "ops.alert.*", "to": { "room": "ops" }, "sender": "alerting" },
 *   { "match": "deploy.#", "to": { "broadcast": true }, "kind": "deploy" },
 *   { "match": "order.*" }
 * ]
 * ```
 *
 * A pattern is tokens separated by `.`: a literal token, `*` (any one token),
 * `{name}` (any one token, captured as `name`), and last only `>` (one or
 * more tokens) or `#` (zero or more). The first rule that matches a subject
 * applies; a subject that no rule matches is dead-lettered. `to`, `kind` and
 * `sender` are defaults for what the envelope leaves out, and `{name}` in
 * them is replaced by the captured token. Without any rule every subject
 * matches and the envelope must name its target.
 */
import { Either, Option, Schema } from "effect"
import { Kind, Sender, Target } from "./Envelope.ts"
import { describe } from "./internal/parseError.ts"

/** A target as a rule states it: with `{name}` placeholders for captured tokens. */
export const TargetTemplate = Schema.Union(
  Schema.Struct({ users: Schema.Array(Schema.NonEmptyString).pipe(Schema.minItems(1), Schema.maxItems(1000)) }),
  Schema.Struct({ room: Schema.NonEmptyString }),
  Schema.Struct({ broadcast: Schema.Literal(true) })
)
export type TargetTemplate = typeof TargetTemplate.Type

export const Rule = Schema.Struct({
  match: Schema.NonEmptyString,
  to: Schema.optional(TargetTemplate),
  kind: Schema.optional(Schema.NonEmptyString),
  sender: Schema.optional(Sender)
}).annotations({ parseOptions: { onExcessProperty: "error" } })
export type Rule = typeof Rule.Type

type Token =
  | { readonly _tag: "Literal"; readonly text: string }
  | { readonly _tag: "One"; readonly capture: string | undefined }
  | { readonly _tag: "Rest"; readonly atLeastOne: boolean }

export interface CompiledRule {
  readonly rule: Rule
  readonly tokens: ReadonlyArray<Token>
}

const captureName = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/
const literalToken = /^[^\s*>#{}.]+$/
const placeholder = /\{([^{}]*)\}/g

/** Parses a pattern; `Left` says what is wrong with it. */
export const parsePattern = (pattern: string): Either.Either<ReadonlyArray<Token>, string> => {
  const parts = pattern.split(".")
  const tokens: Array<Token> = []
  const names = new Set<string>()
  for (const [index, part] of parts.entries()) {
    const last = index === parts.length - 1
    if (part === ">" || part === "#") {
      if (!last) return Either.left(`"${part}" must be the last token of ${JSON.stringify(pattern)}`)
      tokens.push({ _tag: "Rest", atLeastOne: part === ">" })
    } else if (part === "*") {
      tokens.push({ _tag: "One", capture: undefined })
    } else if (captureName.test(part)) {
      const name = part.slice(1, -1)
      if (names.has(name)) return Either.left(`{${name}} is captured twice in ${JSON.stringify(pattern)}`)
      names.add(name)
      tokens.push({ _tag: "One", capture: name })
    } else if (literalToken.test(part)) {
      tokens.push({ _tag: "Literal", text: part })
    } else {
      return Either.left(
        `${JSON.stringify(part)} is not a token in ${JSON.stringify(pattern)} (a word, "*", "{name}", or last ">" or "#")`
      )
    }
  }
  return Either.right(tokens)
}

const capturesOf = (tokens: ReadonlyArray<Token>): ReadonlySet<string> =>
  new Set(tokens.flatMap((token) => (token._tag === "One" && token.capture !== undefined ? [token.capture] : [])))

const templatesOf = (rule: Rule): ReadonlyArray<string> => [
  ...(rule.to === undefined ? [] : "users" in rule.to ? rule.to.users : "room" in rule.to ? [rule.to.room] : []),
  ...(rule.kind === undefined ? [] : [rule.kind])
]

/** Checks one rule: its pattern parses and its templates name only what the pattern captures. */
export const compile = (rule: Rule): Either.Either<CompiledRule, string> =>
  Either.flatMap(parsePattern(rule.match), (tokens) => {
    const captures = capturesOf(tokens)
    for (const template of templatesOf(rule)) {
      for (const [, name] of template.matchAll(placeholder)) {
        if (name === undefined || !captures.has(name)) {
          return Either.left(`rule ${JSON.stringify(rule.match)}: {${name ?? ""}} in ${JSON.stringify(template)} is not captured by the pattern`)
        }
      }
    }
    return Either.right({ rule, tokens })
  })

/** The rules in `--ingest-rules`: a JSON array of rules, each checked with `compile`. */
export const RulesFromJson = Schema.parseJson(
  Schema.Array(Rule).pipe(
    Schema.filter((rules) => {
      const problems = rules.flatMap((rule) => Either.match(compile(rule), { onLeft: (problem) => [problem], onRight: () => [] }))
      return problems.length === 0 || problems.join("; ")
    })
  )
)

/** Every subject, with the target from the envelope: what applies when no rules are given. */
export const matchEverything: ReadonlyArray<Rule> = [{ match: "#" }]

export type Rules = ReadonlyArray<CompiledRule>

/** Compiles checked rules (`RulesFromJson`); none given means `matchEverything`. */
export const make = (rules: ReadonlyArray<Rule>): Either.Either<Rules, string> =>
  Either.all((rules.length === 0 ? matchEverything : rules).map(compile))

/** The captured tokens when `tokens` match all of `subject`. */
const matchTokens = (tokens: ReadonlyArray<Token>, subject: ReadonlyArray<string>): Option.Option<Record<string, string>> => {
  const captured: Record<string, string> = {}
  for (const [index, token] of tokens.entries()) {
    if (token._tag === "Rest") {
      const rest = subject.length - index
      return rest >= (token.atLeastOne ? 1 : 0) ? Option.some(captured) : Option.none()
    }
    const part = subject[index]
    if (part === undefined || part.length === 0) return Option.none()
    if (token._tag === "Literal" && token.text !== part) return Option.none()
    if (token._tag === "One" && token.capture !== undefined) captured[token.capture] = part
  }
  return tokens.length === subject.length ? Option.some(captured) : Option.none()
}

/** A subject's route: the first rule that matches and what its pattern captured. */
export interface Route {
  readonly rule: Rule
  readonly captures: Readonly<Record<string, string>>
}

export const route = (rules: Rules, subject: string): Option.Option<Route> => {
  const parts = subject.split(".")
  for (const compiled of rules) {
    const captures = matchTokens(compiled.tokens, parts)
    if (Option.isSome(captures)) return Option.some({ rule: compiled.rule, captures: captures.value })
  }
  return Option.none()
}

const fill = (template: string, captures: Readonly<Record<string, string>>): string =>
  template.replace(placeholder, (_, name: string) => captures[name] ?? "")

const decodeTarget = Schema.decodeUnknownEither(Target)

/** The rule's target for this subject, placeholders filled; `Left` when the result is not a valid target. */
export const targetOf = (route: Route): Option.Option<Either.Either<Target, string>> => {
  const to = route.rule.to
  if (to === undefined) return Option.none()
  const filled = "users" in to
    ? { users: to.users.map((user) => fill(user, route.captures)) }
    : "room" in to
    ? { room: fill(to.room, route.captures) }
    : to
  return Option.some(
    Either.mapLeft(decodeTarget(filled), (error) => `the rule's target ${JSON.stringify(filled)} is not valid: ${describe(error)}`)
  )
}

const decodeKind = Schema.decodeUnknownEither(Kind)

/** The rule's kind for this subject, placeholders filled (absent: the subject itself); `Left` when too long or empty. */
export const kindOf = (route: Route, subject: string): Either.Either<string, string> => {
  const kind = route.rule.kind === undefined ? subject : fill(route.rule.kind, route.captures)
  return Either.mapLeft(decodeKind(kind), () => `the kind ${JSON.stringify(kind.slice(0, 120))} is not 1-100 characters`)
}
