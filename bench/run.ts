/**
 * `npm run bench`: push versus poll, measured side by side (issue 6).
 *
 *   npm run bench                       every scenario; prints one table, writes bench/results/<at>.json and latest.json
 *   npm run bench -- --only ingest,e2e  some scenarios (results file only, latest.json untouched)
 *   npm run bench -- --verbose          progress lines and the SQLite query plans
 *   npm run bench -- --quick            smaller counts, to try the suite out; not for published figures
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createTokenService } from "../server/auth/tokens.js";
import { repoRoot } from "./lib/children.js";
import { Cleanup } from "./lib/cleanup.js";
import { describeMachine } from "./lib/machine.js";
import { renderTable, writeResults } from "./lib/report.js";
import type { BenchContext, Scenario, ScenarioOutcome } from "./lib/scenario.js";
import { burst } from "./scenarios/burst.js";
import { e2e } from "./scenarios/e2e.js";
import { history } from "./scenarios/history.js";
import { ingest } from "./scenarios/ingest.js";
import { memory } from "./scenarios/memory.js";
import { poll } from "./scenarios/poll.js";
import { reaction } from "./scenarios/reaction.js";

const scenarios: Scenario[] = [ingest, reaction, burst, history, poll, e2e, memory];

const { values } = parseArgs({
  options: { only: { type: "string" }, verbose: { type: "boolean", default: false }, quick: { type: "boolean", default: false } },
});
const only = values.only
  ?.split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = only?.filter((k) => !scenarios.some((s) => s.key === k)) ?? [];
if (unknown.length) {
  process.stderr.write(`unknown scenario ${unknown.join(", ")}; known: ${scenarios.map((s) => s.key).join(", ")}\n`);
  process.exit(2);
}
const selected = scenarios.filter((s) => !only || only.includes(s.key));

const cleanup = new Cleanup();
const tmp = mkdtempSync(join(tmpdir(), "deployer-bench-"));
cleanup.add(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: cleaning up…\n`);
    void cleanup.run().then(() => process.exit(130));
  });
}

const started = Date.now();
const at = new Date().toISOString();
const secret = randomBytes(32).toString("hex");
const ctx: BenchContext = {
  cleanup,
  secret,
  tokens: createTokenService({ secret, dockerHubRegistry: "docker.io" }),
  tmp,
  verbose: values.verbose,
  quick: values.quick,
  log: (message) => {
    if (values.verbose) process.stderr.write(`  · ${message}\n`);
  },
};

const machine = describeMachine();
process.stderr.write(
  `bench: ${selected.map((s) => s.key).join(", ")} on ${machine.cpus}× ${machine.model}, node ${machine.node}, load ${machine.loadAvgAtStart.join(" ")}\n`,
);

const outcomes: Array<{ scenario: Scenario; outcome: ScenarioOutcome }> = [];
for (const scenario of selected) {
  if (interrupted) break;
  const t0 = Date.now();
  process.stderr.write(`${scenario.title} …\n`);
  const mark = cleanup.mark();
  let outcome: ScenarioOutcome;
  try {
    outcome = await scenario.run(ctx);
  } catch (err) {
    // One broken scenario must not cost the others their figures; the JSON records why.
    outcome = { json: { error: (err as Error).message }, rows: [], skipped: `failed: ${(err as Error).message.split("\n")[0]}` };
    if (values.verbose) process.stderr.write(`${(err as Error).stack}\n`);
  } finally {
    await cleanup.run(mark);
  }
  if (outcome.skipped) process.stderr.write(`[bench ${scenario.key} skipped] ${outcome.skipped}\n`);
  for (const note of outcome.notes ?? []) process.stderr.write(`  ${note}\n`);
  outcome.json.elapsedMs = Date.now() - t0;
  // The machine is shared: how busy it was while this scenario ran belongs with its figures.
  outcome.json.loadAvgAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  outcomes.push({ scenario, outcome });
}
await cleanup.run();
if (interrupted) process.exit(130);

const full = !only && !values.quick;
const document = {
  machine: { ...machine, loadAvgAtEnd: loadavg().map((v) => Math.round(v * 100) / 100) },
  at,
  durationMs: Date.now() - started,
  partial: !full,
  scenarios: Object.fromEntries(outcomes.map(({ scenario, outcome }) => [scenario.key, outcome.json])),
};
const file = writeResults(join(repoRoot, "bench", "results"), at, document, full);
process.stdout.write(`\n${renderTable(outcomes.map(({ scenario, outcome }) => ({ title: scenario.title, outcome })))}\n\n`);
process.stdout.write(
  `machine: ${machine.cpus}× ${machine.model}, ${machine.memoryMb} MB, node ${machine.node}, docker ${machine.docker ?? "absent"}\n`,
);
process.stdout.write(`results: ${file}${full ? " (and latest.json)" : ""}; ${Math.round(document.durationMs / 1000)} s\n`);
