/**
 * `npm run faults`: the fault suite on the real swarm and registry (issue 10).
 * Not part of `npm test`, which keeps a fast deterministic test of each fix.
 *
 *   npm run faults                          every scenario; writes bench/results/faults/<at>.json and latest.json
 *   npm run faults -- --only hostile,disk   some scenarios
 *   npm run faults -- --quick               smaller counts, to try the suite out
 *   FAULTS_SEED=n npm run faults            replays the hostile run of seed n
 *
 * Exits 1 when a figure misses its target or a scenario could not run.
 */
import { execFileSync } from "node:child_process";
import { repoRoot } from "../lib/children.js";
import { runSuite } from "../lib/runner.js";
import { concurrent } from "./scenarios/concurrent.js";
import { crash } from "./scenarios/crash.js";
import { disk } from "./scenarios/disk.js";
import { hostile } from "./scenarios/hostile.js";
import { engineOutage, registryOutage } from "./scenarios/outage.js";

// The scenarios run the server as `npm start` does, from its bundle.
execFileSync(process.execPath, ["--import", "tsx", "scripts/build-server.ts"], { cwd: repoRoot, stdio: "inherit" });
const ok = await runSuite({
  name: "faults",
  scenarios: [hostile, crash, engineOutage, registryOutage, disk, concurrent],
  resultsDir: "bench/results/faults",
});
process.exit(ok ? 0 : 1);
