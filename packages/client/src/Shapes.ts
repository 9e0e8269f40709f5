/**
 * Type guards for the shapes the protocol gives server data (message events,
 * rpc results), and `checked`, which turns a server answer of the wrong shape
 * into a `WeftError` (`protocol_error`) instead of a value the app would trip
 * over later. Extra fields are allowed everywhere: the protocol asks clients
 * to ignore fields they do not know.
 */
import type { Position } from "./Position.ts"
import { clientError, type WeftErrorDetails } from "./WeftError.ts"

export type Guard<A> = (value: unknown) => value is A

export const isRecord = (value: unknown): value is { readonly [key: string]: unknown } =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)

export const isString = (value: unknown): value is string => typeof value === "string"

/** A finite number (times, offsets as the server sends them). */
export const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value)

/** A whole number, 0 or more (counts, offsets). */
export const isCount = (value: unknown): value is number => typeof value === "number" && Number.isInteger(value) && value >= 0

export const isBoolean = (value: unknown): value is boolean => typeof value === "boolean"

export const isPosition = (value: unknown): value is Position => isRecord(value) && isString(value["epoch"]) && isCount(value["offset"])

export const isArrayOf = <A>(guard: Guard<A>): Guard<ReadonlyArray<A>> => (value: unknown): value is ReadonlyArray<A> =>
  Array.isArray(value) && value.every(guard)

/** An optional field: absent (or undefined) or of the guard's type. */
export const isOptional = <A>(guard: Guard<A>): Guard<A | undefined> => (value: unknown): value is A | undefined =>
  value === undefined || guard(value)

/** A short, bounded rendering of a value for an error message. */
export const preview = (value: unknown): string => {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}

/**
 * Resolves with `value` when it has the expected shape, else rejects with a
 * `protocol_error` naming the method and the shape expected.
 */
export const checked = <A>(guard: Guard<A>, shape: string, details: WeftErrorDetails) => (value: unknown): A => {
  if (guard(value)) return value
  const what = details.method === undefined ? "the server's answer" : `the answer to ${details.method}`
  throw clientError("protocol_error", `${what} is not ${shape}: ${preview(value)}`, details)
}
