// Types for parse-prometheus-text-format (the package ships none): prom2json's shapes, values as strings.
declare module "parse-prometheus-text-format" {
  export interface ParsedSample {
    readonly labels?: Record<string, string>
    /** Counters, gauges and untyped metrics. */
    readonly value?: string
    /** Histograms: cumulative counts by `le`, `+Inf` included. */
    readonly buckets?: Record<string, string>
    /** Summaries: values by quantile. */
    readonly quantiles?: Record<string, string>
    readonly count?: string
    readonly sum?: string
  }
  export interface ParsedFamily {
    readonly name: string
    readonly help: string
    readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"
    readonly metrics: ReadonlyArray<ParsedSample>
  }
  const parsePrometheusTextFormat: (text: string) => Array<ParsedFamily>
  export default parsePrometheusTextFormat
}
