/** The soak's growth verdict: a leak is caught, a level or wobbling series is not. */
import { describe, expect, it } from "vitest"
import { judgeGrowth } from "./support/growth.ts"

describe("judgeGrowth", () => {
  it("catches a series that keeps climbing", () => {
    const leak = Array.from({ length: 40 }, (_, i) => 100_000_000 + i * 2_000_000)
    expect(judgeGrowth(leak, 5_000_000).grows).toBe(true)
  })

  it("lets a series warm up and then level off, wobbling", () => {
    const level = Array.from({ length: 40 }, (_, i) => (i < 10 ? 50 + i * 10 : 150) + ((i * 37) % 11) - 5)
    expect(judgeGrowth(level, 2).grows).toBe(false)
  })

  it("says nothing with too few samples", () => {
    expect(judgeGrowth([1, 2, 3, 4, 5], 0)).toEqual({ grows: false, firstMax: undefined, lastMin: undefined })
  })
})
