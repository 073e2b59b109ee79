import { randomBytes } from "node:crypto";
import { createDockerClient, createDockerodeSwarm } from "../../server/engine/dockerode-swarm.js";
import { createTestService, describeDocker, removeService, waitFor } from "../helpers/docker-env.js";
import { buildImage, ensureBaseImage, removeImages } from "../helpers/images.js";
import { runSwarmContract } from "./swarm-contract.js";

const CONTEXT = new URL("../fixtures/contract/", import.meta.url).pathname;

describeDocker("dockerode swarm on a real engine", () => {
  runSwarmContract("createDockerodeSwarm", async () => {
    // Plain local tags: images are node-local, which is all a one-node swarm needs.
    const run = randomBytes(3).toString("hex");
    const images = {
      good: `deployer-contract:good-${run}`,
      good2: `deployer-contract:good2-${run}`,
      failing: `deployer-contract:failing-${run}`,
    };
    const base = await ensureBaseImage();
    const build = (tag: string, behaviour: string, variant: string) =>
      buildImage({ tag, context: CONTEXT, buildArgs: { BASE: base, BEHAVIOUR: behaviour, VARIANT: variant } });
    await build(images.good, "serve", `good-${run}`);
    await build(images.good2, "serve", `good2-${run}`);
    await build(images.failing, "fail", `failing-${run}`);

    return {
      swarm: createDockerodeSwarm(createDockerClient()),
      images,
      createService: (opts) =>
        createTestService({
          name: opts.name,
          image: opts.image,
          replicas: opts.replicas,
          labels: opts.labels,
          updateConfig: { parallelism: 1, failureAction: opts.failureAction, monitorMs: opts.monitorMs },
          // A short rollback monitor too: swarm watches rolled-back tasks with RollbackConfig (default 5 s).
          rollbackConfig: { parallelism: 1, failureAction: "pause", monitorMs: opts.monitorMs ?? 1000 },
          stopGracePeriodMs: 2000,
        }),
      removeService,
      waitFor: (check, what) => waitFor(check, { timeoutMs: 45_000, intervalMs: 200, what }),
      teardown: () => removeImages(images.good, images.good2, images.failing),
    };
  });
});

describeDocker("createDockerodeSwarm against the engine's own conflict check", () => {
  it("maps the daemon's 'update out of sequence' to SwarmConflictError", async () => {
    const docker = createDockerClient();
    const name = `contract-${randomBytes(4).toString("hex")}`;
    const base = await ensureBaseImage();
    const id = await createTestService({ name, image: base, command: ["sleep", "600"], stopGracePeriodMs: 1000 });
    onTestFinished(() => removeService(id));
    const snapshot = (await docker.getService(id).inspect()) as { Version: { Index: number } };
    await createDockerodeSwarm(docker).updateService(id, snapshot.Version.Index, { image: `${base}-x`.replace(/-x$/, ""), force: true });
    // A client whose inspect still returns the old snapshot passes our own
    // version check, so the stale version reaches the daemon, as in a real race.
    const stale = Object.create(docker) as Docker;
    stale.getService = (serviceId: string) => Object.assign(docker.getService(serviceId), { inspect: async () => snapshot });
    const err = await createDockerodeSwarm(stale)
      .updateService(id, snapshot.Version.Index, { image: base, force: true })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmConflictError);
    expect((err as Error).message).toContain("update out of sequence");
  });
});
