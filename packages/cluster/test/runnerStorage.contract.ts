/**
 * The contract every `RunnerStorage` we run on must keep, as @effect/cluster's
 * Sharding relies on it (`.scratch/cluster-notes.md` §1.2): machine ids unique
 * among live runners, runners that stop heartbeating leave, and a shard lock
 * has one owner at a time, expires when its owner stops refreshing, and is
 * only ever extended or released by that owner.
 *
 * `runnerStorageContract(case)` registers the properties a storage claims
 * through its capabilities; a storage without a capability does not get the
 * tests that need it (they would fail by design, not by accident).
 */
import type { PersistenceError } from "@effect/cluster/ClusterError"
import * as Runner from "@effect/cluster/Runner"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import type { RunnerStorage } from "@effect/cluster/RunnerStorage"
import * as ShardId from "@effect/cluster/ShardId"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, FastCheck as fc } from "effect"
import type { Scope } from "effect"

// ---------------------------------------------------------------------------
// What a storage case provides
// ---------------------------------------------------------------------------

/**
 * - `ownership`: a lock has an owner; acquire refuses other runners' live locks; refresh, release and
 *   releaseAll act only on the caller's locks.
 * - `expiry`: a runner leaves `getRunners` and its locks become free `lockExpiration` after its last
 *   heartbeat / refresh.
 * - `health`: the health flag given to register / setRunnerHealth is what getRunners reports.
 * - `machineIds`: one stable id per address, unique modulo 1024 among live runners, freed ids reused.
 */
export type Capability = "ownership" | "expiry" | "health" | "machineIds"

export const allCapabilities: ReadonlyArray<Capability> = ["ownership", "expiry", "health", "machineIds"]

export interface StorageUnderTest {
  readonly storage: RunnerStorage["Type"]
  /** Lets time pass as the storage sees it: real time for Redis, TestClock for in-memory storages. */
  readonly elapse: (duration: Duration.Duration) => Effect.Effect<void>
}

export interface StorageCase {
  readonly name: string
  readonly capabilities: ReadonlyArray<Capability>
  /** A fresh, empty storage for one test (or one property run), cleaned up with the scope. */
  readonly make: (lockExpiration: Duration.Duration) => Effect.Effect<StorageUnderTest, never, Scope.Scope>
}

// Short enough to keep the Redis run quick, long enough that "right after acquiring" is far from
// expiry. Runners kept alive refresh every quarter of it, so a stall below 3/4 of it is harmless.
const expiration = Duration.millis(800)
const margin = Duration.millis(400)
const tick = Duration.millis(200)
// For properties that must see no expiry at all while they run.
const noExpiry = Duration.minutes(5)

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const address = (n: number) => RunnerAddress.make("127.0.0.1", 41000 + n)
const addressString = (n: number) => `127.0.0.1:${41000 + n}`
const runner = (n: number, options: { readonly groups?: ReadonlyArray<string>; readonly weight?: number } = {}) =>
  Runner.make({ address: address(n), groups: options.groups ?? ["default"], weight: options.weight ?? 1 })
const shards = (...ids: ReadonlyArray<string>) => ids.map(ShardId.ShardId.fromString)
const sorted = (values: Iterable<ShardId.ShardId | string>): Array<string> => Array.from(values, String).sort()
const range = (from: number, to: number): Array<number> => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** getRunners as sorted `[address, healthy]` pairs. */
const listed = (storage: RunnerStorage["Type"]) =>
  Effect.map(storage.getRunners, (runners) =>
    runners
      .map(([r, healthy]) => [`${r.address.host}:${r.address.port}`, healthy] as const)
      .sort(([a], [b]) => a.localeCompare(b)))

/**
 * Lets `total` pass in ticks while the runners in `keepAlive` refresh their heartbeat and locks,
 * asserting that each refresh still returns all of their locks.
 */
const elapseRefreshing = (
  sut: StorageUnderTest,
  total: Duration.Duration,
  keepAlive: ReadonlyArray<readonly [runner: number, shards: ReadonlyArray<ShardId.ShardId>]>
) =>
  Effect.gen(function*() {
    const ticks = Math.ceil(Duration.toMillis(total) / Duration.toMillis(tick))
    for (let i = 0; i < ticks; i++) {
      yield* sut.elapse(tick)
      for (const [n, held] of keepAlive) {
        expect(sorted(yield* sut.storage.refresh(address(n), held))).toEqual(sorted(held))
      }
    }
  })

/** The error `effect` fails with; a success fails the test. */
const failure = <A>(effect: Effect.Effect<A, PersistenceError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.dieMessage(`expected a failure, got ${String(result.right)}`))

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

interface Property {
  readonly name: string
  readonly requires: ReadonlyArray<Capability>
  readonly register: (name: string, storageCase: StorageCase) => void
}

const test = (
  name: string,
  requires: ReadonlyArray<Capability>,
  lockExpiration: Duration.Duration,
  body: (sut: StorageUnderTest) => Effect.Effect<void, PersistenceError, Scope.Scope>
): Property => ({
  name,
  requires,
  register: (title, storageCase) =>
    it.scoped(title, () => Effect.flatMap(storageCase.make(lockExpiration), body), { timeout: 20_000 })
})

const registration: ReadonlyArray<Property> = [
  test("register returns machine ids unique among live runners", [], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      const ids = yield* Effect.forEach(range(1, 8), (n) => storage.register(runner(n), true), {
        concurrency: "unbounded"
      })
      expect(new Set(ids.map((id) => id % 1024)).size).toBe(8)
      for (const id of ids) expect(id).toBeGreaterThanOrEqual(0)
    })),

  test("re-register keeps the machine id and replaces the runner's record", ["machineIds"], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      const first = yield* storage.register(runner(1), true)
      const second = yield* storage.register(runner(2), true)
      expect(yield* storage.register(runner(1, { weight: 3, groups: ["default", "other"] }), true)).toBe(first)
      expect(yield* storage.register(runner(2), true)).toBe(second)
      const runners = yield* storage.getRunners
      const updated = runners.find(([r]) => r.address.port === address(1).port)
      expect(updated?.[0].weight).toBe(3)
      expect(updated?.[0].groups).toEqual(["default", "other"])
      expect(runners.length).toBe(2)
    })),

  test("getRunners lists every registered runner", [], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      const registered = [runner(1), runner(2, { groups: ["default", "other"] }), runner(3, { weight: 2 })]
      for (const r of registered) yield* storage.register(r, true)
      const runners = yield* storage.getRunners
      const byPort = [...runners].sort(([a], [b]) => a.address.port - b.address.port)
      expect(byPort.map(([r]) => r)).toEqual(registered)
      expect(byPort.map(([, healthy]) => healthy)).toEqual([true, true, true])
    })),

  test("getRunners reports the health flag; setRunnerHealth changes it", ["health"], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      yield* storage.register(runner(1), false)
      yield* storage.register(runner(2), true)
      expect(yield* listed(storage)).toEqual([[addressString(1), false], [addressString(2), true]])
      yield* storage.setRunnerHealth(address(1), true)
      yield* storage.setRunnerHealth(address(2), false)
      expect(yield* listed(storage)).toEqual([[addressString(1), true], [addressString(2), false]])
    })),

  test("setRunnerHealth on an unknown address adds no runner", [], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      yield* storage.register(runner(1), true)
      yield* storage.setRunnerHealth(address(9), true)
      expect((yield* listed(storage)).map(([a]) => a)).toEqual([addressString(1)])
    })),

  test("unregister removes only that runner", [], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      for (const n of [1, 2, 3]) yield* storage.register(runner(n), true)
      yield* storage.unregister(address(2))
      yield* storage.unregister(address(9))
      expect((yield* listed(storage)).map(([a]) => a)).toEqual([addressString(1), addressString(3)])
    })),

  test(
    "a runner whose heartbeat stops leaves getRunners after the expiration; one that refreshes stays",
    ["expiry"],
    expiration,
    (sut) =>
      Effect.gen(function*() {
        const { storage } = sut
        yield* storage.register(runner(1), true)
        yield* storage.register(runner(2), true)
        expect((yield* listed(storage)).map(([a]) => a)).toEqual([addressString(1), addressString(2)])
        // refresh with no shards is the heartbeat (and Sharding's storage health probe)
        expect(yield* storage.refresh(address(2), [])).toEqual([])
        yield* elapseRefreshing(sut, Duration.sum(expiration, margin), [[2, []]])
        expect((yield* listed(storage)).map(([a]) => a)).toEqual([addressString(2)])
        // back from the dead it registers again, and ids stay unique among the live runners
        const ids = [
          yield* storage.register(runner(3), true),
          yield* storage.register(runner(1), true),
          yield* storage.register(runner(2), true)
        ]
        expect(new Set(ids.map((id) => id % 1024)).size).toBe(3)
        expect((yield* listed(storage)).map(([a]) => a)).toEqual([1, 2, 3].map(addressString))
      })
  ),

  test(
    "all 1024 machine ids go to distinct live runners, the next one is refused, a freed id is reused",
    ["machineIds"],
    noExpiry,
    ({ storage }) =>
      Effect.gen(function*() {
        const ids = yield* Effect.forEach(range(0, 1023), (n) => storage.register(runner(n), true), {
          concurrency: 16
        })
        expect([...ids].sort((a, b) => a - b)).toEqual(range(0, 1023))
        const refused = yield* failure(storage.register(runner(2000), true))
        expect(refused._tag).toBe("PersistenceError")
        yield* storage.unregister(address(500))
        expect(yield* storage.register(runner(2000), true)).toBe(ids[500])
      })
  )
]

const locks: ReadonlyArray<Property> = [
  test("a lone runner's acquire grants every free shard it asks for", [], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      const wanted = shards("default:1", "default:2", "other:1")
      expect(sorted(yield* storage.acquire(address(1), wanted))).toEqual(sorted(wanted))
      expect(yield* storage.acquire(address(1), [])).toEqual([])
    })),

  test("acquire takes free and own shards and returns exactly the ones won", ["ownership"], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      expect(sorted(yield* storage.acquire(address(1), shards("default:1", "default:2")))).toEqual(
        sorted(["default:1", "default:2"])
      )
      expect(sorted(yield* storage.acquire(address(2), shards("default:2", "default:3")))).toEqual(["default:3"])
      expect(sorted(yield* storage.acquire(address(1), shards("default:1", "default:2", "default:3")))).toEqual(
        sorted(["default:1", "default:2"])
      )
      expect(sorted(yield* storage.acquire(address(2), shards("default:3")))).toEqual(["default:3"])
    })),

  test(
    "refresh extends the caller's locks past the expiration and returns exactly the ones it holds",
    ["ownership", "expiry"],
    expiration,
    (sut) =>
      Effect.gen(function*() {
        const { storage } = sut
        const mine = shards("default:1", "default:2")
        yield* storage.acquire(address(1), mine)
        yield* storage.acquire(address(2), shards("default:3"))
        expect(sorted(yield* storage.refresh(address(1), shards("default:1", "default:2", "default:3")))).toEqual(
          sorted(mine)
        )
        expect(yield* storage.refresh(address(1), [])).toEqual([])
        // runner 1 refreshes every tick, runner 2 never: only runner 2's lock may go
        yield* elapseRefreshing(sut, Duration.sum(expiration, margin), [[1, mine]])
        expect(sorted(yield* storage.acquire(address(3), shards("default:1", "default:2", "default:3")))).toEqual([
          "default:3"
        ])
        expect(sorted(yield* storage.refresh(address(1), mine))).toEqual(sorted(mine))
        expect(yield* storage.refresh(address(2), shards("default:3"))).toEqual([])
      })
  ),

  test(
    "a dead runner's locks are refused before the expiration and granted after it",
    ["ownership", "expiry"],
    expiration,
    (sut) =>
      Effect.gen(function*() {
        const { storage } = sut
        const wanted = shards("default:1", "default:2", "other:1")
        expect(sorted(yield* storage.acquire(address(1), wanted))).toEqual(sorted(wanted))
        expect(yield* storage.acquire(address(2), wanted)).toEqual([])
        yield* sut.elapse(Duration.sum(expiration, margin))
        expect(sorted(yield* storage.acquire(address(2), wanted))).toEqual(sorted(wanted))
        // the old owner, back from a stall, has lost them and cannot disturb the new owner
        expect(yield* storage.refresh(address(1), wanted)).toEqual([])
        expect(yield* storage.acquire(address(1), wanted)).toEqual([])
        yield* storage.release(address(1), ShardId.ShardId.fromString("default:1"))
        yield* storage.releaseAll(address(1))
        expect(sorted(yield* storage.refresh(address(2), wanted))).toEqual(sorted(wanted))
      })
  ),

  test("release deletes only the caller's own lock", ["ownership"], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      const one = ShardId.ShardId.fromString("default:1")
      yield* storage.acquire(address(1), [one])
      yield* storage.acquire(address(2), shards("default:2"))
      yield* storage.release(address(2), one)
      yield* storage.release(address(3), one)
      expect(yield* storage.acquire(address(3), [one])).toEqual([])
      expect(sorted(yield* storage.refresh(address(1), [one]))).toEqual(["default:1"])
      yield* storage.release(address(1), one)
      // releasing a shard nobody holds is a no-op, not an error
      yield* storage.release(address(1), one)
      expect(sorted(yield* storage.acquire(address(3), [one]))).toEqual(["default:1"])
      expect(sorted(yield* storage.refresh(address(2), shards("default:2")))).toEqual(["default:2"])
    })),

  test("releaseAll deletes only the caller's own locks", ["ownership"], noExpiry, ({ storage }) =>
    Effect.gen(function*() {
      yield* storage.acquire(address(1), shards("default:1", "default:2", "other:1"))
      yield* storage.acquire(address(2), shards("default:3"))
      yield* storage.releaseAll(address(1))
      yield* storage.releaseAll(address(9))
      expect(sorted(yield* storage.acquire(address(3), shards("default:1", "default:2", "default:3", "other:1"))))
        .toEqual(sorted(["default:1", "default:2", "other:1"]))
      expect(sorted(yield* storage.refresh(address(2), shards("default:3")))).toEqual(["default:3"])
      expect(yield* storage.refresh(address(1), shards("default:1", "default:2", "other:1"))).toEqual([])
    }))
]

// ---------------------------------------------------------------------------
// Racing runners: random interleavings, checked against a model
// ---------------------------------------------------------------------------

type Op =
  | { readonly _tag: "acquire"; readonly runner: number; readonly shards: ReadonlyArray<string> }
  | { readonly _tag: "refresh"; readonly runner: number; readonly shards: ReadonlyArray<string> }
  | { readonly _tag: "release"; readonly runner: number; readonly shard: string }
  | { readonly _tag: "releaseAll"; readonly runner: number }

const universe: ReadonlyArray<string> = ["default:1", "default:2", "default:3", "default:4", "other:1", "other:2"]

const opArbitrary = (runners: number): fc.Arbitrary<Op> =>
  fc.integer({ min: 0, max: runners - 1 }).chain((n) =>
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc.subarray([...universe], { minLength: 1 }).map((s): Op => ({ _tag: "acquire", runner: n, shards: s }))
      },
      { weight: 3, arbitrary: fc.subarray([...universe]).map((s): Op => ({ _tag: "refresh", runner: n, shards: s })) },
      { weight: 2, arbitrary: fc.constantFrom(...universe).map((s): Op => ({ _tag: "release", runner: n, shard: s })) },
      { weight: 1, arbitrary: fc.constant<Op>({ _tag: "releaseAll", runner: n }) }
    )
  )

/** 2-4 runners; each round runs one operation per participating runner, all at once. */
const scenarioArbitrary = fc.integer({ min: 2, max: 4 }).chain((runners) =>
  fc.record({
    runners: fc.constant(runners),
    rounds: fc.array(
      fc.uniqueArray(opArbitrary(runners), { selector: (op) => op.runner, minLength: 1, maxLength: runners }),
      { minLength: 1, maxLength: 12 }
    )
  })
)

const run = (storage: RunnerStorage["Type"], op: Op): Effect.Effect<ReadonlyArray<string>, PersistenceError> => {
  const at = address(op.runner)
  switch (op._tag) {
    case "acquire":
      return Effect.map(storage.acquire(at, shards(...op.shards)), sorted)
    case "refresh":
      return Effect.map(storage.refresh(at, shards(...op.shards)), sorted)
    case "release":
      return Effect.as(storage.release(at, ShardId.ShardId.fromString(op.shard)), [])
    case "releaseAll":
      return Effect.as(storage.releaseAll(at), [])
  }
}

function racingRunners(): Property {
  return {
    name:
      "racing runners never hold one shard twice, and refresh returns exactly what each still holds (random interleavings)",
    requires: ["ownership"],
    register: (title, storageCase) =>
      it.scoped.prop(
        title,
        { scenario: scenarioArbitrary },
        ({ scenario }) =>
          Effect.gen(function*() {
            const { storage } = yield* storageCase.make(noExpiry)
            const held = range(1, scenario.runners).map(() => new Set<string>())
            for (const round of scenario.rounds) {
              const before = held.map((set) => new Set(set))
              const ownerBefore = (shard: string) => before.findIndex((set) => set.has(shard))
              const releasesInRound = (owner: number, shard: string) =>
                round.some((op) =>
                  op.runner === owner && (op._tag === "releaseAll" || (op._tag === "release" && op.shard === shard))
                )
              const results = yield* Effect.forEach(round, (op) => run(storage, op), { concurrency: "unbounded" })

              round.forEach((op, i) => {
                const result = results[i]
                if (op._tag === "refresh") {
                  expect(result).toEqual(sorted(op.shards.filter((s) => before[op.runner].has(s))))
                }
                if (op._tag !== "acquire") return
                const won = new Set(result)
                for (const shard of won) expect(op.shards).toContain(shard)
                for (const shard of op.shards) {
                  const owner = ownerBefore(shard)
                  // an owner re-acquiring keeps its lock; a live lock of someone not releasing it is refused
                  if (owner === op.runner) expect(won.has(shard)).toBe(true)
                  else if (owner !== -1 && !releasesInRound(owner, shard)) expect(won.has(shard)).toBe(false)
                }
              })
              // a free shard asked for by several runners at once goes to exactly one of them
              for (const shard of universe) {
                if (ownerBefore(shard) !== -1) continue
                const contenders = round.flatMap((op, i) =>
                  op._tag === "acquire" && op.shards.includes(shard) ? [results[i]] : []
                )
                if (contenders.length === 0) continue
                expect(contenders.filter((result) => result.includes(shard)).length).toBe(1)
              }

              round.forEach((op, i) => {
                if (op._tag === "release") held[op.runner].delete(op.shard)
                if (op._tag === "releaseAll") held[op.runner].clear()
                if (op._tag === "acquire") for (const shard of results[i]) held[op.runner].add(shard)
              })
              for (const shard of universe) {
                expect(held.filter((set) => set.has(shard)).length).toBeLessThanOrEqual(1)
              }
            }
            for (const [n, set] of held.entries()) {
              expect(sorted(yield* storage.refresh(address(n), shards(...universe)))).toEqual(sorted(set))
            }
          }),
        { timeout: 25_000, fastCheck: { numRuns: 50 } }
      )
  }
}

// ---------------------------------------------------------------------------
// Twenty runners start at once
// ---------------------------------------------------------------------------

function twentyRunners(): Property {
  return test(
    "20 runners registering and acquiring concurrently end with every shard held exactly once",
    ["ownership"],
    noExpiry,
    ({ storage }) =>
      Effect.gen(function*() {
        const runners = range(0, 19)
        const all = [...range(1, 60).map((i) => ShardId.make("default", i)), ...range(1, 20).map((i) => ShardId.make("other", i))]
        // a round-robin assignment, as a consistent ring would give; then everyone retries
        // everything, as runners with stale or diverging views of the ring would
        const assigned = (n: number) => all.filter((_, i) => i % runners.length === n)
        const outcomes = yield* Effect.forEach(
          runners,
          (n) =>
            Effect.gen(function*() {
              const machineId = yield* storage.register(runner(n), true)
              const won = new Set(sorted(yield* storage.acquire(address(n), assigned(n))))
              for (let attempt = 0; attempt < 3; attempt++) {
                yield* Effect.yieldNow()
                for (const shard of yield* storage.acquire(address(n), all)) won.add(String(shard))
              }
              return { n, machineId, won }
            }),
          { concurrency: "unbounded" }
        )
        expect(new Set(outcomes.map((o) => o.machineId % 1024)).size).toBe(runners.length)

        const owners = new Map<string, Array<number>>()
        for (const { n, won } of outcomes) {
          const held = sorted(yield* storage.refresh(address(n), all))
          // nothing was released and nothing expired, so each runner still holds all it won
          expect(held).toEqual(sorted(won))
          for (const shard of held) owners.set(shard, [...(owners.get(shard) ?? []), n])
        }
        for (const shard of all) expect(owners.get(String(shard))?.length).toBe(1)
      })
  )
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

export const properties: ReadonlyArray<Property> = [...registration, ...locks, racingRunners(), twentyRunners()]

/** Registers, under `describe(storageCase.name)`, every property whose capabilities the storage has. */
export const runnerStorageContract = (storageCase: StorageCase): void => {
  const has = new Set(storageCase.capabilities)
  describe(storageCase.name, () => {
    for (const property of properties) {
      if (property.requires.every((capability) => has.has(capability))) {
        property.register(property.name, storageCase)
      }
    }
  })
}
