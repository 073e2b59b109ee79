/** Order statistics over repeated runs or over per-request samples. */
export interface Summary {
  median: number;
  p99: number;
  min: number;
  max: number;
  n: number;
}

/** Nearest-rank percentile (no interpolation), so a p99 is always a value that was really observed. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    median: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
    n: sorted.length,
  };
}

/** Rounds for JSON and tables: three significant decimals below 10, one above. */
export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  return Math.abs(v) < 10 ? Math.round(v * 1000) / 1000 : Math.round(v * 10) / 10;
}

export function roundSummary(s: Summary): Summary {
  return { median: round(s.median), p99: round(s.p99), min: round(s.min), max: round(s.max), n: s.n };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
