/** The bound on rollouts at once (DEPLOYER_MAX_ROLLOUTS): first come first served, and back under the bound after a restart. */
import { describe, expect, it } from "vitest";
import { createRolloutSlots } from "../../server/engine/rollout-slots.js";

/** Deployments by id as the slots read them: `resumed` ones had their update sent before a restart. */
function store(resumed: string[] = []) {
  const events: Array<[string, string]> = [];
  return {
    events,
    addEvent: (id: string, message: string) => void events.push([id, message]),
    findDeployment: (id: string) =>
      ({ id, status: resumed.includes(id) ? "running" : "queued", updateSentAt: resumed.includes(id) ? 1 : null }) as never,
  };
}

const turn = () => new Promise((r) => setImmediate(r));

describe("the rollout slots", () => {
  it("hands a freed slot to the first in line, and says why a deployment waits", async () => {
    const s = store();
    const slots = createRolloutSlots({ max: 1, store: s });
    const first = await slots.acquire("d1");
    const got: string[] = [];
    void slots.acquire("d2").then(() => got.push("d2"));
    void slots.acquire("d3").then(() => got.push("d3"));
    await turn();
    expect(slots.state()).toEqual({ running: 1, max: 1, waiting: ["d2", "d3"] });
    expect(s.events.map(([id]) => id)).toEqual(["d2", "d3"]);
    expect(s.events[1]![1]).toContain("1 ahead of it");
    first();
    first(); // a release counts once
    await turn();
    expect(got).toEqual(["d2"]);
    expect(slots.state()).toEqual({ running: 1, max: 1, waiting: ["d3"] });
  });

  it("lets resumed rollouts run over the bound, and passes no slot on until the count is back under it", async () => {
    const slots = createRolloutSlots({ max: 1, store: store(["r1", "r2"]) });
    const r1 = await slots.acquire("r1");
    const r2 = await slots.acquire("r2");
    expect(slots.state().running, "resumed: already rolling on the swarm").toBe(2);
    const got: string[] = [];
    void slots.acquire("d1").then(() => got.push("d1"));
    await turn();
    r1();
    await turn();
    expect(got, "one rollout still under way: the bound is full").toEqual([]);
    expect(slots.state()).toEqual({ running: 1, max: 1, waiting: ["d1"] });
    r2();
    await turn();
    expect(got).toEqual(["d1"]);
    expect(slots.state()).toEqual({ running: 1, max: 1, waiting: [] });
  });

  it("lends a waiting deployment's slot to the next in line, which it then queues behind to take one again", async () => {
    const s = store();
    const slots = createRolloutSlots({ max: 1, store: s });
    const release1 = await slots.acquire("d1");
    const got: string[] = [];
    const d2 = slots.acquire("d2").then((release) => (got.push("d2"), release));
    await turn();
    let endWait!: () => void;
    const lent = slots.lend("d1", () => new Promise<string>((resolve) => (endWait = () => resolve("waited"))));
    await turn();
    expect(got, "d2 rolls while d1 only waits").toEqual(["d2"]);
    expect(slots.state()).toEqual({ running: 1, max: 1, waiting: [] });
    endWait();
    await turn();
    expect(slots.state(), "d1 queues for a slot again").toEqual({ running: 1, max: 1, waiting: ["d1"] });
    expect(s.events.at(-1)).toEqual(["d1", "waiting for a rollout slot: 1 rollouts under way, at most 1 at once (DEPLOYER_MAX_ROLLOUTS)"]);
    (await d2)();
    expect(await lent).toBe("waited");
    expect(slots.state()).toEqual({ running: 1, max: 1, waiting: [] });
    release1();
    release1();
    expect(slots.state(), "d1's release frees the slot it took again, once").toEqual({ running: 0, max: 1, waiting: [] });
    // Lending a slot one does not hold only waits.
    expect(await slots.lend("d9", () => Promise.resolve(1))).toBe(1);
    expect(slots.state()).toEqual({ running: 0, max: 1, waiting: [] });
  });
});
