import { describe, expect, it, onTestFinished } from "vitest";
import { SwarmConflictError, SwarmUnavailableError } from "../../server/engine/swarm-port.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import { runSwarmContract } from "./swarm-contract.js";

runSwarmContract("FakeSwarm", async () => {
  const fake = new FakeSwarm();
  const images = { good: "contract/app:good", good2: "contract/app:good2", failing: "contract/app:failing" };
  fake.failImage(images.failing, "task: non-zero exit (1)");
  // Built in this order by the Docker harness, so created in this order.
  Object.values(images).forEach((reference, n) =>
    fake.addImage({ id: `sha256:${String(n + 1).repeat(64)}`, references: [reference], created: 1_700_000_000 + n }),
  );
  return {
    swarm: fake,
    images,
    imageRepository: "contract/app",
    async tagImage(existing, reference) {
      fake.tagImage(existing, reference);
    },
    async createService(opts) {
      // The same RollbackConfig the Docker harness gives its services.
      return fake.addService({ ...opts, rollbackPolicy: { parallelism: 1, failureAction: "pause", monitorMs: 1000 } }).id;
    },
    async removeService(id) {
      fake.removeService(id);
    },
    // Each poll moves the simulated rollouts one step, so no test sleeps.
    async waitFor(check, what) {
      for (let i = 0; i < 30; i++) {
        const value = await check();
        if (value !== undefined && value !== false) return value;
        await fake.tick();
        // A turn for the event stream, which delivers on a later one.
        await new Promise((resolve) => setImmediate(resolve));
      }
      throw new Error(`FakeSwarm: 30 ticks passed without ${what}`);
    },
  };
});

describe("FakeSwarm test controls", () => {
  it("records every call with its arguments, in order", async () => {
    const fake = new FakeSwarm();
    const { id, version } = fake.addService({ name: "web", image: "web:1" });
    await fake.findService("web");
    await fake.updateService(id, version, { image: "web:2", registryAuth: "abc" });
    expect(fake.calls).toEqual([
      { method: "findService", args: ["web"] },
      { method: "updateService", args: [id, version, { image: "web:2", registryAuth: "abc" }] },
    ]);
    expect(fake.callsOf("updateService")).toHaveLength(1);
  });

  it("setUnavailable makes every call throw SwarmUnavailableError until it is cleared", async () => {
    const fake = new FakeSwarm();
    const { id, version } = fake.addService({ name: "web", image: "web:1" });
    fake.setUnavailable(true);
    await expect(fake.ping()).rejects.toBeInstanceOf(SwarmUnavailableError);
    await expect(fake.listServices()).rejects.toBeInstanceOf(SwarmUnavailableError);
    await expect(fake.findService(id)).rejects.toBeInstanceOf(SwarmUnavailableError);
    await expect(fake.updateService(id, version, { image: "web:2" })).rejects.toBeInstanceOf(SwarmUnavailableError);
    await expect(fake.rollbackService(id, version)).rejects.toBeInstanceOf(SwarmUnavailableError);
    await expect(fake.listTasks(id)).rejects.toBeInstanceOf(SwarmUnavailableError);
    fake.setUnavailable(false);
    expect((await fake.findService(id))?.image).toBe("web:1");
  });

  it("conflictOnce fails the next update like a lost race, and a re-read version then succeeds", async () => {
    const fake = new FakeSwarm();
    const { id, version } = fake.addService({ name: "web", image: "web:1" });
    fake.conflictOnce("web");
    await expect(fake.updateService(id, version, { image: "web:2" })).rejects.toBeInstanceOf(SwarmConflictError);
    const reread = await fake.findService(id);
    expect(reread?.version).toBeGreaterThan(version);
    await expect(fake.updateService(id, version, { image: "web:2" })).rejects.toBeInstanceOf(SwarmConflictError);
    await fake.updateService(id, reread!.version, { image: "web:2" });
    expect((await fake.findService(id))?.image).toBe("web:2");
  });

  it("starts no rollout for an update that changes no task, as swarm does", async () => {
    const fake = new FakeSwarm();
    const { id, version } = fake.addService({ name: "web", image: "web:1" });
    await fake.updateService(id, version, { image: "web:1" });
    await fake.settle();
    const service = await fake.findService(id);
    expect(service?.updateStatus).toBeUndefined();
    expect(service?.previousImage).toBe("web:1");
  });

  it("keeps a failing slot failed while paused, and runs a global service's task per node", async () => {
    const fake = new FakeSwarm();
    fake.failImage("web:bad", "starting container failed: boom");
    const web = fake.addService({ name: "web", image: "web:1", replicas: 3 });
    const agent = fake.addService({ name: "agent", image: "agent:1", mode: "global" });
    await fake.updateService(web.id, web.version, { image: "web:bad" });
    await fake.settle();
    const tasks = await fake.listTasks(web.id);
    const current = tasks.filter((t) => t.desiredState === "running");
    // Parallelism 1: the first failed task pauses the update; the other slots keep the old image.
    expect(current.map((t) => t.image)).toEqual(["web:1", "web:1"]);
    expect(tasks[0]).toMatchObject({ image: "web:bad", state: "failed", error: "starting container failed: boom" });
    expect((await fake.findService("agent"))?.replicas).toBeUndefined();
    expect((await fake.listTasks(agent.id)).map((t) => t.slot)).toEqual([undefined]);
  });

  it("on a clock, takes one rollout step per stepMs of its time, and a tick is that much time", async () => {
    const clock = new FakeClock();
    const fake = new FakeSwarm({ clock, stepMs: 10 });
    onTestFinished(() => fake.stop());
    const { id, version } = fake.addService({ name: "web", image: "web:1" });
    clock.advance(1_000);
    await fake.updateService(id, version, { image: "web:2" });
    const state = async () => (await fake.findService(id))?.updateStatus?.state;
    clock.advance(9);
    expect(await state(), "no step before stepMs has passed").toBeUndefined();
    clock.advance(1);
    expect(await state()).toBe("updating");
    const started = clock.now();
    await fake.tick();
    expect(clock.now() - started).toBe(10);
    const [newest] = await fake.listTasks(id);
    expect(newest?.image).toBe("web:2");
    // The clock's time, give or take the millisecond that keeps task timestamps apart.
    expect(Math.abs(Date.parse(newest!.timestamp) - clock.now())).toBeLessThan(5);
    clock.advance(10);
    expect(await state()).toBe("completed");
  });

  it("advances rollouts on its own with autoTickMs", async () => {
    const fake = new FakeSwarm({ autoTickMs: 2 });
    onTestFinished(() => fake.stop());
    const { id, version } = fake.addService({ name: "web", image: "web:1" });
    await fake.updateService(id, version, { image: "web:2" });
    for (let i = 0; i < 100 && (await fake.findService(id))?.updateStatus?.state !== "completed"; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect((await fake.findService(id))?.updateStatus?.state).toBe("completed");
  });
});
