import { join } from "node:path";
import { startBaselineChild, startDeployerChild } from "../lib/children.js";
import { benchRegistryHost, digestOf, pushBody } from "../lib/load.js";
import type { BenchContext, Scenario } from "../lib/scenario.js";
import { round, roundSummary, sleep, summarize } from "../lib/stats.js";
import { benchServices } from "./ingest.js";

const services = 100;

interface ChildStats {
  updates: Array<{ serviceId: string; at: number }>;
  arrivals: Array<{ probe: string; at: number }>;
}

/** Reaction times of `probes` pushes against a fresh server with `count` services, one service after another. */
async function measure(ctx: BenchContext, count: number, probes: number, prefix: string) {
  const server = await startDeployerChild(ctx.cleanup, {
    dbPath: join(ctx.tmp, `reaction-${prefix}.db`),
    secret: ctx.secret,
    services: benchServices(count, prefix),
    probes: true,
    // A probe every ~17 ms and rollouts of ~0.5 s (the watcher's pace) keep ~30 under way: with the default bound
    // (25) a probe would wait for a rollout slot. Each probe is for an idle lane; the bound is not what is measured.
    maxRollouts: 1000,
  });
  const bare = await startBaselineChild(ctx.cleanup);
  const serviceIds = server.extra.serviceIds as Record<string, string>;
  const token = await ctx.tokens.signWebhookToken({ sub: "bench", repos: [`${benchRegistryHost}/bench/*`] });
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/vnd.docker.distribution.events.v1+json" };
  const clientMs: number[] = [];
  const bareMs: number[] = [];
  const post = async (url: string, body: string, extra: Record<string, string> = {}) => {
    const t0 = performance.now();
    const res = await fetch(`${url}/hooks/registry`, { method: "POST", headers: { ...headers, ...extra }, body });
    await res.arrayBuffer();
    if (res.status >= 300) throw new Error(`probe answered ${res.status}`);
    return performance.now() - t0;
  };
  // Warm-up: the first requests pay for lazy compilation on both sides.
  for (let i = 0; i < 20; i++) {
    await post(server.url, pushBody({ repository: `bench/${prefix}-${i % count}`, digest: digestOf(i, "a") }));
    await post(bare.url, "{}");
  }
  await server.rpc("idle", { timeoutMs: 10_000 });
  await sleep(300);
  await server.rpc("reset");

  const deadline = Date.now() + 120_000;
  for (let k = 0; k < probes && Date.now() < deadline; k++) {
    const body = pushBody({ repository: `bench/${prefix}-${k % count}`, digest: digestOf(k, "b") });
    clientMs.push(await post(server.url, body, { "x-bench-probe": String(k) }));
    bareMs.push(await post(bare.url, body));
    // A gap lets the update call land before the next probe; each service comes round every `count` probes.
    await sleep(15);
  }
  await server.rpc("idle", { timeoutMs: 30_000 }, 40_000);
  const stats = await server.rpc<ChildStats>("stats");
  await server.stop();
  await bare.stop();

  const reactionMs: number[] = [];
  let unmatched = 0;
  for (const arrival of stats.arrivals) {
    const id = serviceIds[`bench-${prefix}-${Number(arrival.probe) % count}`];
    const update = stats.updates.find((u) => u.serviceId === id && u.at >= arrival.at);
    if (update) reactionMs.push(update.at - arrival.at);
    else unmatched++;
  }
  return { reaction: summarize(reactionMs), client: summarize(clientMs), floor: summarize(bareMs), probes: reactionMs.length, unmatched };
}

/**
 * Scenario 2. One push at a time, each to a service whose lane is idle; the
 * server process notes when the request arrived and the fake swarm when
 * `updateService` was called, both on the server's own clock. The same-run
 * baseline is the client round trip of the bare hono route: the floor any
 * request on this machine pays at that moment. Run again with 1,000
 * services on the swarm (`at1000`): webhooks match them from the service
 * index, so the figures should not move.
 */
export const reaction: Scenario = {
  key: "reaction",
  title: "2. reaction time",
  async run(ctx) {
    const probes = ctx.quick ? 60 : 400;
    const m = await measure(ctx, services, probes, "react");
    const big = await measure(ctx, 1000, ctx.quick ? 60 : 300, "react1k");
    const s = m.reaction;
    const floor = m.floor;
    const b = big.reaction;
    return {
      json: {
        p50Ms: round(s.median),
        p99Ms: round(s.p99),
        minMs: round(s.min),
        maxMs: round(s.max),
        probes: m.probes,
        unmatched: m.unmatched,
        clientRoundTrip: roundSummary(m.client),
        baselineRoundTrip: roundSummary(floor),
        at1000: {
          services: 1000,
          p50Ms: round(b.median),
          p99Ms: round(b.p99),
          probes: big.probes,
          unmatched: big.unmatched,
          clientRoundTrip: roundSummary(big.client),
          baselineRoundTrip: roundSummary(big.floor),
        },
      },
      rows: [
        {
          metric: "request → updateService",
          unit: "ms",
          value: s,
          baseline: { label: "bare round trip p50", value: floor.median },
          target: "p50 < 20, p99 < 100",
          ok: s.median < 20 && s.p99 < 100,
        },
        {
          metric: "request → updateService, 1,000 services",
          unit: "ms",
          value: b,
          baseline: { label: `${services} services p50`, value: s.median },
          target: "p50 < 20, p99 < 50",
          ok: b.median < 20 && b.p99 < 50,
        },
        {
          metric: "webhook → 202, 1,000 services",
          unit: "ms",
          value: big.client,
          baseline: { label: "bare round trip p50", value: big.floor.median },
          target: "p50 < 20, p99 < 50",
          ok: big.client.median < 20 && big.client.p99 < 50,
        },
      ],
      notes: [
        ...(m.unmatched ? [`reaction: ${m.unmatched} probes had no update call`] : []),
        ...(big.unmatched ? [`reaction at 1,000 services: ${big.unmatched} probes had no update call`] : []),
      ],
    };
  },
};
