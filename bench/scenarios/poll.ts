import { join } from "node:path";
import { Writable } from "node:stream";
import { composeServer } from "../../server/compose.js";
import { loadConfig } from "../../server/config/config.js";
import { createDockerClient } from "../../server/engine/docker-client.js";
import { createDockerodeSwarm } from "../../server/engine/dockerode-swarm.js";
import { createLogger } from "../../server/logger.js";
import { createRegistryClient } from "../../server/registry/registry-client.js";
import { openDatabase } from "../../server/store/database.js";
import { countsSince, startCountingProxy, type RegistryCounts } from "../lib/counting-proxy.js";
import { buildApp, loadDockerHelpers, publish, waitConverged } from "../lib/docker-world.js";
import { skipped, type Scenario } from "../lib/scenario.js";
import { round, roundSummary, summarize } from "../lib/stats.js";

const images = 5;
const services = 20;

/**
 * Scenario 5. One poll cycle over 20 services that share 5 images, nothing
 * changed since the last cycle (the common case), on a real registry behind a
 * counting proxy:
 *  - ours: the server's poller, `runOnce()`, with the real registry client and engine;
 *  - Shepherd's way, on the same services in the same run: for each service
 *    `docker service update --detach=false --image repo:tag` (Shepherd also
 *    runs `docker manifest inspect` first, one more GET each, left out here).
 */
export const poll: Scenario = {
  key: "poll",
  title: "5. poll cycle",
  async run(ctx) {
    const loaded = await loadDockerHelpers();
    if ("reason" in loaded) return skipped(`needs Docker in swarm mode and docker-registry: ${loaded.reason}`);
    const h = loaded.helpers;
    const id = h.uniqueName("bench-poll");
    const reg = await h.startRegistry();
    ctx.cleanup.add(`stop registry ${reg.host}`, () => reg.stop());
    const proxy = await startCountingProxy(reg.port);
    ctx.cleanup.add("stop the counting proxy", async () => (proxy.closeAll(), proxy.close()));

    await buildApp(h, ctx.cleanup, `${id}-app:v1`, "v1");
    const refs: string[] = [];
    const pinned: string[] = [];
    for (let i = 0; i < images; i++) {
      refs.push(`${proxy.host}/poll/img-${i}:live`);
      pinned.push(`${refs[i]}@${await publish(h, ctx.cleanup, `${id}-app:v1`, refs[i]!)}`);
    }
    const api = h.createDockerClient();
    const names = Array.from({ length: services }, (_, i) => `${id}-${i}`);
    for (const [i, name] of names.entries()) {
      ctx.cleanup.add(`remove service ${name}`, () => h.removeService(name));
      // Pinned, as after an earlier deployment: the steady state a cycle usually finds. No health check: 20 probes a second would load the machine.
      await h.createTestService({
        name,
        image: pinned[i % images]!,
        labels: { "bench.poll": id },
        healthcheck: { test: ["NONE"] },
        updateConfig: { parallelism: 1, monitorMs: 1000, failureAction: "pause" },
      });
    }
    for (const [i, name] of names.entries()) await waitConverged(api, name, pinned[i % images]!, 1);

    const sink = new Writable({ write: (_c, _e, done) => done() });
    const config = loadConfig({
      DEPLOYER_DB: join(ctx.tmp, "poll.db"),
      DEPLOYER_SECRET: ctx.secret,
      DEPLOYER_INSECURE_REGISTRIES: proxy.host,
      FILTER_SERVICES: `label=bench.poll=${id}`,
      LOG_LEVEL: "warn",
    });
    const database = openDatabase(config.store.dbPath);
    ctx.cleanup.add("close the poll database", () => database.close());
    const registry = createRegistryClient({ insecureRegistries: config.registry.insecure, credentialsFor: () => undefined });
    const server = composeServer({
      config,
      secret: ctx.secret,
      db: database.db,
      sqlite: database.sqlite,
      swarm: createDockerodeSwarm(createDockerClient()),
      registry,
      log: createLogger("warn", sink),
    });
    ctx.cleanup.add("stop the deployer", () => server.deployer.stop());
    const poller = (server as { poller?: { runOnce?: () => Promise<{ services: number; deployments: string[] }> } }).poller;
    if (typeof poller?.runOnce !== "function") return skipped("the server exposes no poller.runOnce() yet (composeServer(...).poller)");

    const cycles = ctx.quick ? 2 : 5;
    const ours: Array<{ ms: number; counts: RegistryCounts; deployments: number; services: number }> = [];
    await poller.runOnce();
    for (let c = 0; c < cycles; c++) {
      const before = proxy.snapshot();
      const t0 = performance.now();
      const result = await poller.runOnce();
      ours.push({
        ms: performance.now() - t0,
        counts: countsSince(before, proxy.snapshot()),
        deployments: result.deployments.length,
        services: result.services,
      });
    }
    const shepherdCycles = ctx.quick ? 1 : 2;
    const theirs: Array<{ ms: number; counts: RegistryCounts }> = [];
    for (let c = 0; c < shepherdCycles; c++) {
      const before = proxy.snapshot();
      const t0 = performance.now();
      for (const [i, name] of names.entries()) {
        await h.docker(["service", "update", "--detach=false", "--quiet", "--image", refs[i % images]!, name], { timeoutMs: 120_000 });
      }
      theirs.push({ ms: performance.now() - t0, counts: countsSince(before, proxy.snapshot()) });
      ctx.log(`poll: Shepherd cycle ${c + 1}/${shepherdCycles} took ${Math.round(theirs.at(-1)!.ms)} ms`);
    }

    const cycle = summarize(ours.map((o) => o.ms));
    const shepherd = summarize(theirs.map((t) => t.ms));
    const last = ours.at(-1)!.counts;
    const shepherdLast = theirs.at(-1)!.counts;
    const deployed = ours.reduce((n, o) => n + o.deployments, 0);
    return {
      json: {
        services,
        servicesListed: ours.at(-1)!.services,
        images,
        head: last.manifestHead,
        get: last.manifestGet,
        cycleMs: round(cycle.median),
        shepherdCycleMs: round(shepherd.median),
        cycleRuns: roundSummary(cycle),
        shepherdRuns: roundSummary(shepherd),
        shepherdHead: shepherdLast.manifestHead,
        shepherdGet: shepherdLast.manifestGet,
        shepherdOther: shepherdLast.other,
        deploymentsQueued: deployed,
        registryClientCount: registry.requestCount(),
      },
      rows: [
        {
          metric: "registry HEAD per cycle",
          unit: "",
          value: summarize(ours.map((o) => o.counts.manifestHead)),
          baseline: { label: "Shepherd", value: shepherdLast.manifestHead },
          target: "5",
          ok: ours.every((o) => o.counts.manifestHead === images),
        },
        {
          metric: "registry GET per cycle",
          unit: "",
          value: summarize(ours.map((o) => o.counts.manifestGet)),
          baseline: { label: "Shepherd", value: shepherdLast.manifestGet },
          target: "0",
          ok: ours.every((o) => o.counts.manifestGet === 0),
        },
        {
          metric: "cycle time",
          unit: "ms",
          value: cycle,
          baseline: { label: "Shepherd", value: shepherd.median },
          ratio: cycle.median / shepherd.median,
        },
      ],
      notes: deployed ? [`poll: the steady-state cycles queued ${deployed} deployments; expected none`] : [],
    };
  },
};
