import { skipped, type Scenario } from "../../lib/scenario.js";
import { summarize } from "../../lib/stats.js";
import { buildWorld, dockerHelpersOrReason, outcomeOf, outcomeRows, readDb, serverEnv, startServer } from "../lib/world.js";

/**
 * Five digests pushed to one tag at once (five manifest PUTs in parallel;
 * the registry notifies each). Whichever PUT the registry stored last is
 * what the tag names at the end, and the service must end on it, with the
 * others superseded rather than rolled out one after the other.
 */
export const concurrent: Scenario = {
  key: "concurrent",
  title: "6. five digests pushed at once",
  async run(ctx) {
    const h = await dockerHelpersOrReason();
    if (typeof h === "string") return skipped(`needs Docker in swarm mode and docker-registry: ${h}`);
    const world = await buildWorld(ctx, h, { name: "fault-concurrent" });
    await startServer(ctx, world, serverEnv(ctx, world));
    const pushed = await Promise.all([1, 2, 3, 4, 5].map((n) => world.pushVariant(n)));
    const head = await fetch(`http://${world.registry.host}/v2/${world.repo}/manifests/live`, {
      method: "HEAD",
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    const tagged = head.headers.get("docker-content-digest")!;
    const outcome = await outcomeOf(world, pushed, tagged);
    const facts = readDb(world.dbPath, world.service);
    const rows = outcomeRows(outcome);
    rows.push({ metric: "deployments (one per push)", unit: "", value: summarize([facts.deployments]) });
    return { json: { pushed: pushed.length, ...outcome }, rows };
  },
};
