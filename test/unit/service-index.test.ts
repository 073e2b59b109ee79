import { Writable } from "node:stream";
import { describe, expect, it, onTestFinished } from "vitest";
import { createServiceEvents } from "../../server/engine/service-events.js";
import { createServiceIndex } from "../../server/engine/service-index.js";
import { SwarmUnavailableError, type SwarmPort, type SwarmService } from "../../server/engine/swarm-port.js";
import { createLogger } from "../../server/logger.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";

const image = "127.0.0.1:5000/acme/web:live";
const turn = () => new Promise<void>((r) => setImmediate(r));

function setup(resyncMs = 0) {
  const clock = new FakeClock();
  const swarm = new FakeSwarm({ clock });
  const logLines: string[] = [];
  const log = createLogger(
    "debug",
    new Writable({
      write(chunk, _e, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  const events = createServiceEvents(swarm);
  /** An index on this setup's stream, clock and log, reading the engine through `over` where given (its lists too). */
  const build = (
    over: { swarm?: Pick<SwarmPort, "listServices" | "findService">; inspect?: (id: string) => Promise<SwarmService | undefined> } = {},
  ) => {
    const through = over.swarm;
    const listing = through
      ? createServiceEvents({ watchServiceEvents: (h, signal) => events.watchServiceEvents(h, signal), listServices: () => through.listServices() })
      : events;
    const built = createServiceIndex({ swarm, events: listing, clock, log, resyncMs, ...over });
    onTestFinished(() => built.stop());
    return built;
  };
  const index = build();
  /** The index once the stream's deliveries and its looks are done. */
  const current = async () => {
    await turn();
    await index.settled();
    return index
      .services()
      ?.map((s) => `${s.name} ${s.image}`)
      .sort();
  };
  return { clock, swarm, events, index, build, current, logLines };
}

describe("the service index", () => {
  it("answers nothing until the first full list, then every service, without another list per read", async () => {
    const { swarm, index, current } = setup();
    swarm.addService({ name: "web", image });
    expect(index.services()).toBeUndefined();
    index.start();
    expect(await current()).toEqual([`web ${image}`]);
    const lists = swarm.callsOf("listServices").length;
    for (let i = 0; i < 5; i++) index.services();
    expect(swarm.callsOf("listServices")).toHaveLength(lists);
  });

  it("applies the stream's create, update and remove events", async () => {
    const { swarm, index, current } = setup();
    index.start();
    expect(await current()).toEqual([]);
    const web = swarm.addService({ name: "web", image });
    const api = swarm.addService({ name: "api", image });
    expect(await current()).toEqual([`api ${image}`, `web ${image}`]);
    await swarm.updateService(web.id, web.version, { image: "127.0.0.1:5000/acme/other:live" });
    swarm.removeService(api.id);
    expect(await current()).toEqual(["web 127.0.0.1:5000/acme/other:live"]);
    expect(swarm.callsOf("listServices"), "events only: no other full list").toHaveLength(1);
  });

  it("is not trusted while the stream is down, and lists again on reconnection, seeing what changed meanwhile", async () => {
    const { swarm, index, current } = setup();
    const web = swarm.addService({ name: "web", image });
    index.start();
    expect(await current()).toEqual([`web ${image}`]);
    swarm.events.setDown(true);
    expect(index.services()).toBeUndefined();
    // Lost events: the engine sends nothing while the stream is down.
    swarm.removeService(web.id);
    swarm.addService({ name: "api", image });
    expect(await current()).toBeUndefined();
    swarm.events.setDown(false);
    expect(await current()).toEqual([`api ${image}`]);
    expect(swarm.callsOf("listServices")).toHaveLength(2);
  });

  it("lists every service again each DEPLOYER_SERVICE_RESYNC, on the clock", async () => {
    const { swarm, clock, index, current } = setup(60_000);
    index.start();
    await current();
    expect(swarm.callsOf("listServices")).toHaveLength(1);
    clock.advance(60_000);
    await current();
    expect(swarm.callsOf("listServices")).toHaveLength(2);
  });

  it("lists every service again when an inspect an event asked for fails", async () => {
    const { swarm, build, logLines } = setup();
    let failNext = false;
    const flaky = {
      listServices: () => swarm.listServices(),
      findService: async (id: string) => {
        if (!failNext) return swarm.findService(id);
        failNext = false;
        throw new SwarmUnavailableError("the Docker engine did not answer within 10000 ms");
      },
    };
    const index = build({ swarm: flaky });
    index.start();
    await turn();
    await index.settled();
    expect(index.services()).toEqual([]);
    failNext = true;
    swarm.addService({ name: "web", image });
    await turn();
    await index.settled();
    expect(index.services()?.map((s) => s.name)).toEqual(["web"]);
    expect(swarm.callsOf("listServices")).toHaveLength(2);
    expect(logLines.join("")).toContain("service index: could not inspect a service an event named");
  });

  it("lists again after a list that was under way when the stream reconnected, or when an inspect failed, and only then is fresh", async () => {
    const { swarm, build } = setup();
    let hold: Promise<void> | undefined;
    let release = () => {};
    let failNext = false;
    const held = {
      listServices: async () => {
        const answer = await swarm.listServices();
        await hold;
        return answer;
      },
      findService: async (id: string) => {
        if (!failNext) return swarm.findService(id);
        failNext = false;
        throw new SwarmUnavailableError("the Docker engine did not answer within 10000 ms");
      },
    };
    const index = build({ swarm: held });
    const holdLists = () => (hold = new Promise<void>((r) => (release = r)));
    index.start();
    await turn();
    await index.settled();
    expect(index.services()).toEqual([]);

    // A reconnection while a list (the periodic one, here asked by hand) is out: that list cannot make the index fresh.
    holdLists();
    const under = index.resync();
    await turn();
    swarm.events.setDown(true);
    swarm.events.setDown(false);
    await turn();
    expect(index.behind()).toBe(true);
    hold = undefined;
    release();
    expect(await under).toBe(false);
    await index.settled();
    expect(index.services(), "the list after the reconnection ran").toEqual([]);
    const afterReconnect = swarm.callsOf("listServices").length;

    // An inspect that fails while a list started before it is out: that list's view may be older than the event.
    holdLists();
    const before = index.resync();
    await turn();
    failNext = true;
    swarm.addService({ name: "web", image });
    await turn();
    await turn();
    hold = undefined;
    release();
    expect(await before, "a list that saw an inspect fail does not make the index fresh").toBe(false);
    await index.settled();
    expect(index.services()?.map((s) => s.name)).toEqual(["web"]);
    expect(swarm.callsOf("listServices").length).toBe(afterReconnect + 2);
  });

  it("is behind while an event names a service it has not read yet, not while it reads one it knows", async () => {
    const { swarm, build } = setup();
    let release = () => {};
    const inspect = async (id: string) => {
      await new Promise<void>((r) => (release = r));
      return swarm.findService(id);
    };
    const index = build({ inspect });
    const web = swarm.addService({ name: "web", image });
    index.start();
    await turn();
    await index.settled();
    expect(index.behind()).toBe(false);
    await swarm.updateService(web.id, web.version, { image: "127.0.0.1:5000/acme/web:2" });
    await turn();
    await turn();
    expect(index.behind(), "an update of a known service, being read").toBe(false);
    release();
    await index.settled();
    swarm.addService({ name: "api", image });
    await turn();
    await turn();
    expect(index.behind(), "a service created a moment ago, being read").toBe(true);
    release();
    await index.settled();
    expect(index.behind()).toBe(false);
    expect(
      index
        .services()
        ?.map((s) => s.name)
        .sort(),
    ).toEqual(["api", "web"]);
  });

  it("shares one subscription with the drift watcher's stream", async () => {
    const { swarm, events, index } = setup();
    index.start();
    const abort = new AbortController();
    let connected = 0;
    const other = events.watchServiceEvents({ onEvent: () => undefined, onConnected: () => connected++ }, abort.signal);
    await turn();
    await turn();
    expect(swarm.events.watching).toBe(1);
    expect(connected, "a subscriber that comes while connected hears it at once").toBe(1);
    abort.abort();
    await other;
    await index.stop();
    expect(swarm.events.watching).toBe(0);
  });
});
