/**
 * The deploy server as the benchmarks run it: the real composition
 * (composeServer over a SQLite file built by the real migrations, the real
 * middleware, routes, store and deployer, pino at `info`) served by
 * @hono/node-server the way server/main.ts serves it. Only the ports differ:
 * the swarm is the recording FakeSwarm and the registry is BenchRegistry, so
 * what is measured is the server's own work.
 */
import { serve } from "@hono/node-server";
import { composeServer } from "../../server/compose.js";
import { loadConfig } from "../../server/config/config.js";
import { createLogger } from "../../server/logger.js";
import { openDatabase } from "../../server/store/database.js";
import { FakeSwarm, type FakeCall } from "../../test/helpers/fake-swarm.js";
import { BenchRegistry } from "./bench-registry.js";
import { announceReady, answerRpc } from "./child-ipc.js";

export interface DeployerChildConfig {
  dbPath: string;
  secret: string;
  services: Array<{ name: string; image: string; replicas?: number }>;
  pinned?: Record<string, string>;
  /** Record when requests carrying `x-bench-probe` arrive (reaction time) and how long the app took to answer them. */
  probes?: boolean;
  /** Keep a log of update calls (default); the memory scenario only counts them, so the log is not in its figures. */
  logUpdates?: boolean;
  logLevel?: string;
  /** How often the fake swarm moves rollouts a step (a rollout takes 3 steps). Default 20 ms. */
  rolloutTickMs?: number;
  /** DEPLOYER_MAX_ROLLOUTS; the server's default (25) when absent. */
  maxRollouts?: number;
}

const cfg = JSON.parse(process.env.BENCH_CHILD ?? "{}") as DeployerChildConfig;

// Bounded, so a 100,000-webhook run does not measure the benchmark's own bookkeeping.
const keep = 20_000;
const counts: Record<string, number> = {};
let updates: Array<{ serviceId: string; image: string; at: number }> = [];
let arrivals: Array<{ probe: string; at: number; handledMs?: number }> = [];

const onCall = (call: FakeCall) => {
  counts[call.method] = (counts[call.method] ?? 0) + 1;
  if (call.method === "updateService" && cfg.logUpdates !== false && updates.length < keep) {
    const [serviceId, , update] = call.args as [string, number, { image: string }];
    updates.push({ serviceId, image: update.image, at: performance.now() });
  }
};

const config = loadConfig({
  DEPLOYER_DB: cfg.dbPath,
  DEPLOYER_SECRET: cfg.secret,
  DEPLOYER_POLL: "false",
  LOG_LEVEL: cfg.logLevel ?? "info",
  ...(cfg.maxRollouts === undefined ? {} : { DEPLOYER_MAX_ROLLOUTS: String(cfg.maxRollouts) }),
});
const database = openDatabase(cfg.dbPath);
// The tag names what its latest push announced, as it does on a registry once the push is done. The stand-in's
// own query walks the triggers from the newest (rowid order is insert order), so that it stops at the latest push
// of that tag instead of sorting the whole table: its cost is the bench's, not the server's.
const latestAnnounced = database.sqlite.prepare("select digest_hint as digest from triggers where image_key = ? order by rowid desc limit 1");
const announced = (imageKey: string) => (latestAnnounced.get(imageKey) as { digest: string | null } | undefined)?.digest ?? undefined;
const swarm = new FakeSwarm({ autoTickMs: cfg.rolloutTickMs ?? 20, taskHistoryLimit: 5, keepCalls: false, onCall });
const serviceIds = Object.fromEntries(cfg.services.map((s) => [s.name, swarm.addService(s).id]));
const server = composeServer({
  config,
  secret: cfg.secret,
  db: database.db,
  sqlite: database.sqlite,
  swarm,
  registry: new BenchRegistry(cfg.pinned, announced),
  log: createLogger(config.log.level),
  defaultMetrics: true,
});

// As main.ts does: webhooks find their services in the index kept from the (fake) engine's event stream.
server.serviceIndex.start();

const fetch: typeof server.app.fetch = cfg.probes
  ? async (req, ...rest) => {
      const probe = req.headers.get("x-bench-probe");
      if (!probe || arrivals.length >= keep) return server.app.fetch(req, ...rest);
      const arrival: (typeof arrivals)[number] = { probe, at: performance.now() };
      arrivals.push(arrival);
      const res = await server.app.fetch(req, ...rest);
      // The server's own time: routing, auth, query and the JSON body, not the socket or the client.
      arrival.handledMs = performance.now() - arrival.at;
      return res;
    }
  : server.app.fetch;

answerRpc({
  rss: () => process.memoryUsage().rss,
  /** Live heap after a full collection (needs --expose-gc): what a leak would make grow. */
  heapAfterGc: () => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed;
  },
  stats: () => ({
    calls: { ...counts },
    updates,
    arrivals,
    statuses: database.sqlite.prepare("select status, count(*) as n from deployments group by status").all(),
  }),
  reset: () => {
    for (const k of Object.keys(counts)) delete counts[k];
    updates = [];
    arrivals = [];
    return true;
  },
  idle: async ({ timeoutMs }) => {
    const limit = Number(timeoutMs ?? 30_000);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((r) => (timer = setTimeout(() => r(false), limit)));
    const done = await Promise.race([server.deployer.idle().then(() => true), timedOut]);
    clearTimeout(timer);
    return done;
  },
});

serve({ fetch, port: 0, hostname: "127.0.0.1" }, (info) => announceReady(info.port, { serviceIds }));

// Exit through process.exit on SIGTERM, so that `--cpu-prof` and `--heap-prof` write their files.
process.on("SIGTERM", () => process.exit(0));
