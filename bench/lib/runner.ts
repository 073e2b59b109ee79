import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createTokenService } from "../../server/auth/tokens.js";
import { repoRoot } from "./children.js";
import { Cleanup } from "./cleanup.js";
import { describeMachine } from "./machine.js";
import { renderTable, writeResults } from "./report.js";
import type { BenchContext, Scenario, ScenarioOutcome } from "./scenario.js";

/**
 * Runs a suite of scenarios one after the other (`npm run bench`, `npm run
 * faults`): `--only a,b`, `--verbose`, `--quick`; one table on stdout, the
 * figures as JSON in `<resultsDir>/<at>.json` and, for a full run, `latest.json`.
 * Everything a scenario starts is undone after it, on failure and Ctrl-C too.
 * Returns whether every figure with a target met it.
 */
export async function runSuite(opts: { name: string; scenarios: Scenario[]; resultsDir: string }): Promise<boolean> {
  const { values } = parseArgs({
    options: { only: { type: "string" }, verbose: { type: "boolean", default: false }, quick: { type: "boolean", default: false } },
  });
  const only = values.only
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = only?.filter((k) => !opts.scenarios.some((s) => s.key === k)) ?? [];
  if (unknown.length) {
    process.stderr.write(`unknown scenario ${unknown.join(", ")}; known: ${opts.scenarios.map((s) => s.key).join(", ")}\n`);
    process.exit(2);
  }
  const selected = opts.scenarios.filter((s) => !only || only.includes(s.key));

  const cleanup = new Cleanup();
  const tmp = mkdtempSync(join(tmpdir(), `deployer-${opts.name}-`));
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
    `${opts.name}: ${selected.map((s) => s.key).join(", ")} on ${machine.cpus}× ${machine.model}, node ${machine.node}, load ${machine.loadAvgAtStart.join(" ")}\n`,
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
    if (outcome.skipped) process.stderr.write(`[${opts.name} ${scenario.key} skipped] ${outcome.skipped}\n`);
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
  const file = writeResults(join(repoRoot, opts.resultsDir), at, document, full);
  process.stdout.write(`\n${renderTable(outcomes.map(({ scenario, outcome }) => ({ title: scenario.title, outcome })))}\n\n`);
  process.stdout.write(
    `machine: ${machine.cpus}× ${machine.model}, ${machine.memoryMb} MB, node ${machine.node}, docker ${machine.docker ?? "absent"}\n`,
  );
  process.stdout.write(`results: ${file}${full ? " (and latest.json)" : ""}; ${Math.round(document.durationMs / 1000)} s\n`);
  return outcomes.every(({ outcome }) => !outcome.skipped && outcome.rows.every((r) => r.ok !== false));
}
