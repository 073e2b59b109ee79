import { skipped, type Scenario } from "../../lib/scenario.js";
import { sleep } from "../../lib/stats.js";
import { seeded } from "../lib/hostile-cases.js";
import { buildWorld, dockerHelpersOrReason, outcomeOf, outcomeRows, serverEnv, startServer } from "../lib/world.js";

/**
 * kill -9 at random points during 20 deploys. Each push is a real manifest
 * PUT; the registry notifies the server itself and redelivers what the dead
 * server did not take. After a random delay (so that kills land during
 * ingest, during the update call and while the rollout is followed), the
 * server is killed with SIGKILL and started again on the same database.
 */
export const crash: Scenario = {
  key: "crash",
  title: "2. kill -9 during deploys",
  async run(ctx) {
    const h = await dockerHelpersOrReason();
    if (typeof h === "string") return skipped(`needs Docker in swarm mode and docker-registry: ${h}`);
    const world = await buildWorld(ctx, h, { name: "fault-crash" });
    const env = serverEnv(ctx, world);
    let server = await startServer(ctx, world, env);
    const rng = seeded(Number(process.env.FAULTS_SEED ?? 20261201) + 2);
    const rounds = ctx.quick ? 6 : 20;
    const pushed: string[] = [];
    let kills = 0;
    for (let i = 1; i <= rounds; i++) {
      pushed.push(await world.pushVariant(i));
      await sleep(rng.int(2500));
      if (rng.next() < 0.7) {
        server.child.kill("SIGKILL");
        await new Promise((r) => (server.child.exitCode !== null || server.child.signalCode !== null ? r(null) : server.child.once("exit", r)));
        kills++;
        server = await startServer(ctx, world, env);
      }
      ctx.log(`crash: push ${i}/${rounds}, ${kills} kills`);
    }
    const outcome = await outcomeOf(world, pushed, pushed.at(-1)!);
    return { json: { rounds, kills, ...outcome }, rows: outcomeRows(outcome) };
  },
};
