import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type Docker from "dockerode";
import { startCountingProxy } from "../lib/counting-proxy.js";
import { fetchManifest, loadDockerHelpers, putTag, type DockerHelpers } from "../lib/docker-world.js";
import { startEngineProxy } from "../lib/engine-proxy.js";
import { skipped, type Scenario } from "../lib/scenario.js";
import { round, roundSummary, sleep, summarize } from "../lib/stats.js";

const UPDATE = "POST /services/{id}/update";
/** How many services update at once in both runs; the server's bound (DEPLOYER_MAX_ROLLOUTS) is raised to match. */
const rollouts = 100;

/** A task that idles and ends at once on SIGTERM: the rollouts measure the engine and the server, not an app's start. */
const DOCKERFILE = `ARG BASE
FROM \${BASE}
ARG VARIANT=1
ENV VARIANT=\${VARIANT}
CMD ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
`;

interface TaskInfo {
  ServiceID: string;
  DesiredState: string;
  Status: { State: string };
  Spec: { ContainerSpec: { Image: string } };
}

/** Performance time at which every one of `ids` first runs exactly one task on `image`, polling the engine directly. */
async function allConverged(api: Docker, ids: Set<string>, image: (id: string) => string, timeoutMs = 600_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const tasks = (await api.listTasks({ filters: { "desired-state": ["running"] } })) as TaskInfo[];
    const done = new Set<string>();
    const stale = new Set<string>();
    for (const t of tasks) {
      if (!ids.has(t.ServiceID)) continue;
      if (t.Spec.ContainerSpec.Image !== image(t.ServiceID)) stale.add(t.ServiceID);
      else if (t.Status.State === "running") done.add(t.ServiceID);
    }
    if ([...ids].every((id) => done.has(id) && !stale.has(id))) return performance.now();
    await sleep(250);
  }
  throw new Error(`the services did not converge within ${timeoutMs} ms`);
}

/** Runs `work` over `items`, `width` at a time. */
async function inParallel<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function serviceSpec(name: string, image: string, replicas: number, label: string) {
  return {
    Name: name,
    Labels: { "deployer-bench": label },
    TaskTemplate: { ContainerSpec: { Image: image, StopGracePeriod: 2e9 }, RestartPolicy: { Condition: "any" } },
    Mode: { Replicated: { Replicas: replicas } },
    UpdateConfig: { Parallelism: 1, Monitor: 1e9, FailureAction: "pause", Order: "stop-first" },
  };
}

/**
 * Scenario 9. One push matching 100 running services on a real swarm of
 * 1,000 (the other 900 at 0 replicas, each on a tag of its own), the server
 * talking to the engine through a counting proxy on a unix socket and to the
 * registry through a counting HTTP proxy. Measured: the time from the tag's
 * move to the 100th update call, the registry HEADs of the tag, the Engine
 * API requests by path and per second until every deployment ended (the rate
 * judged leaves out each update's two reads and POST, which grow with the push,
 * not with the time its rollouts take), and the time to convergence; beside it, in the same run, 100 parallel
 * `docker service update --detach` of the same change, converged the same
 * way. Then webhook round trips for a push matching one service of the
 * 1,000, beside one `GET /services` (what each webhook cost before the index).
 */
export const fanout: Scenario = {
  key: "fanout",
  title: "9. fan-out, real swarm of 1,000 services",
  async run(ctx) {
    const loaded = await loadDockerHelpers();
    if ("reason" in loaded) return skipped(`needs Docker in swarm mode and docker-registry: ${loaded.reason}`);
    const h: DockerHelpers = loaded.helpers;
    const api = h.createDockerClient();
    const run = h.uniqueName("bench-fan");
    const total = ctx.quick ? 200 : 1000;
    const matched = ctx.quick ? 20 : rollouts;
    const serverPort = await h.freePort();
    const registryPort = await h.freePort();
    // Pushed and pulled through the proxy: the registry's notifications name its host, as the services' images do.
    const regProxy = await startCountingProxy(registryPort);
    ctx.cleanup.add("stop the registry proxy", () => regProxy.close());
    const registry = regProxy.host;
    const token = await ctx.tokens.signWebhookToken({ sub: "bench-registry", repos: [`${registry}/reg/*`] });

    // Images: three variants of one idle task.
    const context = mkdtempSync(join(ctx.tmp, "fan-image-"));
    writeFileSync(join(context, "Dockerfile"), DOCKERFILE);
    ctx.cleanup.add(`remove ${context}`, () => rmSync(context, { recursive: true, force: true }));
    const base = await h.ensureBaseImage();
    const local = (v: number) => `${run}-task:v${v}`;
    for (const v of [1, 2, 3]) {
      ctx.cleanup.add(`remove image ${local(v)}`, () => h.removeImages(local(v)));
      await h.buildImage({ tag: local(v), context, buildArgs: { BASE: base, VARIANT: `${run}-${v}` } });
    }

    const reg = await h.startRegistry({
      port: registryPort,
      notify: { url: `http://127.0.0.1:${serverPort}/hooks/registry`, authorization: `Bearer ${token}` },
    });
    ctx.cleanup.add("stop the registry", () => reg.stop());
    const repo = "reg/fan";
    const digests: string[] = [];
    for (const v of [1, 2, 3]) {
      const target = `${registry}/${repo}:v${v}`;
      await h.docker(["tag", local(v), target]);
      ctx.cleanup.add(`remove image ${target}`, () => h.removeImages(target));
      digests.push(await h.pushImage(target));
    }
    const [d1, d2, d3] = digests as [string, string, string];
    const manifest2 = await fetchManifest(registry, repo, d2);
    await putTag(registry, repo, "live", await fetchManifest(registry, repo, d1));

    const engine = await startEngineProxy(join(ctx.tmp, "engine.sock"));
    ctx.cleanup.add("stop the engine proxy", () => engine.close());
    const dbPath = join(ctx.tmp, "fanout.db");
    const server = await h.startServerUnmanaged(
      {
        DEPLOYER_DB: dbPath,
        DEPLOYER_SECRET: ctx.secret,
        DEPLOYER_INSECURE_REGISTRIES: registry,
        DEPLOYER_POLL: "false",
        DEPLOYER_MAX_ROLLOUTS: String(rollouts),
        DOCKER_HOST: engine.host,
        LOG_LEVEL: "warn",
        TIMEOUT: "600",
      },
      serverPort,
    );
    ctx.cleanup.add("stop the deploy server", () => server.stop());

    // The swarm: `matched` services on live@d1 with one replica, the rest at 0 replicas on a tag each.
    ctx.cleanup.add("remove the bench services", async () => {
      const mine = (await api.listServices({ filters: { label: [`deployer-bench=${run}`] } })) as Array<{ ID: string }>;
      await inParallel(
        mine,
        8,
        async (s) =>
          void (await api
            .getService(s.ID)
            .remove()
            .catch(() => undefined)),
      );
    });
    const ids = new Set<string>();
    const names = Array.from({ length: total }, (_, i) => `${run}-${i}`);
    const t0Create = performance.now();
    await inParallel(names, 8, async (name) => {
      const i = Number(name.slice(run.length + 1));
      const running = i < matched;
      const image = running ? `${registry}/${repo}:live@${d1}` : `${registry}/${repo}:idle-${i}@${d1}`;
      const created = (await api.createService(serviceSpec(name, image, running ? 1 : 0, run))) as { id?: string; ID?: string };
      if (running) ids.add(created.id ?? created.ID!);
    });
    ctx.log(`fanout: ${total} services created in ${Math.round(performance.now() - t0Create)} ms`);
    await allConverged(api, ids, () => `${registry}/${repo}:live@${d1}`);
    await engine.quiet(3000);

    const finals = () => {
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        return db.prepare("select status, count(*) as n from deployments where image like ? group by status").all(`%${repo}:live`) as Array<{
          status: string;
          n: number;
        }>;
      } finally {
        db.close();
      }
    };
    const headsBefore = regProxy.manifestRequests(`HEAD /v2/${repo}/manifests/live`);
    const from = performance.now();
    await putTag(registry, repo, "live", manifest2);
    const converged = await allConverged(api, ids, () => `${registry}/${repo}:live@${d2}`);
    let done = finals();
    const deadline = Date.now() + 600_000;
    while (Date.now() < deadline && done.reduce((n, r) => n + (["succeeded", "failed", "rolled_back"].includes(r.status) ? r.n : 0), 0) < matched) {
      await sleep(250);
      done = finals();
    }
    const finished = performance.now();
    const updates = engine.times(UPDATE, from);
    const during = engine.since(from, finished);
    const registryHeads = regProxy.manifestRequests(`HEAD /v2/${repo}/manifests/live`) - headsBefore;
    const succeeded = done.find((r) => r.status === "succeeded")?.n ?? 0;

    // The same change the bare way: 100 parallel CLI updates to d3, converged as measured above.
    const bareFrom = performance.now();
    await inParallel([...ids], matched, async (id) => {
      await h.docker(["service", "update", "--detach", "--quiet", "--image", `${registry}/${repo}:live@${d3}`, id], { timeoutMs: 300_000 });
    });
    const bareConverged = await allConverged(api, ids, () => `${registry}/${repo}:live@${d3}`);
    await engine.quiet(3000);

    // Webhook round trips with the whole swarm listed by no one: a push matching one 0-replica service each time.
    const probes = ctx.quick ? 20 : 100;
    const hookMs: number[] = [];
    const listMs: number[] = [];
    const hookFrom = performance.now();
    for (let k = 0; k < probes; k++) {
      const i = matched + (k % (total - matched));
      const body = JSON.stringify({
        events: [
          {
            id: `${run}-probe-${k}`,
            action: "push",
            target: {
              mediaType: "application/vnd.docker.distribution.manifest.v2+json",
              digest: d1,
              repository: repo,
              tag: `idle-${i}`,
            },
            request: { host: registry },
          },
        ],
      });
      const t = performance.now();
      const res = await fetch(`${server.url}/hooks/registry`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/vnd.docker.distribution.events.v1+json" },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 202) throw new Error(`probe webhook answered ${res.status}`);
      hookMs.push(performance.now() - t);
      const l = performance.now();
      await api.listServices();
      listMs.push(performance.now() - l);
      await sleep(20);
    }
    const hookEngine = engine.since(hookFrom);
    const hooks = summarize(hookMs);
    const lists = summarize(listMs);
    const allUpdatesMs = updates.length >= matched ? updates[matched - 1]! - from : null;
    const convergedMs = converged - from;
    const bareConvergedMs = bareConverged - bareFrom;
    // The updates themselves grow with the push, not with the time its rollouts take: each is the deployment's read of its
    // service, the update's own read of the whole spec it sends back, and the POST. The rate that must stay flat is the rest,
    // what watching the rollouts and hearing their events costs.
    const inspects = during.byPath["GET /services/{id}"] ?? 0;
    const sent = during.byPath[UPDATE] ?? 0;
    const watching = during.total - sent - Math.min(inspects, 2 * sent);
    const seconds = Math.max((finished - from) / 1000, 0.001);
    const engineRps = watching / seconds;

    return {
      json: {
        services: total,
        matched,
        allUpdatesMs: allUpdatesMs === null ? null : round(allUpdatesMs),
        registryHeads,
        engineRequests: during.byPath,
        engineRps: round(engineRps),
        convergedMs: round(convergedMs),
        bareConvergedMs: round(bareConvergedMs),
        engineRequestsTotal: during.total,
        engineRpsAll: round(during.meanRps),
        engineRpsMax: during.maxRps,
        enginePerSecond: during.perSecond,
        updateCalls: updates.length,
        firstUpdateMs: updates[0] === undefined ? null : round(updates[0] - from),
        allFinalMs: round(finished - from),
        succeeded,
        deploymentsByStatus: Object.fromEntries(done.map((r) => [r.status, r.n])),
        maxRollouts: rollouts,
        webhook: { probes, roundTrip: roundSummary(hooks), engineRequests: hookEngine.byPath, listServicesMs: roundSummary(lists) },
      },
      rows: [
        {
          metric: `push → ${matched} update calls`,
          unit: "ms",
          value: summarize([allUpdatesMs ?? Number.NaN]),
        },
        {
          metric: "registry HEADs of the pushed tag",
          unit: "",
          value: summarize([registryHeads]),
          baseline: { label: "services matched", value: matched },
          target: "1",
          ok: registryHeads === 1,
        },
        {
          metric: `Engine API requests/s watching ${matched} rollouts`,
          unit: "req/s",
          value: summarize([engineRps]),
          baseline: { label: "with the updates' reads and POSTs", value: round(during.meanRps) },
          target: "≤ 5",
          ok: engineRps <= 5,
        },
        {
          metric: `push → ${matched} services converged`,
          unit: "ms",
          value: summarize([convergedMs]),
          baseline: { label: `${matched} parallel docker service update`, value: bareConvergedMs },
          ratio: convergedMs / bareConvergedMs,
        },
        {
          metric: `webhook → 202, ${total} services`,
          unit: "ms",
          value: hooks,
          baseline: { label: "one GET /services", value: lists.median },
          target: "p50 < 20, p99 < 50",
          ok: hooks.median < 20 && hooks.p99 < 50,
        },
        { metric: "deployments succeeded", unit: "", value: summarize([succeeded]), target: String(matched), ok: succeeded === matched },
      ],
    };
  },
};
