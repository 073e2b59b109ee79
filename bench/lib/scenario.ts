import type { TokenService } from "../../server/auth/tokens.js";
import type { Cleanup } from "./cleanup.js";
import type { Summary } from "./stats.js";

/** One line of the printed table: a figure, its spread over runs, its same-run baseline and its target. */
export interface Row {
  metric: string;
  unit: string;
  value: Summary;
  baseline?: { label: string; value: number };
  /** value.median / baseline.value, when the pair is comparable. */
  ratio?: number;
  target?: string;
  ok?: boolean;
}

export interface ScenarioOutcome {
  /** The scenario's entry in the JSON file (the keys plus extras). */
  json: Record<string, unknown>;
  rows: Row[];
  /** Set when the scenario could not run here; the reason is printed in one line. */
  skipped?: string;
  notes?: string[];
}

export interface BenchContext {
  cleanup: Cleanup;
  secret: string;
  tokens: TokenService;
  /** A temp dir removed at the end of the run. */
  tmp: string;
  verbose: boolean;
  /** Smaller counts and shorter runs, for trying the suite out; never for published figures. */
  quick: boolean;
  log(message: string): void;
}

export interface Scenario {
  key: string;
  title: string;
  run(ctx: BenchContext): Promise<ScenarioOutcome>;
}

export function skipped(reason: string, json: Record<string, unknown> = {}): ScenarioOutcome {
  return { json: { ...json, skipped: reason }, rows: [], skipped: reason };
}
