import { join } from "node:path";
import { cpuMsOfPid, startBaselineChild, startDeployerChild, type Child } from "../lib/children.js";
import { benchRegistryHost, digestOf, loadHooks, pushBody, type LoadResult } from "../lib/load.js";
import type { Scenario } from "../lib/scenario.js";
import { round, roundSummary, summarize } from "../lib/stats.js";

export const serviceCount = 50;

/** Services `bench-app-<i>` running `127.0.0.1:5000/bench/app-<i>:live`, one per pushed repository. */
export function benchServices(count = serviceCount, prefix = "app") {
  return Array.from({ length: count }, (_, i) => ({ name: `bench-${prefix}-${i}`, image: `${benchRegistryHost}/bench/${prefix}-${i}:live` }));
}

type Measured = LoadResult & { cpuUsPerRequest?: number };

/** A load run, with the server process's CPU time per answered request over it. */
async function withCpu(child: Child, load: () => Promise<LoadResult>): Promise<Measured> {
  const before = cpuMsOfPid(child.pid);
  const result = await load();
  const after = cpuMsOfPid(child.pid);
  return { ...result, cpuUsPerRequest: before === undefined || after === undefined ? undefined : ((after - before) * 1000) / result.completed };
}

const cpuSummary = (runs: Measured[]) => {
  const values = runs.map((r) => r.cpuUsPerRequest).filter((v): v is number => v !== undefined);
  return values.length ? summarize(values) : undefined;
};

/**
 * Scenario 1. Distinct pushes (new event id, new digest, services in turn)
 * against the deploy server and against a bare hono route, each in its own
 * process, rounds alternated so that machine noise hits both alike.
 */
export const ingest: Scenario = {
  key: "ingest",
  title: "1. webhook ingest",
  async run(ctx) {
    // Rollouts on the fake take as long as on the real swarm (3 steps of 1.5 s: ~4.5 s; scenario 6 measures
    // ~4.3 s), so the server does per webhook what it would do in production: token, validation, commit,
    // enqueue, and its share of rollouts that last seconds. The stress case below makes them 20 ms.
    const server = await startDeployerChild(ctx.cleanup, {
      dbPath: join(ctx.tmp, "ingest.db"),
      secret: ctx.secret,
      services: benchServices(),
      rolloutTickMs: 1500,
    });
    const bare = await startBaselineChild(ctx.cleanup, { commitDb: join(ctx.tmp, "ingest-floor.db") });
    const token = await ctx.tokens.signWebhookToken({ sub: "bench", repos: [`${benchRegistryHost}/bench/*`] });
    let pushes = 0;
    const body = () => {
      const n = pushes++;
      return pushBody({ repository: `bench/app-${n % serviceCount}`, digest: digestOf(n) });
    };
    const rounds = ctx.quick ? 2 : 5;
    const durationS = ctx.quick ? 2 : 5;
    const connections = 10;
    const run = (child: Child, seconds: number) => withCpu(child, () => loadHooks({ url: child.url, token, body, connections, durationS: seconds }));

    await run(server, 1);
    await run(bare, 1);
    const ours: Measured[] = [];
    const base: Measured[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate who goes first, so a slow second half of the run does not always land on the same side.
      if (r % 2 === 0) {
        ours.push(await run(server, durationS));
        base.push(await run(bare, durationS));
      } else {
        base.push(await run(bare, durationS));
        ours.push(await run(server, durationS));
      }
      ctx.log(`ingest round ${r + 1}/${rounds}: server ${Math.round(ours.at(-1)!.rps)} req/s, bare ${Math.round(base.at(-1)!.rps)} req/s`);
    }
    // The request path alone: the same pushes for a repository no service runs, so each is a committed trigger and no deployment.
    const unwatched: Measured[] = [];
    for (let r = 0; r < Math.min(3, rounds); r++) {
      const bodyUnwatched = () => pushBody({ repository: `bench/unwatched-${pushes % serviceCount}`, digest: digestOf(pushes++) });
      unwatched.push(await withCpu(server, () => loadHooks({ url: server.url, token, body: bodyUnwatched, connections, durationS })));
    }
    // Stress: the same pushes with rollouts 200× faster than a real swarm's, so the deployer runs hundreds a second.
    const fast = await startDeployerChild(ctx.cleanup, {
      dbPath: join(ctx.tmp, "ingest-fast.db"),
      secret: ctx.secret,
      services: benchServices(),
      rolloutTickMs: 20,
    });
    const stress: Measured[] = [];
    for (let r = 0; r < Math.min(3, rounds); r++) stress.push(await run(fast, durationS));
    await fast.rpc("idle", { timeoutMs: 60_000 }, 70_000);
    const fastStats = await fast.rpc<{ calls: Record<string, number> }>("stats");
    await fast.stop();
    // The floor under any receiver that records a push before answering: the bare route plus one committed row.
    const floor: Measured[] = [];
    for (let r = 0; r < Math.min(3, rounds); r++) {
      floor.push(await withCpu(bare, () => loadHooks({ url: bare.url, path: "/hooks/commit", token, body, connections, durationS })));
    }
    await server.rpc("idle", { timeoutMs: 60_000 }, 70_000);
    const stats = await server.rpc<{ calls: Record<string, number>; statuses: Array<{ status: string; n: number }> }>("stats");

    const rps = summarize(ours.map((r) => r.rps));
    const baselineRps = summarize(base.map((r) => r.rps));
    const p99 = summarize(ours.map((r) => r.p99Ms));
    const baseP99 = summarize(base.map((r) => r.p99Ms));
    const ratio = rps.median / baselineRps.median;
    const pathOnly = summarize(unwatched.map((r) => r.rps));
    const floorRps = summarize(floor.map((r) => r.rps));
    const floorRatio = rps.median / floorRps.median;
    const stressRps = summarize(stress.map((r) => r.rps));
    const cpu = { push: cpuSummary(ours), noMatch: cpuSummary(unwatched), bare: cpuSummary(base), floor: cpuSummary(floor) };
    const non2xx = [...ours, ...unwatched, ...stress].reduce((n, r) => n + r.non2xx + r.errors, 0);
    return {
      json: {
        rps: round(rps.median),
        baselineRps: round(baselineRps.median),
        ratio: round(ratio),
        p99Ms: round(p99.median),
        baselineP99Ms: round(baseP99.median),
        rpsRuns: roundSummary(rps),
        p99MsRuns: roundSummary(p99),
        rounds,
        durationS,
        connections,
        requests: ours.reduce((n, r) => n + r.completed, 0),
        non2xx,
        updateServiceCalls: stats.calls.updateService ?? 0,
        noMatchRps: round(pathOnly.median),
        noMatchRatio: round(pathOnly.median / baselineRps.median),
        // Server CPU (user + system) per answered request, µs: what each request costs, whoever bounds the rate.
        cpuUsPerRequest: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v ? round(v.median) : null])),
        rolloutMs: 4500,
        fastRolloutRps: round(stressRps.median),
        fastRolloutRatio: round(stressRps.median / baselineRps.median),
        fastRolloutUpdateServiceCalls: fastStats.calls.updateService ?? 0,
        commitFloorRps: round(floorRps.median),
        commitFloorRatio: round(floorRps.median / baselineRps.median),
        ratioToCommitFloor: round(floorRatio),
        deploymentsByStatus: Object.fromEntries(stats.statuses.map((s) => [s.status, s.n])),
      },
      rows: [
        // The target is against the floor any receiver that records a push before it answers has: the bare route plus one commit.
        {
          metric: "requests/s",
          unit: "req/s",
          value: rps,
          baseline: { label: "bare route + 1 SQLite commit", value: floorRps.median },
          ratio: floorRatio,
          target: "≥ 0.5×",
          ok: floorRatio >= 0.5,
        },
        {
          metric: "requests/s against the bare route",
          unit: "req/s",
          value: rps,
          baseline: { label: "bare hono", value: baselineRps.median },
          ratio,
        },
        { metric: "p99 latency", unit: "ms", value: p99, baseline: { label: "bare hono", value: baseP99.median } },
        {
          metric: "requests/s, push matching no service",
          unit: "req/s",
          value: pathOnly,
          baseline: { label: "bare hono", value: baselineRps.median },
          ratio: pathOnly.median / baselineRps.median,
        },
        {
          metric: "requests/s, 60 ms rollouts (stress)",
          unit: "req/s",
          value: stressRps,
          baseline: { label: "bare hono", value: baselineRps.median },
          ratio: stressRps.median / baselineRps.median,
        },
        {
          metric: "bare route + 1 SQLite commit (floor)",
          unit: "req/s",
          value: floorRps,
          baseline: { label: "bare hono", value: baselineRps.median },
          ratio: floorRps.median / baselineRps.median,
        },
        ...(cpu.push && cpu.bare
          ? [
              {
                metric: "server CPU per webhook",
                unit: "µs",
                value: cpu.push,
                baseline: { label: "bare hono", value: cpu.bare.median },
                ratio: cpu.push.median / cpu.bare.median,
              },
            ]
          : []),
        ...(cpu.noMatch && cpu.bare
          ? [
              {
                metric: "server CPU per push matching no service",
                unit: "µs",
                value: cpu.noMatch,
                baseline: { label: "bare hono", value: cpu.bare.median },
                ratio: cpu.noMatch.median / cpu.bare.median,
              },
            ]
          : []),
        ...(cpu.floor && cpu.bare
          ? [
              {
                metric: "CPU per request, bare + 1 commit (floor)",
                unit: "µs",
                value: cpu.floor,
                baseline: { label: "bare hono", value: cpu.bare.median },
                ratio: cpu.floor.median / cpu.bare.median,
              },
            ]
          : []),
        { metric: "non-2xx answers", unit: "", value: summarize([non2xx]), target: "0", ok: non2xx === 0 },
      ],
    };
  },
};
