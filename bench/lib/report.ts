import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Row, ScenarioOutcome } from "./scenario.js";
import { round } from "./stats.js";

const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : String(round(v)));

/** One table for the whole run: a row per figure, its spread, its same-run baseline, the ratio and the target. */
export function renderTable(outcomes: Array<{ title: string; outcome: ScenarioOutcome }>): string {
  const header = ["scenario", "figure", "median", "p99", "min–max", "n", "baseline (same run)", "ratio", "target", ""];
  const lines: string[][] = [];
  for (const { title, outcome } of outcomes) {
    if (outcome.skipped) {
      lines.push([title, `skipped: ${outcome.skipped}`, "", "", "", "", "", "", "", ""]);
      continue;
    }
    outcome.rows.forEach((row: Row, i) => {
      lines.push([
        i === 0 ? title : "",
        row.unit ? `${row.metric} (${row.unit})` : row.metric,
        fmt(row.value.median),
        fmt(row.value.p99),
        row.value.n > 1 ? `${fmt(row.value.min)}–${fmt(row.value.max)}` : "",
        String(row.value.n),
        row.baseline ? `${row.baseline.label} ${fmt(row.baseline.value)}` : "",
        row.ratio === undefined ? "" : `${round(row.ratio)}×`,
        row.target ?? "",
        row.ok === undefined ? "" : row.ok ? "ok" : "MISSED",
      ]);
    });
  }
  const widths = header.map((h, c) => Math.max(h.length, ...lines.filter((l) => !l[1]!.startsWith("skipped")).map((l) => l[c]!.length)));
  const line = (cells: string[]) =>
    cells[1]!.startsWith("skipped:")
      ? `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]}`
      : cells
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(line)].join("\n");
}

/** Writes `<dir>/<timestamp>.json` and, for a full run, `<dir>/latest.json`; returns the timestamped path. */
export function writeResults(dir: string, at: string, document: unknown, full: boolean): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${at.replace(/[:.]/g, "-")}.json`);
  const text = `${JSON.stringify(document, null, 2)}\n`;
  writeFileSync(file, text);
  if (full) writeFileSync(join(dir, "latest.json"), text);
  return file;
}
