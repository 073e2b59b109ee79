import { join } from "node:path";
import { startBaselineChild, startDeployerChild } from "../lib/children.js";
import { benchRegistryHost, digestOf, pushBody } from "../lib/load.js";
import type { Scenario } from "../lib/scenario.js";
import { round, roundSummary, sleep, summarize } from "../lib/stats.js";
import { benchServices } from "./ingest.js";

const services = 100;

interface ChildStats {
  updates: Array<{ serviceId: string; at: number }>;
  arrivals: Array<{ probe: string; at: number }>;
}

/**
 * Scenario 2. One push at a time, each to a service whose lane is idle; the
 * server process notes when the request arrived and the fake swarm when
 * `updateService` was called, both on the server's own clock. The same-run
 * baseline is the client round trip of the bare hono route: the floor any
 * request on this machine pays at that moment.
 */
export const reaction: Scenario = {
  key: "reaction",
  title: "2. reaction time",
  async run(ctx) {
    const server = await startDeployerChild(ctx.cleanup, {
      dbPath: join(ctx.tmp, "reaction.db"),
      secret: ctx.secret,
      services: benchServices(services, "react"),
      probes: true,
    });
    const bare = await startBaselineChild(ctx.cleanup);
    const serviceIds = server.extra.serviceIds as Record<string, string>;
    const token = await ctx.tokens.signWebhookToken({ sub: "bench", repos: [`${benchRegistryHost}/bench/*`] });
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/vnd.docker.distribution.events.v1+json" };
    const probes = ctx.quick ? 60 : 400;
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
      await post(server.url, pushBody({ repository: `bench/react-${i % services}`, digest: digestOf(i, "a") }));
      await post(bare.url, "{}");
    }
    await server.rpc("idle", { timeoutMs: 10_000 });
    await sleep(300);
    await server.rpc("reset");

    const deadline = Date.now() + 120_000;
    for (let k = 0; k < probes && Date.now() < deadline; k++) {
      const body = pushBody({ repository: `bench/react-${k % services}`, digest: digestOf(k, "b") });
      clientMs.push(await post(server.url, body, { "x-bench-probe": String(k) }));
      bareMs.push(await post(bare.url, body));
      // A gap lets the update call land before the next probe; each service comes round every `services` probes.
      await sleep(15);
    }
    await server.rpc("idle", { timeoutMs: 30_000 }, 40_000);
    const stats = await server.rpc<ChildStats>("stats");

    const reactionMs: number[] = [];
    let unmatched = 0;
    for (const arrival of stats.arrivals) {
      const id = serviceIds[`bench-react-${Number(arrival.probe) % services}`];
      const update = stats.updates.find((u) => u.serviceId === id && u.at >= arrival.at);
      if (update) reactionMs.push(update.at - arrival.at);
      else unmatched++;
    }
    const s = summarize(reactionMs);
    const floor = summarize(bareMs);
    return {
      json: {
        p50Ms: round(s.median),
        p99Ms: round(s.p99),
        minMs: round(s.min),
        maxMs: round(s.max),
        probes: reactionMs.length,
        unmatched,
        clientRoundTrip: roundSummary(summarize(clientMs)),
        baselineRoundTrip: roundSummary(floor),
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
      ],
      notes: unmatched ? [`reaction: ${unmatched} probes had no update call`] : [],
    };
  },
};
