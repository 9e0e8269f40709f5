/**
 * The size of the chaos runs, from the environment (`npm run chaos -- --connections 5000` sets
 * it): CI size by default. Read once per test file.
 */
const positiveInt = (name: string, fallback: number): number => {
  const text = process.env[name]
  if (text === undefined || text === "") return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(text)}`)
  return value
}

/** Connections of the kill -9 scenario (the CI size is 1,000+). */
export const killConnections = (): number => positiveInt("CHAOS_CONNECTIONS", 1000)

/** Connections of the other scenarios: fewer, to keep the suite within its CI budget. */
export const scenarioConnections = (): number => Math.max(60, Math.round(killConnections() / 5))

/** Faults in the seeded random schedule. */
export const scheduleFaults = (): number => positiveInt("CHAOS_FAULTS", 5)

/** The random schedule's seed: `CHAOS_SEED`, else a fresh one (printed either way). */
export const scheduleSeed = (): number => positiveInt("CHAOS_SEED", 1 + Math.floor(Math.random() * 2_147_483_646))

/**
 * How soon the kill test's clients must be back: the 5 s when the chaos suite runs alone
 * (`npm run chaos` sets `CHAOS_ALONE`), 15 s inside `npm test`, where other files share the CPU.
 */
export const reconnectBoundMs = (): number => (process.env["CHAOS_ALONE"] === "1" ? 5_000 : 15_000)
