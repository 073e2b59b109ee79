import { join } from "node:path";
import { startBaselineChild, startDeployerChild } from "../lib/children.js";
import { benchRegistryHost, loadHooks, pushBody } from "../lib/load.js";
import type { Scenario } from "../lib/scenario.js";
import { sleep, summarize } from "../lib/stats.js";

const burstDigest = `sha256:${"b".repeat(64)}`;
const sameIdDigest = `sha256:${"c".repeat(64)}`;

/**
 * Scenario 3. The same push announced 1,000 times at once. Main case: distinct
 * event ids (a registry that re-sends, or several registries in a mirror
 * chain), which dedupe by event id cannot catch: the lane must see the same
 * digest queued or running and coalesce the later events into it, writing no
 * deployment of their own. Second case:
 * one event id redelivered 1,000 times, which must be a no-op after the first.
 */
export const burst: Scenario = {
  key: "burst",
  title: "3. burst of 1,000",
  async run(ctx) {
    const requests = 1000;
    // One connection per webhook, so all 1,000 are on the wire at once (well within the second), whatever the server's pace.
    const connections = requests;
    const pinned = { [`${benchRegistryHost}/bench/burst:live`]: burstDigest, [`${benchRegistryHost}/bench/burst-same-id:live`]: sameIdDigest };
    const services = [
      { name: "bench-burst", image: `${benchRegistryHost}/bench/burst:live` },
      { name: "bench-burst-same-id", image: `${benchRegistryHost}/bench/burst-same-id:live` },
    ];
    const server = await startDeployerChild(ctx.cleanup, { dbPath: join(ctx.tmp, "burst.db"), secret: ctx.secret, services, pinned });
    const bare = await startBaselineChild(ctx.cleanup);
    const ids = server.extra.serviceIds as Record<string, string>;
    const token = await ctx.tokens.signWebhookToken({ sub: "bench", repos: [`${benchRegistryHost}/bench/*`] });
    const distinct = () => pushBody({ repository: "bench/burst", digest: burstDigest });
    const sameId = pushBody({ id: "bench-burst-one-event", repository: "bench/burst-same-id", digest: sameIdDigest });

    const ours = await loadHooks({ url: server.url, token, body: distinct, connections, amount: requests });
    const base = await loadHooks({ url: bare.url, token, body: distinct, connections, amount: requests });
    const redelivered = await loadHooks({ url: server.url, token, body: () => sameId, connections, amount: requests });
    // Long enough for any second rollout to show: the fake swarm finishes one in well under a second.
    await server.rpc("idle", { timeoutMs: 30_000 }, 40_000);
    await sleep(1000);
    const stats = await server.rpc<{ updates: Array<{ serviceId: string }>; statuses: Array<{ status: string; n: number }> }>("stats");
    const rollouts = stats.updates.filter((u) => u.serviceId === ids["bench-burst"]).length;
    const sameIdRollouts = stats.updates.filter((u) => u.serviceId === ids["bench-burst-same-id"]).length;
    const non2xx = ours.non2xx + ours.errors;
    const rows = stats.statuses.reduce((sum, st) => sum + st.n, 0);
    return {
      json: {
        requests: ours.completed,
        rollouts,
        non2xx,
        p99Ms: ours.p99Ms,
        eventIds: "distinct",
        spanMs: Math.round(ours.durationMs),
        baselineP99Ms: base.p99Ms,
        baselineSpanMs: Math.round(base.durationMs),
        deploymentsByStatus: Object.fromEntries(stats.statuses.map((s) => [s.status, s.n])),
        sameEventId: {
          requests: redelivered.completed,
          rollouts: sameIdRollouts,
          non2xx: redelivered.non2xx + redelivered.errors,
          p99Ms: redelivered.p99Ms,
        },
        connections,
      },
      rows: [
        { metric: "rollouts (distinct event ids)", unit: "", value: summarize([rollouts]), target: "exactly 1", ok: rollouts === 1 },
        {
          metric: "deployment rows (both cases)",
          unit: "",
          value: summarize([rows]),
          target: "exactly 2: the later events are coalesced",
          ok: rows === 2,
        },
        { metric: "non-2xx of 1,000", unit: "", value: summarize([non2xx]), target: "0", ok: non2xx === 0 && ours.completed === requests },
        { metric: "p99 latency", unit: "ms", value: summarize([ours.p99Ms]), baseline: { label: "bare hono", value: base.p99Ms } },
        { metric: "all answered after", unit: "ms", value: summarize([ours.durationMs]), baseline: { label: "bare hono", value: base.durationMs } },
        {
          metric: "rollouts (one event id ×1,000)",
          unit: "",
          value: summarize([sameIdRollouts]),
          target: "exactly 1",
          ok: sameIdRollouts === 1 && redelivered.non2xx === 0,
        },
      ],
    };
  },
};
