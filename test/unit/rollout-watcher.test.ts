/** The shared rollout watcher's rounds, on a fake swarm and the fake clock: follows and inspects share them, never an answer older than its question. */
import { describe, expect, it } from "vitest";
import { createRolloutWatcher } from "../../server/engine/rollout-watcher.js";
import { SwarmNotFoundError, SwarmUnavailableError, type SwarmService } from "../../server/engine/swarm-port.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";

const turn = () => new Promise((r) => setImmediate(r));

function setUp() {
  const swarm = new FakeSwarm();
  const clock = new FakeClock();
  const watcher = createRolloutWatcher({ swarm, clock, pollMs: 500 });
  const [a, b, c] = ["a", "b", "c"].map((name) => swarm.addService({ name, image: "127.0.0.1:5000/acme/web:1" })) as [
    SwarmService,
    SwarmService,
    SwarmService,
  ];
  return { swarm, clock, watcher, a, b, c };
}

describe("the rollout watcher", () => {
  it("answers the inspects asked in one turn with one list, and a lone inspect at once, without waiting for the interval", async () => {
    const { swarm, watcher, a, b } = setUp();
    const [ia, ib, ia2] = await Promise.all([watcher.inspect(a.id), watcher.inspect(b.id), watcher.inspect(a.id)]);
    expect([ia?.name, ib?.name, ia2?.name]).toEqual(["a", "b", "a"]);
    expect(swarm.callsOf("findServices")).toEqual([[[a.id, b.id]]]);
    expect(swarm.callsOf("listTasksOf"), "an inspect wants no tasks").toEqual([]);
    // No rollout is watched: the next inspect does not wait for the fake clock.
    expect((await watcher.inspect(b.id))?.name).toBe("b");
    expect(await watcher.inspect("gone")).toBeUndefined();
    expect(swarm.callsOf("findServices")).toHaveLength(3);
    expect(swarm.callsOf("findService")).toEqual([]);
  });

  it("folds inspects into the rounds while rollouts are watched: one list and one task list per interval, however many questions", async () => {
    const { swarm, clock, watcher, a, b, c } = setUp();
    const first = await watcher.observe(a.id);
    expect("tasks" in first && first.service?.id).toBe(a.id);
    // The round is over and the watcher sleeps the interval: everything asked now waits for the next round.
    await clock.sleepCount(1);
    const asked = Promise.all([watcher.observe(a.id), watcher.inspect(b.id), watcher.inspect(c.id), watcher.inspect(b.id)]);
    await turn();
    expect(swarm.callsOf("findServices"), "nothing before the interval ends").toHaveLength(1);
    clock.advance(500);
    const [seenA, seenB, seenC, seenB2] = await asked;
    expect(swarm.callsOf("findServices").at(-1)![0]).toEqual([a.id, b.id, c.id]);
    expect(swarm.callsOf("listTasksOf").at(-1)![0], "tasks only of the watched service").toEqual([a.id]);
    expect(swarm.callsOf("findServices")).toHaveLength(2);
    expect("tasks" in seenA && seenA.service?.id).toBe(a.id);
    expect([seenB?.name, seenC?.name, seenB2?.name]).toEqual(["b", "c", "b"]);
  });

  it("never answers an inspect from a round that started before it was asked", async () => {
    const { swarm, watcher, a } = setUp();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const real = swarm.findServices.bind(swarm);
    let calls = 0;
    swarm.findServices = async (ids: string[]) => {
      const answer = await real(ids);
      if (++calls === 1) await held;
      return answer;
    };
    const before = watcher.inspect(a.id);
    await turn();
    expect(calls).toBe(1);
    // The image changes while the first round's list is out; a question asked now must see the change.
    await swarm.updateService(a.id, a.version, { image: "127.0.0.1:5000/acme/web:2" });
    const after = watcher.inspect(a.id);
    release();
    expect((await before)?.image).toBe("127.0.0.1:5000/acme/web:1");
    expect((await after)?.image).toBe("127.0.0.1:5000/acme/web:2");
    expect(calls).toBe(2);
  });

  it("answers the inspects of a round whose task list failed; only the follows see the error", async () => {
    const { swarm, watcher, a, b } = setUp();
    swarm.listTasksOf = () => Promise.reject(new Error("the Docker engine did not answer within 10000 ms"));
    const [followed, inspected] = await Promise.all([watcher.observe(a.id), watcher.inspect(b.id)]);
    expect(followed).toEqual({ error: expect.objectContaining({ message: expect.stringContaining("did not answer") }) });
    expect(inspected?.name).toBe("b");
  });

  it("tells only the rollout whose service was removed between the round's two requests that it is gone", async () => {
    const { swarm, watcher, a, b, c } = setUp();
    const real = swarm.findServices.bind(swarm);
    let calls = 0;
    swarm.findServices = async (ids: string[]) => {
      const answer = await real(ids);
      // The round has listed b; it is removed before the task list names it, which the engine then refuses (404).
      if (++calls === 1) swarm.removeService(b.id);
      return answer;
    };
    const [seenA, seenB, seenC] = await Promise.all([watcher.observe(a.id), watcher.observe(b.id), watcher.observe(c.id)]);
    expect("tasks" in seenA && seenA.service?.id).toBe(a.id);
    expect("tasks" in seenC && seenC.service?.id).toBe(c.id);
    expect(seenB).toEqual({ service: undefined, tasks: [] });
    expect(swarm.callsOf("listTasksOf").map(([ids]) => ids)).toEqual([
      [a.id, b.id, c.id],
      [a.id, c.id],
    ]);
  });

  it("takes out each service removed while the round asks again, and hears a 404 no removal explains as the engine's trouble", async () => {
    const { swarm, clock, watcher, a, b, c } = setUp();
    const d = swarm.addService({ name: "d", image: "127.0.0.1:5000/acme/web:1" });
    const real = swarm.findServices.bind(swarm);
    const removals = [b.id, c.id, d.id];
    swarm.findServices = async (ids: string[]) => {
      const answer = await real(ids);
      // A stack being removed: another service goes after each list.
      const next = removals.shift();
      if (next) swarm.removeService(next);
      return answer;
    };
    const seen = await Promise.all([a, b, c, d].map((s) => watcher.observe(s.id)));
    expect("tasks" in seen[0]! && seen[0].service?.id).toBe(a.id);
    expect(seen.slice(1)).toEqual(Array(3).fill({ service: undefined, tasks: [] }));
    expect(swarm.callsOf("listTasksOf")).toHaveLength(4);

    // The engine refuses the list of a service it still lists: nothing is gone, and the follow is told of engine trouble.
    swarm.listTasksOf = () => Promise.reject(new SwarmNotFoundError("service x not found"));
    await clock.sleepCount(1);
    const next = watcher.observe(a.id);
    clock.advance(500);
    const refused = await next;
    expect(refused).toEqual({ error: expect.any(SwarmUnavailableError) });
    expect("error" in refused && (refused.error as Error).message).toContain("refused the task list");
  });

  it("tells every follow of a round whose answer could not be read that the engine is in trouble, not that their rollout failed", async () => {
    const { swarm, clock, watcher, a, b } = setUp();
    // What the adapter throws reading an answer it cannot make sense of (a proxy's page, a spec without its fields).
    const real = swarm.listTasksOf.bind(swarm);
    swarm.listTasksOf = () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'Index')"));
    const [seenA, seenB] = await Promise.all([watcher.observe(a.id), watcher.observe(b.id)]);
    for (const seen of [seenA, seenB]) {
      expect(seen).toEqual({ error: expect.any(SwarmUnavailableError) });
      expect("error" in seen && (seen.error as Error).message).toBe(
        "could not read the Docker engine's answer: Cannot read properties of undefined (reading 'Index')",
      );
    }
    const realFind = swarm.findServices.bind(swarm);
    swarm.findServices = () => Promise.reject(new SyntaxError("Unexpected token < in JSON at position 0"));
    await clock.sleepCount(1);
    const next = Promise.all([watcher.observe(a.id), watcher.inspect(b.id).catch((err: unknown) => err)]);
    clock.advance(500);
    const [followed, inspected] = await next;
    expect(followed).toEqual({ error: expect.any(SwarmUnavailableError) });
    expect(inspected).toBeInstanceOf(SwarmUnavailableError);
    // The next readable answer is heard as usual.
    swarm.listTasksOf = real;
    swarm.findServices = realFind;
    await clock.sleepCount(2);
    const after = watcher.observe(a.id);
    clock.advance(500);
    const seen = await after;
    expect("tasks" in seen && seen.service?.id).toBe(a.id);
  });

  it("rejects the inspects of a round the engine could not answer, and the next round asks again", async () => {
    const { swarm, watcher, a } = setUp();
    swarm.setUnavailable(true);
    await expect(watcher.inspect(a.id)).rejects.toThrow(/cannot reach/);
    swarm.setUnavailable(false);
    expect((await watcher.inspect(a.id))?.name).toBe("a");
  });
});
