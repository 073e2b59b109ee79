import { skipped, type BenchContext, type Row, type Scenario } from "../../lib/scenario.js";
import { round, roundSummary, sleep, summarize } from "../../lib/stats.js";
import { startFaultProxy, type FaultMode, type FaultProxy } from "../lib/fault-proxy.js";
import { watchLoop } from "../lib/loop-probe.js";
import {
  buildWorld,
  dockerHelpersOrReason,
  outcomeOf,
  outcomeRows,
  readDb,
  sendPush,
  serverEnv,
  startServer,
  timeGet,
  type World,
} from "../lib/world.js";

const MODES: FaultMode[] = ["refuse", "reset", "hang"];

/**
 * One outage per mode in front of the Engine API or the registry: a deploy is
 * under way when the proxy starts to refuse, reset or hang; pushes keep
 * arriving (timed webhooks) and /readyz is asked (timed) while it lasts;
 * then the proxy passes again and the pushes must still end on the service.
 */
async function outageRun(ctx: BenchContext, world: World, server: { url: string }, proxy: FaultProxy, mode: FaultMode, first: number) {
  const seconds = ctx.quick ? 4 : 12;
  const hookMs: number[] = [];
  const readyMs: number[] = [];
  const readyStatuses: Record<string, number> = {};
  let outsideEnvelope = 0;
  const pushed: string[] = [];

  // The deployment under way when the fault starts.
  const underWay = await world.pushVariant(first);
  pushed.push(underWay);
  await sendPush(server, world, underWay);
  await sleep(300);
  await proxy.set(mode);
  const until = Date.now() + seconds * 1000;
  let n = first + 1;
  const asking = (async () => {
    while (Date.now() < until) {
      const r = await timeGet(`${server.url}/readyz`, 10_000);
      readyMs.push(r.ms);
      readyStatuses[r.status] = (readyStatuses[r.status] ?? 0) + 1;
      await sleep(500);
    }
  })();
  while (Date.now() < until) {
    const digest = await world.pushVariant(n++);
    pushed.push(digest);
    const answer = await sendPush(server, world, digest);
    hookMs.push(answer.ms);
    if (!answer.envelope) outsideEnvelope++;
    await sleep(1000);
  }
  await asking;
  await proxy.set("pass");
  const underWayRow = readDb(world.dbPath, world.service);
  const outcome = await outcomeOf(world, pushed, pushed.at(-1)!);
  return {
    mode,
    seconds,
    pushesDuringFault: pushed.length - 1,
    webhookMs: roundSummary(summarize(hookMs)),
    readyzMs: roundSummary(summarize(readyMs)),
    readyzStatuses: readyStatuses,
    outsideEnvelope,
    deploymentsAtRestore: underWayRow.deployments,
    ...outcome,
    next: n,
  };
}

function outageScenario(key: "engine" | "registry", title: string): Scenario {
  return {
    key,
    title,
    async run(ctx) {
      const h = await dockerHelpersOrReason();
      if (typeof h === "string") return skipped(`needs Docker in swarm mode and docker-registry: ${h}`);
      let proxy: FaultProxy;
      let world: World;
      let extra: Record<string, string> = {};
      if (key === "engine") {
        proxy = await startFaultProxy({ socketPath: "/var/run/docker.sock" });
        world = await buildWorld(ctx, h, { name: "fault-engine", notify: false });
        extra = { DOCKER_HOST: `tcp://127.0.0.1:${proxy.port}` };
      } else {
        const registryPort = await h.freePort();
        proxy = await startFaultProxy({ port: registryPort });
        world = await buildWorld(ctx, h, { name: "fault-registry", notify: false, registryPort, imageHost: `127.0.0.1:${proxy.port}` });
      }
      ctx.cleanup.add(`close ${key} proxy`, () => proxy.close());
      const server = await startServer(ctx, world, serverEnv(ctx, world, extra));
      const loop = watchLoop(server.url, () => server.child.exitCode === null && server.child.signalCode === null);
      const runs = [];
      let next = 1;
      for (const mode of MODES) {
        const run = await outageRun(ctx, world, server, proxy, mode, next);
        next = run.next;
        runs.push(run);
        ctx.log(`${key} ${mode}: ${JSON.stringify(run)}`);
      }
      const stall = await loop.stop();
      const rows: Row[] = [];
      for (const r of runs) {
        rows.push(
          { metric: `${r.mode}: webhook answer`, unit: "ms", value: r.webhookMs, target: "p99 < 100", ok: r.webhookMs.p99 < 100 },
          { metric: `${r.mode}: /readyz answer`, unit: "ms", value: r.readyzMs, target: "< 2500", ok: r.readyzMs.max < 2500 },
          ...outcomeRows(r).map((row) => ({ ...row, metric: `${r.mode}: ${row.metric}` })),
        );
      }
      rows.push({ metric: "crashes", unit: "", value: summarize([stall.died ? 1 : 0]), target: "0", ok: !stall.died });
      rows.push({
        metric: "longest loop stall",
        unit: "ms",
        value: summarize([stall.longestStallMs]),
        target: "< 50",
        ok: stall.longestStallMs < 50,
      });
      return {
        json: {
          runs: runs.map(({ next: _next, ...r }) => r),
          connections: proxy.counts(),
          longestLoopStallMs: round(stall.longestStallMs),
          crashed: stall.died,
        },
        rows,
      };
    },
  };
}

export const engineOutage = outageScenario("engine", "3. Engine API refuses, resets, hangs");
export const registryOutage = outageScenario("registry", "4. registry refuses, resets, hangs");
