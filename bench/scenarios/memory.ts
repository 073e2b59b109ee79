import { spawn } from "node:child_process";
import { join } from "node:path";
import { bundleServer } from "../../scripts/build-server.js";
import { childRssMb, repoRoot, rssMbOfPid, startBaselineChild, startDeployerChild, stopper } from "../lib/children.js";
import { freePortOnLoopback } from "../../test/helpers/ports.js";
import { benchRegistryHost, digestOf, loadHooks, pushBody } from "../lib/load.js";
import type { BenchContext, Scenario } from "../lib/scenario.js";
import { round, sleep, summarize } from "../lib/stats.js";
import { benchServices, serviceCount } from "./ingest.js";

const settleMs = 3000;
/**
 * V8 gives back what start-up allocated (its young generation grown to 8 MB,
 * old-space pages of garbage) only when its memory reducer runs, about 8 s
 * after the last full collection once the process allocates little. Idle RSS
 * is read after that: 15 s after the process is ready, what it holds for as
 * long as it stays idle. The reading 3 s after ready is kept beside it.
 */
const settledMs = 15_000;

interface IdleRss {
  /** 3 s after ready. */
  startedMb: number;
  /** 15 s after ready: the idle process's steady state. */
  settledMb: number;
}

async function settledRssOf(read: () => Promise<number | undefined>, readyAt: number): Promise<IdleRss | undefined> {
  await sleep(Math.max(0, readyAt + settleMs - performance.now()));
  const startedMb = await read();
  await sleep(Math.max(0, readyAt + settledMs - performance.now()));
  const settledMb = await read();
  return startedMb === undefined || settledMb === undefined ? undefined : { startedMb, settledMb };
}

/**
 * RSS of a process left idle: dist/server.mjs started as `npm start` starts
 * it (pino, dockerode, prom-client's default metrics), or a bare `node` as
 * the floor.
 */
async function idleRssMbOf(ctx: BenchContext, args: string[], healthUrl?: (port: number) => string): Promise<IdleRss | undefined> {
  const port = await freePortOnLoopback();
  const proc = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: String(port),
      DEPLOYER_DB: join(ctx.tmp, `idle-${port}.db`),
      DEPLOYER_SECRET: ctx.secret,
      DEPLOYER_POLL: "false",
    },
    stdio: "ignore",
  });
  const stop = stopper(proc, 6000);
  ctx.cleanup.add(`stop ${args.join(" ")} (pid ${proc.pid})`, stop);
  const deadline = Date.now() + 30_000;
  while (healthUrl && Date.now() < deadline && proc.exitCode === null) {
    if (
      await fetch(healthUrl(port)).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(100);
  }
  const rss = await settledRssOf(async () => rssMbOfPid(proc.pid!), performance.now());
  await stop();
  return rss;
}

/**
 * Scenario 7. RSS of the deploy server at idle and after 100,000 distinct
 * webhooks (each one a committed trigger and deployment, most superseded by
 * the next push to the same service, the rest rolled out on the fake swarm).
 * Baseline: the bare hono process at idle, i.e. what Node and the HTTP
 * adapter cost before the deployer adds anything.
 */
export const memory: Scenario = {
  key: "memory",
  title: "7. memory (RSS)",
  async run(ctx) {
    const webhooks = ctx.quick ? 10_000 : 100_000;
    const bare = await startBaselineChild(ctx.cleanup);
    // --expose-gc only lets the bench ask for a full collection before reading the live heap; nothing else calls it.
    const server = await startDeployerChild(
      ctx.cleanup,
      { dbPath: join(ctx.tmp, "memory.db"), secret: ctx.secret, services: benchServices(), logUpdates: false },
      ["--expose-gc"],
    );
    const readyAt = performance.now();
    const [bareRss, serverRss] = await Promise.all([settledRssOf(() => childRssMb(bare), readyAt), settledRssOf(() => childRssMb(server), readyAt)]);
    const bareIdle = bareRss!.settledMb;
    const idle = serverRss!.settledMb;
    await bare.stop();
    await bundleServer();
    const [mainRss, nodeRss] = await Promise.all([
      idleRssMbOf(ctx, ["dist/server.mjs"], (port) => `http://127.0.0.1:${port}/healthz`),
      idleRssMbOf(ctx, ["-e", "setInterval(() => {}, 1000)"]),
    ]);
    const mainIdle = mainRss?.settledMb;
    const nodeIdle = nodeRss?.settledMb;

    const token = await ctx.tokens.signWebhookToken({ sub: "bench", repos: [`${benchRegistryHost}/bench/*`] });
    let n = 0;
    let peak = idle;
    const sampler = setInterval(
      () =>
        void childRssMb(server).then(
          (v) => (peak = Math.max(peak, v)),
          () => undefined,
        ),
      500,
    );
    // In tenths, with the RSS after each: a leak climbs steadily, a warm heap levels off.
    const chunks = 10;
    const byChunk: number[] = [];
    const heapByChunk: number[] = [];
    let completed = 0;
    let rejected = 0;
    const started = performance.now();
    try {
      for (let c = 0; c < chunks; c++) {
        const load = await loadHooks({
          url: server.url,
          token,
          connections: 10,
          amount: webhooks / chunks,
          body: () => pushBody({ repository: `bench/app-${n % serviceCount}`, digest: digestOf(n++, "c") }),
        });
        completed += load.completed;
        rejected += load.non2xx + load.errors;
        byChunk.push(round(await childRssMb(server)));
        heapByChunk.push(round((await server.rpc<number>("heapAfterGc")) / 2 ** 20));
      }
    } finally {
      clearInterval(sampler);
    }
    const load = { completed, durationMs: performance.now() - started };
    await server.rpc("idle", { timeoutMs: 60_000 }, 70_000);
    const afterRss = await settledRssOf(() => childRssMb(server), performance.now());
    const after = afterRss!.settledMb;
    ctx.log(
      `memory: ${load.completed} webhooks in ${Math.round(load.durationMs / 1000)} s; RSS idle ${round(idle)} MB, peak ${round(peak)} MB, after ${round(after)} MB`,
    );
    const ok = (v: number | undefined) => v !== undefined && v < 80;
    return {
      json: {
        idleRssMb: round(idle),
        idleRssMbAt3s: round(serverRss!.startedMb),
        after100kRssMb: round(after),
        peakRssMb: round(peak),
        mainIdleRssMb: mainIdle === undefined ? null : round(mainIdle),
        mainIdleRssMbAt3s: mainRss === undefined ? null : round(mainRss.startedMb),
        baselineIdleRssMb: round(bareIdle),
        nodeIdleRssMb: nodeIdle === undefined ? null : round(nodeIdle),
        webhooks: completed,
        non2xx: rejected,
        rssMbAfterEachTenth: byChunk,
        heapMbAfterGcEachTenth: heapByChunk,
        webhooksPerSecond: round(completed / (load.durationMs / 1000)),
      },
      rows: [
        {
          metric: "idle RSS, bench server",
          unit: "MB",
          value: summarize([idle]),
          baseline: { label: "bare hono", value: bareIdle },
          ratio: idle / bareIdle,
          target: "< 80",
          ok: ok(idle),
        },
        ...(mainIdle === undefined
          ? []
          : [
              {
                metric: "idle RSS, npm start (dist/server.mjs)",
                unit: "MB",
                value: summarize([mainIdle]),
                baseline: { label: "bare hono", value: bareIdle },
                ratio: mainIdle / bareIdle,
                target: "< 80",
                ok: ok(mainIdle),
              },
              {
                metric: "RSS of npm start 3 s after ready",
                unit: "MB",
                value: summarize([mainRss!.startedMb]),
                baseline: { label: "settled", value: mainIdle },
                ratio: mainRss!.startedMb / mainIdle,
              },
            ]),
        {
          metric: `RSS after ${load.completed.toLocaleString("en")} webhooks`,
          unit: "MB",
          value: summarize([after]),
          baseline: { label: "idle", value: idle },
          ratio: after / idle,
        },
        { metric: "peak RSS during them", unit: "MB", value: summarize([peak]) },
        {
          metric: "live heap after GC, last tenth",
          unit: "MB",
          value: summarize([heapByChunk.at(-1)!]),
          baseline: { label: "first tenth", value: heapByChunk[0]! },
          ratio: heapByChunk.at(-1)! / heapByChunk[0]!,
        },
        ...(nodeIdle === undefined ? [] : [{ metric: "idle RSS, bare `node`", unit: "MB", value: summarize([nodeIdle]) }]),
      ],
    };
  },
};
