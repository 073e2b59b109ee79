/**
 * `npm run bench`: push versus poll, measured side by side (issue 6).
 *
 *   npm run bench                       every scenario; prints one table, writes bench/results/<at>.json and latest.json
 *   npm run bench -- --only ingest,e2e  some scenarios (results file only, latest.json untouched)
 *   npm run bench -- --verbose          progress lines and the SQLite query plans
 *   npm run bench -- --quick            smaller counts, to try the suite out; not for published figures
 */
import { runSuite } from "./lib/runner.js";
import { burst } from "./scenarios/burst.js";
import { e2e } from "./scenarios/e2e.js";
import { fanout } from "./scenarios/fanout.js";
import { history } from "./scenarios/history.js";
import { ingest } from "./scenarios/ingest.js";
import { memory } from "./scenarios/memory.js";
import { poll } from "./scenarios/poll.js";
import { reaction } from "./scenarios/reaction.js";
import { dashboard } from "./scenarios/dashboard.js";

await runSuite({ name: "bench", scenarios: [ingest, reaction, burst, history, dashboard, poll, e2e, memory, fanout], resultsDir: "bench/results" });
