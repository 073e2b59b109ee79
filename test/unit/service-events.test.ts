/** The shared source of service events and full lists: the lists asked in one turn are one request, never one already sent. */
import { describe, expect, it } from "vitest";
import { createServiceEvents } from "../../server/engine/service-events.js";
import { SwarmUnavailableError, type SwarmService } from "../../server/engine/swarm-port.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";

const turn = () => new Promise<void>((r) => setImmediate(r));

describe("the shared service lists", () => {
  it("send one request for the lists asked in one turn, and a new one for a list asked once it is sent", async () => {
    const swarm = new FakeSwarm();
    swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:1" });
    const real = swarm.listServices.bind(swarm);
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    swarm.listServices = async () => {
      const answer = await real();
      await held;
      return answer;
    };
    const events = createServiceEvents(swarm);
    const [first, second] = [events.listServices(), events.listServices()];
    await turn();
    expect(swarm.callsOf("listServices"), "one request for the turn's two lists").toHaveLength(1);
    // Asked while that request is out: its answer may be older than the question, so it gets a request of its own.
    swarm.addService({ name: "api", image: "127.0.0.1:5000/acme/api:1" });
    const later = events.listServices();
    await turn();
    expect(swarm.callsOf("listServices")).toHaveLength(2);
    release();
    expect((await first).map((s: SwarmService) => s.name)).toEqual(["web"]);
    expect(await second).toBe(await first);
    expect((await later).map((s: SwarmService) => s.name).sort()).toEqual(["api", "web"]);
  });

  it("reject every list of the turn when the engine does not answer, and ask again for the next", async () => {
    const swarm = new FakeSwarm();
    const events = createServiceEvents(swarm);
    swarm.setUnavailable(true);
    const both = [events.listServices(), events.listServices()];
    for (const list of both) await expect(list).rejects.toBeInstanceOf(SwarmUnavailableError);
    expect(swarm.callsOf("listServices")).toHaveLength(1);
    swarm.setUnavailable(false);
    expect(await events.listServices()).toEqual([]);
    expect(swarm.callsOf("listServices")).toHaveLength(2);
  });
});
