import { Either, Option, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as Rules from "../src/Rules.ts"

const decodeRules = Schema.decodeUnknownEither(Rules.RulesFromJson)
const compiled = (rules: ReadonlyArray<Rules.Rule>): Rules.Rules => Either.getOrThrow(Rules.make(rules))

const routeOf = (rules: Rules.Rules, subject: string) =>
  Option.map(Rules.route(rules, subject), (route) => ({ match: route.rule.match, captures: route.captures }))

describe("mapping rules", () => {
  it("match tokens, wildcards and captures; the first matching rule wins", () => {
    const rules = compiled([
      { match: "user.{user}.>", to: { users: ["{user}"] } },
      { match: "ops.*.alert" },
      { match: "deploy.#" },
      { match: "order.completed" }
    ])
    expect(routeOf(rules, "user.42.order.completed")).toEqual(Option.some({ match: "user.{user}.>", captures: { user: "42" } }))
    expect(routeOf(rules, "user.42")).toEqual(Option.none())
    expect(routeOf(rules, "ops.db.alert")).toEqual(Option.some({ match: "ops.*.alert", captures: {} }))
    expect(routeOf(rules, "ops.db.cpu.alert")).toEqual(Option.none())
    // `#` takes zero or more tokens, `>` one or more.
    expect(routeOf(rules, "deploy")).toEqual(Option.some({ match: "deploy.#", captures: {} }))
    expect(routeOf(rules, "deploy.web.v2")).toEqual(Option.some({ match: "deploy.#", captures: {} }))
    expect(routeOf(rules, "order.completed")).toEqual(Option.some({ match: "order.completed", captures: {} }))
    expect(routeOf(rules, "order.completed.late")).toEqual(Option.none())
    expect(routeOf(rules, "order..completed")).toEqual(Option.none())
  })

  it("without rules, every subject matches and the envelope names the target", () => {
    const rules = compiled([])
    expect(Option.isSome(Rules.route(rules, "anything.at.all"))).toBe(true)
    expect(Option.flatMap(Rules.route(rules, "x"), Rules.targetOf)).toEqual(Option.none())
  })

  it("fill the target and kind from what the pattern captured", () => {
    const rules = compiled([
      { match: "user.{user}.{event}", to: { users: ["{user}", "audit-{user}"] }, kind: "user.{event}" },
      { match: "room.{room}.>", to: { room: "team-{room}" } },
      { match: "all.>", to: { broadcast: true } }
    ])
    const route = Option.getOrThrow(Rules.route(rules, "user.42.login"))
    expect(Rules.targetOf(route)).toEqual(Option.some(Either.right({ users: ["42", "audit-42"] })))
    expect(Rules.kindOf(route, "user.42.login")).toEqual(Either.right("user.login"))
    const room = Option.getOrThrow(Rules.route(rules, "room.blue.news"))
    expect(Rules.targetOf(room)).toEqual(Option.some(Either.right({ room: "team-blue" })))
    expect(Rules.kindOf(room, "room.blue.news")).toEqual(Either.right("room.blue.news"))
    const all = Option.getOrThrow(Rules.route(rules, "all.deploy"))
    expect(Rules.targetOf(all)).toEqual(Option.some(Either.right({ broadcast: true })))
  })

  it("a filled target that is not valid is refused with the reason", () => {
    const rules = compiled([{ match: "room.{room}", to: { room: "{room}!" } }])
    const route = Option.getOrThrow(Rules.route(rules, "room.x"))
    const target = Option.getOrThrow(Rules.targetOf(route))
    expect(Either.isLeft(target)).toBe(true)
    expect(Either.isLeft(Rules.kindOf(route, "x".repeat(101)))).toBe(true)
  })

  it("are checked at start: bad JSON, bad patterns and placeholders nothing captures are refused with a clear message", () => {
    expect(Either.isRight(decodeRules(JSON.stringify([{ match: "a.{b}", to: { users: ["{b}"] } }])))).toBe(true)
    const refused = (text: string): string =>
      Either.match(decodeRules(text), { onLeft: (error) => error.message, onRight: () => "accepted" })
    expect(refused("[{\"match\": ")).toMatch(/JSON/)
    expect(refused(JSON.stringify({ match: "a" }))).toMatch(/Expected/)
    expect(refused(JSON.stringify([{ match: "a.>.b" }]))).toMatch(/">" must be the last token/)
    expect(refused(JSON.stringify([{ match: "a.b c" }]))).toMatch(/is not a token/)
    expect(refused(JSON.stringify([{ match: "a.{x}.{x}" }]))).toMatch(/captured twice/)
    expect(refused(JSON.stringify([{ match: "user.*", to: { users: ["{user}"] } }]))).toMatch(/\{user\}.*is not captured/)
    expect(refused(JSON.stringify([{ match: "a", kind: "{k}" }]))).toMatch(/\{k\}.*is not captured/)
    expect(refused(JSON.stringify([{ match: "a", to: { users: [] } }]))).toMatch(/users/)
    expect(refused(JSON.stringify([{ match: "a", colour: "red" }]))).not.toBe("accepted")
  })
})
