import Database from "better-sqlite3";
import { join } from "node:path";
import { parseSleepTime } from "../../server/config/fields.js";
import {
  buildApp,
  fetchManifest,
  loadDockerHelpers,
  publish,
  putTag,
  waitConverged,
  waitUpdateSettled,
  watchServiceUpdates,
} from "../lib/docker-world.js";
import { skipped, type Scenario } from "../lib/scenario.js";
import { round, roundSummary, sleep, summarize } from "../lib/stats.js";

const replicas = 2;

/**
 * Scenario 6. The same change (2 replicas from v1 to v2, pinned by digest)
 * made two ways on the real swarm, runs alternated:
 *  - push: the manifest PUT of v2 under the service's tag; the registry
 *    notifies the server (its own process), which resolves the tag with one
 *    HEAD and updates the service;
 *  - bare: `docker service update --detach --image repo:tag@digest`.
 * Both clocks stop when the engine first shows every replica running v2;
 * the engine's update event splits each run into the part before the update
 * call and swarm's rollout after it. The service has no health check, so the
 * rollout's jitter (health-check intervals, ±1 s a replica) does not swamp
 * the difference. Between runs the service is put back on v1, untimed.
 * Each bare run is also drift to the server: the time from the engine's
 * update event to the server's `external` record of it is the drift figure.
 */
export const e2e: Scenario = {
  key: "e2e",
  title: "6. end to end, real swarm",
  async run(ctx) {
    const loaded = await loadDockerHelpers();
    if ("reason" in loaded) return skipped(`needs Docker in swarm mode and docker-registry: ${loaded.reason}`);
    const h = loaded.helpers;
    const api = h.createDockerClient();
    const id = h.uniqueName("bench-e2e");
    const serverPort = await h.freePort();
    const registryPort = await h.freePort();
    const registry = `127.0.0.1:${registryPort}`;
    const repo = "reg/bench";
    const token = await ctx.tokens.signWebhookToken({ sub: "bench-registry", repos: [`${registry}/reg/*`] });

    await buildApp(h, ctx.cleanup, `${id}-app:v1`, "v1");
    await buildApp(h, ctx.cleanup, `${id}-app:v2`, "v2");
    const reg = await h.startRegistry({
      port: registryPort,
      notify: { url: `http://127.0.0.1:${serverPort}/hooks/registry`, authorization: `Bearer ${token}` },
    });
    ctx.cleanup.add(`stop registry ${registry}`, () => reg.stop());
    const dbPath = join(ctx.tmp, "e2e.db");
    const server = await h.startServerUnmanaged(
      {
        DEPLOYER_DB: dbPath,
        DEPLOYER_SECRET: ctx.secret,
        DEPLOYER_INSECURE_REGISTRIES: registry,
        DEPLOYER_POLL: "false",
        LOG_LEVEL: "warn",
        TIMEOUT: "120",
      },
      serverPort,
    );
    ctx.cleanup.add("stop the deploy server", () => server.stop());

    const d1 = await publish(h, ctx.cleanup, `${id}-app:v1`, `${registry}/${repo}:v1`);
    const d2 = await publish(h, ctx.cleanup, `${id}-app:v2`, `${registry}/${repo}:v2`);
    const m1 = await fetchManifest(registry, repo, d1);
    const m2 = await fetchManifest(registry, repo, d2);
    const image1 = `${registry}/${repo}:live@${d1}`;
    const image2 = `${registry}/${repo}:live@${d2}`;
    await putTag(registry, repo, "live", m1);

    const name = id;
    ctx.cleanup.add(`remove service ${name}`, () => h.removeService(name));
    await h.createTestService({
      name,
      image: image1,
      replicas,
      healthcheck: { test: ["NONE"] },
      updateConfig: { parallelism: 1, monitorMs: 1000, failureAction: "pause", order: "stop-first" },
    });
    await waitConverged(api, name, image1, replicas);
    await waitUpdateSettled(api, name);
    const updates = await watchServiceUpdates(api, name);
    ctx.cleanup.add("close the engine event stream", () => updates.close());

    const latest = () => {
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        return db
          .prepare(
            "select id, status, created_at as createdAt, finished_at as finishedAt from deployments where service = ? order by id desc limit 1",
          )
          .get(name) as { id: string; status: string; createdAt: number; finishedAt: number | null } | undefined;
      } finally {
        db.close();
      }
    };
    /** When the server recorded the first `external` deployment of the service at or after `epoch` (its drift watch). */
    const externalRecordedAfter = async (epoch: number): Promise<number> => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const db = new Database(dbPath, { readonly: true, fileMustExist: true });
        try {
          const row = db
            .prepare(
              "select created_at as createdAt from deployments where service = ? and trigger = 'external' and created_at >= ? order by created_at limit 1",
            )
            .get(name, epoch) as { createdAt: number } | undefined;
          if (row) return row.createdAt;
        } finally {
          db.close();
        }
        if (Date.now() > deadline) throw new Error("the hand-made update was not recorded as external within 30 s");
        await sleep(20);
      }
    };
    const backToV1 = async () => {
      await h.docker(["service", "update", "--detach=false", "--quiet", "--image", image1, name], { timeoutMs: 180_000 });
      await waitConverged(api, name, image1, replicas);
      await waitUpdateSettled(api, name);
    };

    const viaServer = async () => {
      const before = latest()?.id;
      const epoch = Date.now();
      const t0 = performance.now();
      await putTag(registry, repo, "live", m2);
      const t1 = await waitConverged(api, name, image2, replicas);
      const applied = await updates.firstAfter(epoch);
      const deadline = Date.now() + 120_000;
      let dep = latest();
      while (Date.now() < deadline && (!dep || dep.id === before || ["queued", "running"].includes(dep.status))) {
        await sleep(100);
        dep = latest();
      }
      if (dep?.status !== "succeeded") throw new Error(`the server's deployment ended ${dep?.status ?? "missing"}`);
      await waitUpdateSettled(api, name);
      return { total: t1 - t0, toUpdate: applied - epoch };
    };
    const bare = async () => {
      const epoch = Date.now();
      const t0 = performance.now();
      const cli = h.docker(["service", "update", "--detach", "--quiet", "--image", image2, name], { timeoutMs: 180_000 });
      const t1 = await waitConverged(api, name, image2, replicas);
      const applied = await updates.firstAfter(epoch);
      await cli;
      const recorded = await externalRecordedAfter(epoch);
      await waitUpdateSettled(api, name);
      return { total: t1 - t0, toUpdate: applied - epoch, drift: recorded - applied };
    };

    const pairs = ctx.quick ? 2 : 5;
    const serverRuns: Array<{ total: number; toUpdate: number }> = [];
    const bareRuns: Array<{ total: number; toUpdate: number; drift: number }> = [];
    for (let i = 0; i < pairs; i++) {
      for (const way of i % 2 === 0 ? ["server", "bare"] : ["bare", "server"]) {
        if (way === "server") serverRuns.push(await viaServer());
        else bareRuns.push(await bare());
        await backToV1();
      }
      const [sv, bv] = [serverRuns.at(-1)!, bareRuns.at(-1)!];
      ctx.log(
        `e2e pair ${i + 1}/${pairs}: server ${Math.round(sv.total)} ms (update after ${Math.round(sv.toUpdate)}), bare ${Math.round(bv.total)} ms (update after ${Math.round(bv.toUpdate)})`,
      );
    }

    const s = summarize(serverRuns.map((r) => r.total));
    const b = summarize(bareRuns.map((r) => r.total));
    const sUpdate = summarize(serverRuns.map((r) => r.toUpdate));
    const bUpdate = summarize(bareRuns.map((r) => r.toUpdate));
    const sRollout = summarize(serverRuns.map((r) => r.total - r.toUpdate));
    const bRollout = summarize(bareRuns.map((r) => r.total - r.toUpdate));
    const drift = summarize(bareRuns.map((r) => r.drift));
    const ratio = s.median / b.median;
    const sleepMs = parseSleepTime("5m")!;
    const shepherdMs = sleepMs / 2 + b.median;
    return {
      json: {
        serverMs: round(s.median),
        bareMs: round(b.median),
        ratio: round(ratio),
        serverRuns: roundSummary(s),
        bareRuns: roundSummary(b),
        serverToUpdateMs: roundSummary(sUpdate),
        bareToUpdateMs: roundSummary(bUpdate),
        serverRolloutMs: roundSummary(sRollout),
        bareRolloutMs: roundSummary(bRollout),
        driftRecordedMs: roundSummary(drift),
        healthcheck: "none",
        replicas,
        pairs,
        shepherdSleepTimeMs: sleepMs,
        shepherdExpectedDetectionMs: sleepMs / 2,
        shepherdExpectedMs: round(shepherdMs),
        dockerVersion: (await api.version()).Version,
      },
      rows: [
        {
          metric: "push → all replicas on digest",
          unit: "ms",
          value: s,
          baseline: { label: "bare service update", value: b.median },
          ratio,
          target: "≤ 1.10×",
          ok: ratio <= 1.1,
        },
        { metric: "bare docker service update", unit: "ms", value: b },
        {
          metric: "hand-made update applied → recorded as external (drift)",
          unit: "ms",
          value: drift,
          target: "every run ≤ 1000 ms",
          ok: drift.max <= 1000,
        },
        { metric: "push → update applied", unit: "ms", value: sUpdate, baseline: { label: "bare: CLI → update applied", value: bUpdate.median } },
        {
          metric: "update applied → replicas on digest",
          unit: "ms",
          value: sRollout,
          baseline: { label: "bare", value: bRollout.median },
          ratio: sRollout.median / bRollout.median,
        },
        {
          metric: "Shepherd, SLEEP_TIME 5m (expected)",
          unit: "ms",
          value: summarize([shepherdMs]),
          baseline: { label: "push", value: s.median },
          ratio: shepherdMs / s.median,
        },
      ],
    };
  },
};
