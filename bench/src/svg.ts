/**
 * A scenario's plot as one standalone SVG (no dependency, no script): grouped
 * bars (throughput, memory) and latency percentile curves, stacked vertically.
 *
 * Percentile curves use the HdrHistogram convention: the x axis is the
 * percentile on a log scale of 1 / (1 - p) (so 90, 99, 99.9 are evenly spaced)
 * and the y axis the latency, here on a log scale too (0.1 ms to seconds), so
 * contenders an order of magnitude apart stay readable on one chart.
 */

export interface BarChart {
  readonly kind: "bars"
  readonly title: string
  readonly unit: string
  /** Each group is a case; each bar a series (contender) in it. */
  readonly groups: ReadonlyArray<{ readonly label: string; readonly values: Readonly<Record<string, number | undefined>> }>
}

export interface CurveChart {
  readonly kind: "curves"
  readonly title: string
  /** Series name -> [percentile, microseconds] points. */
  readonly series: Readonly<Record<string, ReadonlyArray<readonly [number, number]>>>
}

export interface Plot {
  readonly title: string
  readonly subtitle?: string
  readonly charts: ReadonlyArray<BarChart | CurveChart>
}

const palette: Record<string, string> = {
  "Weft": "#6d28d9",
  "Weft, 1 node": "#c4b5fd",
  "Weft, 2 nodes": "#6d28d9",
  "raw Bun": "#d97706",
  "Socket.IO": "#059669",
  "Socket.IO, 1 node": "#6ee7b7",
  "Socket.IO, 2 nodes": "#059669",
  "ws": "#2563eb"
}
const fallback = ["#6b7280", "#db2777", "#0891b2", "#65a30d"]
const colorOf = (name: string, index: number): string => palette[name] ?? fallback[index % fallback.length]!

const esc = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

const short = (value: number): string => {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 1)}M`
  if (value >= 1e3) return `${(value / 1e3).toFixed(value >= 1e4 ? 0 : 1)}k`
  if (value >= 10) return value.toFixed(0)
  return value.toPrecision(2)
}

const width = 960
const chartHeight = 320
const margin = { left: 80, right: 170, top: 40, bottom: 60 }

const niceMax = (value: number): number => {
  if (value <= 0) return 1
  const magnitude = 10 ** Math.floor(Math.log10(value))
  // Quarters of these are round numbers too (the axis has 4 intervals).
  for (const step of [1, 2, 4, 6, 8, 10]) if (step * magnitude >= value) return step * magnitude
  return 10 * magnitude
}

const legend = (names: ReadonlyArray<string>, x: number, y: number): string =>
  names.map((name, i) =>
    `<rect x="${x}" y="${y + i * 20}" width="12" height="12" fill="${colorOf(name, i)}"/>` +
    `<text x="${x + 18}" y="${y + i * 20 + 10}" font-size="12">${esc(name)}</text>`
  ).join("")

const bars = (chart: BarChart, top: number): string => {
  const names = [...new Set(chart.groups.flatMap((g) => Object.keys(g.values).filter((k) => g.values[k] !== undefined)))]
  const max = niceMax(Math.max(0, ...chart.groups.flatMap((g) => Object.values(g.values).filter((v): v is number => v !== undefined))))
  const plotW = width - margin.left - margin.right
  const plotH = chartHeight - margin.top - margin.bottom
  const x0 = margin.left
  const y0 = top + margin.top
  const groupW = plotW / Math.max(1, chart.groups.length)
  const barW = Math.min(40, (groupW * 0.8) / Math.max(1, names.length))
  const parts: Array<string> = [`<text x="${x0}" y="${top + 22}" font-size="15" font-weight="600">${esc(chart.title)}</text>`]
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4
    const y = y0 + plotH - (plotH * i) / 4
    parts.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`)
    parts.push(`<text x="${x0 - 8}" y="${y + 4}" font-size="11" text-anchor="end">${short(v)}</text>`)
  }
  parts.push(`<text x="${16}" y="${y0 + plotH / 2}" font-size="12" transform="rotate(-90 16 ${y0 + plotH / 2})" text-anchor="middle">${esc(chart.unit)}</text>`)
  chart.groups.forEach((group, g) => {
    const present = names.filter((n) => group.values[n] !== undefined)
    const start = x0 + g * groupW + (groupW - present.length * barW) / 2
    present.forEach((name, i) => {
      const value = group.values[name]!
      const h = (plotH * value) / max
      const x = start + i * barW
      parts.push(`<rect x="${x.toFixed(1)}" y="${(y0 + plotH - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${colorOf(name, names.indexOf(name))}"><title>${esc(`${name}: ${value.toLocaleString("en-US")} ${chart.unit}`)}</title></rect>`)
      parts.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y0 + plotH - h - 4).toFixed(1)}" font-size="10" text-anchor="middle">${short(value)}</text>`)
    })
    parts.push(`<text x="${(x0 + g * groupW + groupW / 2).toFixed(1)}" y="${y0 + plotH + 18}" font-size="12" text-anchor="middle">${esc(group.label)}</text>`)
  })
  parts.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y0 + plotH}" y2="${y0 + plotH}" stroke="#111827"/>`)
  parts.push(legend(names, x0 + plotW + 20, y0))
  return parts.join("\n")
}

const percentileTicks = [0, 90, 99, 99.9, 99.99, 99.999]
const px = (p: number): number => Math.log10(1 / (1 - Math.min(p, 99.999) / 100))

const curves = (chart: CurveChart, top: number): string => {
  const names = Object.keys(chart.series).filter((n) => chart.series[n]!.length > 0)
  const plotW = width - margin.left - margin.right
  const plotH = chartHeight - margin.top - margin.bottom
  const x0 = margin.left
  const y0 = top + margin.top
  const all = names.flatMap((n) => chart.series[n]!.map(([, us]) => Math.max(1, us)))
  const lo = Math.log10(Math.max(10, Math.min(...all, 100)) / 10) // at least 0.1 ms below the fastest
  const hi = Math.log10(Math.max(...all, 1000) * 1.2)
  const yOf = (us: number) => y0 + plotH - (plotH * (Math.log10(Math.max(1, us)) - lo)) / (hi - lo)
  const xMax = px(99.999)
  const xOf = (p: number) => x0 + (plotW * px(p)) / xMax
  const parts: Array<string> = [`<text x="${x0}" y="${top + 22}" font-size="15" font-weight="600">${esc(chart.title)}</text>`]
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    const us = 10 ** e
    const y = yOf(us)
    parts.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>`)
    const label = us >= 1e6 ? `${us / 1e6} s` : `${us / 1000} ms`
    parts.push(`<text x="${x0 - 8}" y="${(y + 4).toFixed(1)}" font-size="11" text-anchor="end">${label}</text>`)
  }
  for (const p of percentileTicks) {
    const x = xOf(p)
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y0}" y2="${y0 + plotH}" stroke="#f3f4f6"/>`)
    parts.push(`<text x="${x.toFixed(1)}" y="${y0 + plotH + 18}" font-size="11" text-anchor="middle">${p === 0 ? "p0" : `p${p}`}</text>`)
  }
  parts.push(`<text x="${x0 + plotW / 2}" y="${y0 + plotH + 40}" font-size="12" text-anchor="middle">percentile (publish to deliver latency, log scale)</text>`)
  names.forEach((name, i) => {
    const points = chart.series[name]!.filter(([p]) => p <= 99.999)
    const d = points.map(([p, us], j) => `${j === 0 ? "M" : "L"}${xOf(p).toFixed(1)},${yOf(us).toFixed(1)}`).join(" ")
    parts.push(`<path d="${d}" fill="none" stroke="${colorOf(name, i)}" stroke-width="2"/>`)
  })
  parts.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y0 + plotH}" y2="${y0 + plotH}" stroke="#111827"/>`)
  parts.push(legend(names, x0 + plotW + 20, y0))
  return parts.join("\n")
}

export const renderPlot = (plot: Plot): string => {
  const header = plot.subtitle === undefined ? 50 : 70
  const height = header + plot.charts.length * chartHeight
  const body = plot.charts.map((chart, i) => (chart.kind === "bars" ? bars(chart, header + i * chartHeight) : curves(chart, header + i * chartHeight)))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" fill="#111827">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="30" font-size="18" font-weight="700">${esc(plot.title)}</text>`,
    ...(plot.subtitle === undefined ? [] : [`<text x="${margin.left}" y="52" font-size="12" fill="#4b5563">${esc(plot.subtitle)}</text>`]),
    ...body,
    "</svg>",
    ""
  ].join("\n")
}
