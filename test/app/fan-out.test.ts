import { describe, expect, it } from "vitest";
import type { ImageRef } from "../../server/domain/image-ref.js";
import { RegistryError, type ResolvedManifest } from "../../server/registry/registry-port.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeRegistry } from "../helpers/fake-registry.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import { createTestServer, registryPush, runToFinal, sha, waitForFinal, pushAcmeWeb, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const live = { registry: "127.0.0.1:5000", repository: "acme/web", tag: "live" };

/** A registry whose answers wait until `release()`; each lookup reads the tag when it is asked, as a HEAD would. */
class HeldRegistry extends FakeRegistry {
  private held: Array<() => void> = [];
  holding = true;

  override resolveDigest(ref: Pick<ImageRef, "registry" | "repository" | "tag">): Promise<ResolvedManifest> {
    const answer = super.resolveDigest(ref);
    if (!this.holding) return answer;
    return new Promise((resolve, reject) => this.held.push(() => void answer.then(resolve, reject)));
  }

  release(): void {
    this.holding = false;
    for (const go of this.held.splice(0)) go();
  }
}

const timeline = (server: TestServer, id: string) => server.store.listEvents(id).map((e) => `${e.status}: ${e.message}`);

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(check(), what).toBe(true);
}

function addServices(server: TestServer, count: number, image = `${repo}:live`) {
  return Array.from({ length: count }, (_, i) => server.swarm.addService({ name: `web-${i}`, image }));
}

/**
 * Services `api` (its registry does not answer) and `web`, and a push for api: resolves once api's deployment
 * waits to try its registry again. Web's tag names sha(2).
 */
async function pushToDeadRegistry(server: TestServer) {
  const api = { registry: "127.0.0.1:5000", repository: "acme/api", tag: "live" };
  server.swarm.addService({ name: "api", image: "127.0.0.1:5000/acme/api:live" });
  server.swarm.addService({ name: "web", image: `${repo}:live` });
  server.registry.push(api, sha(1));
  server.registry.push(live, sha(2));
  server.registry.failTagWith(api, new RegistryError("unreachable", "connect ECONNREFUSED 127.0.0.1:5000"));
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    json: registryPush({ repository: "acme/api", tag: "live", digest: sha(1) }),
  });
  const a = ((await res.json()) as { deployments: Array<{ id: string }> }).deployments[0]!.id;
  await until("api's deployment waits to try its registry again", () => timeline(server, a).some((e) => e.includes("could not reach the registry")));
  return { a, api };
}

describe("one push matching many services", () => {
  it("looks the tag up once for all 30 deployments, and each deploys the digest it names", async () => {
    const server = createTestServer();
    addServices(server, 30);
    server.registry.push(live, sha(7));
    const answer = await pushAcmeWeb(server, "live", sha(7));
    expect(answer.deployments).toHaveLength(30);
    const ends = await Promise.all(answer.deployments.map((d) => waitForFinal(server, d.id)));
    expect(ends.map((d) => d.status)).toEqual(Array(30).fill("succeeded"));
    expect(ends.every((d) => d.digest === sha(7))).toBe(true);
    expect(server.registry.lookups, "one HEAD for the push, not one per service").toEqual([`${repo}:live`]);
    for (const d of ends) expect(timeline(server, d.id)).toContain(`running: resolved ${repo}:live to ${sha(7)}`);
  });

  it("shares the second looks too while the tag does not name the payload's digest yet", async () => {
    const server = createTestServer();
    addServices(server, 10);
    server.registry.push(live, sha(1)); // the payload announces sha(2); the tag still names sha(1) on every look
    const answer = await pushAcmeWeb(server, "live", sha(2));
    const ends = await Promise.all(answer.deployments.map((d) => waitForFinal(server, d.id)));
    expect(ends.every((d) => d.status === "succeeded" && d.digest === sha(1))).toBe(true);
    // Eight looks (resolve-tag.ts TAG_SETTLE_LOOKS) for the ten deployments together, not eight each.
    expect(server.registry.lookups).toHaveLength(8);
    for (const d of ends) expect(timeline(server, d.id).join("\n")).toContain(`the payload named ${sha(2)}, which the tag does not point to`);
  });

  it("never answers a deployment from a lookup that started before it was admitted", async () => {
    const registry = new HeldRegistry();
    const server = createTestServer({}, { registry });
    server.swarm.addService({ name: "web-a", image: `${repo}:live` });
    registry.push(live, sha(1));
    const first = await pushAcmeWeb(server, "live", sha(1));
    await until("the first lookup is asked", () => registry.lookups.length === 1);
    // The tag moves and a service starts running it while the first lookup (which read sha(1)) is still out.
    registry.push(live, sha(2));
    server.swarm.addService({ name: "web-b", image: `${repo}:live` });
    const second = await pushAcmeWeb(server, "live", sha(2));
    const b = second.deployments.find((d) => d.service === "web-b")!;
    await until("web-b's deployment asks for itself", () => registry.lookups.length === 2);
    registry.release();
    // web-a's own deployment hears of the second push while resolving (coalesced into it) and looks again.
    expect((await waitForFinal(server, first.deployments[0]!.id)).digest).toBe(sha(2));
    const done = await waitForFinal(server, b.id);
    expect(done.status, timeline(server, b.id).join("\n")).toBe("succeeded");
    expect(done.digest, "the answer to a lookup that left before the push would be sha(1)").toBe(sha(2));
  });

  it("looks again for a deployment waiting for a rollout slot when a later push of the tag is coalesced into it", async () => {
    const server = createTestServer({ DEPLOYER_MAX_ROLLOUTS: "1" }, { clock: new FakeClock() });
    addServices(server, 2);
    server.registry.push(live, sha(1));
    const first = await pushAcmeWeb(server, "live", sha(1));
    const [a, b] = first.deployments.map((d) => d.id) as [string, string];
    await until("web-0 resolved the tag", () => server.store.getDeployment(a).digest === sha(1));
    expect(server.store.getDeployment(b).status).toBe("queued");
    server.registry.push(live, sha(2));
    const second = await pushAcmeWeb(server, "live", sha(2));
    expect(second.ignored).toContainEqual({ reason: "coalesced", service: "web-1", image: `${repo}:live`, deployment: b });
    expect((await runToFinal(server, a)).digest).toBe(sha(1));
    // The answer web-0 got came after web-1 was admitted, but before the push coalesced into it: not good enough.
    const done = await runToFinal(server, b);
    expect(done.digest, timeline(server, b).join("\n")).toBe(sha(2));
  });

  it("shares the poller's lookup with a deployment admitted before the cycle, and not with one admitted after it started", async () => {
    const registry = new HeldRegistry();
    const server = createTestServer({}, { registry });
    server.swarm.addService({ name: "web-a", image: `${repo}:live` });
    registry.push(live, sha(3));
    const before = server.tagLookups.ticket();
    const cycle = server.poller.runOnce();
    await until("the cycle asks the registry", () => registry.lookups.length === 1);
    const after = server.tagLookups.ticket();
    const joined = server.tagLookups.resolve(registry, live, before);
    const own = server.tagLookups.resolve(registry, live, after);
    expect(registry.lookups, "the late one asks for itself").toHaveLength(2);
    registry.release();
    expect((await joined).digest).toBe(sha(3));
    expect((await own).digest).toBe(sha(3));
    expect(server.tagLookups.counts()).toEqual({ started: 2, joined: 1 });
    const result = await cycle;
    expect(result.lookups).toBe(1);
    await server.deployer.idle();
  });
});

describe("the rollouts of one push", () => {
  it("are followed by one watcher: one read of all services and one of all tasks a round, with a lone rollout's timeline", async () => {
    const alone = createTestServer();
    alone.swarm.addService({ name: "web-0", image: `${repo}:live`, replicas: 2 });
    alone.registry.push(live, sha(4));
    const single = (await pushAcmeWeb(alone, "live", sha(4))).deployments[0]!;
    await waitForFinal(alone, single.id);

    const server = createTestServer();
    const services = Array.from({ length: 5 }, (_, i) => server.swarm.addService({ name: `web-${i}`, image: `${repo}:live`, replicas: 2 }));
    server.registry.push(live, sha(4));
    const answer = await pushAcmeWeb(server, "live", sha(4));
    const ends = await Promise.all(answer.deployments.map((d) => waitForFinal(server, d.id)));
    expect(ends.map((d) => d.status)).toEqual(Array(5).fill("succeeded"));
    expect(server.swarm.callsOf("listTasks"), "no polling per deployment").toEqual([]);
    const rounds = server.swarm.callsOf("findServices").map(([ids]) => [...(ids as string[])].sort());
    expect(
      rounds.some((ids) => ids.length === 5),
      JSON.stringify(rounds),
    ).toBe(true);
    expect(rounds.every((ids) => ids.every((id) => services.some((s) => s.id === id)))).toBe(true);
    expect(server.swarm.callsOf("listTasksOf")).toHaveLength(rounds.length);
    // Versions differ between the two swarms; the rest of each entry is the lone rollout's.
    const shape = (s: TestServer, id: string) => timeline(s, id).map((e) => e.replace(/service version \d+/, "service version N"));
    const web0 = ends.find((d) => d.service === "web-0")!;
    expect(shape(server, web0.id)).toEqual(shape(alone, single.id));
  });

  it("keeps at most DEPLOYER_MAX_ROLLOUTS under way; the rest wait queued, in the order they came, and say so", async () => {
    const server = createTestServer({ DEPLOYER_MAX_ROLLOUTS: "2" }, { clock: new FakeClock() });
    addServices(server, 5);
    server.registry.push(live, sha(5));
    const answer = await pushAcmeWeb(server, "live", sha(5));
    const ids = answer.deployments.map((d) => d.id);
    await until("two rollouts have started", () => ids.filter((id) => server.store.getDeployment(id).status === "running").length === 2);
    expect(server.deployer.rollouts()).toEqual({ running: 2, max: 2, waiting: ids.slice(2) });
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] });
    const res = await server.request(`/api/deployments/${ids[4]}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { status: string; events: Array<{ message: string }> };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe("queued");
    expect(body.events.map((e) => e.message)).toContain(
      "waiting for a rollout slot: 2 rollouts under way, at most 2 at once (DEPLOYER_MAX_ROLLOUTS); 2 ahead of it",
    );
    for (const id of ids) expect((await runToFinal(server, id)).status).toBe("succeeded");
    const order = server.swarm.callsOf("updateService").map(([serviceId]) => serviceId);
    const expected = ids.map((id) => server.store.getDeployment(id).serviceId);
    expect(order, "first come, first served").toEqual(expected);
    expect(server.deployer.rollouts()).toEqual({ running: 0, max: 2, waiting: [] });
  });

  it("lends the slot of a deployment whose registry does not answer to the next in line while it waits to try again", async () => {
    const server = createTestServer({ DEPLOYER_MAX_ROLLOUTS: "1" }, { clock: new FakeClock() });
    const { a, api } = await pushToDeadRegistry(server);
    expect(server.deployer.rollouts(), "the waiting deployment holds no slot").toEqual({ running: 0, max: 1, waiting: [] });

    const w = (await pushAcmeWeb(server, "live", sha(2))).deployments[0]!.id;
    const web = await runToFinal(server, w);
    expect(web.status, timeline(server, w).join("\n")).toBe("succeeded");
    expect(timeline(server, w).join("\n")).not.toContain("waiting for a rollout slot");
    expect(server.store.getDeployment(a)).toMatchObject({ status: "running", digest: null });

    server.registry.failTagWith(api, undefined);
    const done = await runToFinal(server, a);
    expect(done, timeline(server, a).join("\n")).toMatchObject({ status: "succeeded", digest: sha(1) });
    expect(server.deployer.rollouts()).toEqual({ running: 0, max: 1, waiting: [] });
  });
});

describe("a push announced before its tag is on the registry", () => {
  it("looks again at the rollout's pace while the new tag is not there yet, and deploys it once it is", async () => {
    const registry = new HeldRegistry();
    registry.holding = false;
    const server = createTestServer({}, { registry, clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels: { "deployer.follow": "semver:minor" } });
    // The notification of a first push of tag 1.4.3 comes before the registry links the tag (distribution does both in turn).
    const id = (await pushAcmeWeb(server, "1.4.3", sha(3))).deployments[0]!.id;
    await until("the first look found no such tag", () => registry.lookups.length === 1);
    registry.push({ ...live, tag: "1.4.3" }, sha(3));
    const done = await runToFinal(server, id);
    expect(done, timeline(server, id).join("\n")).toMatchObject({ status: "succeeded", digest: sha(3) });
    expect(timeline(server, id).join("\n")).toContain(`${repo}:1.4.3 is not on its registry yet`);
  });

  it("fails with the registry's answer once the looks are spent, and at once without a payload digest", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels: { "deployer.follow": "semver:minor" } });
    const id = (await pushAcmeWeb(server, "1.4.4", sha(4))).deployments[0]!.id;
    const done = await runToFinal(server, id);
    expect(done.status).toBe("failed");
    expect(done.message).toMatch(/could not resolve .*:1\.4\.4 on its registry: .*not found/);
    expect(
      server.registry.lookups.filter((k) => k.endsWith(":1.4.4")),
      "the settling looks",
    ).toHaveLength(8);

    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:write"] });
    const res = await server.request("/api/services/web/deploy", {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      json: { tag: "1.4.5" },
    });
    const manual = (await res.json()) as { id?: string; deployment?: { id: string } };
    const manualId = manual.id ?? manual.deployment?.id;
    expect(res.status, JSON.stringify(manual)).toBe(202);
    expect((await runToFinal(server, manualId!)).status).toBe("failed");
    expect(
      server.registry.lookups.filter((k) => k.endsWith(":1.4.5")),
      "no payload digest: one look",
    ).toHaveLength(1);
  });
});

describe("a deployment that lent its slot while its registry did not answer", () => {
  it("does not count the time it then waited in line for a slot against DEPLOYER_REGISTRY_RETRY", async () => {
    const swarm = new FakeSwarm(); // rollouts move only when the test settles them
    const clock = new FakeClock();
    const server = createTestServer({ DEPLOYER_MAX_ROLLOUTS: "1", DEPLOYER_REGISTRY_RETRY: "5s" }, { swarm, clock });
    const { a, api } = await pushToDeadRegistry(server);
    const w = (await pushAcmeWeb(server, "live", sha(2))).deployments[0]!.id;
    await until("web's update is sent", () => server.store.getDeployment(w).updateSentAt !== null);

    // Web's rollout holds the only slot for 30 s; api's retry wakes after 1 s and waits in line the rest of it.
    for (let s = 0; s < 30; s++) {
      clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    expect(timeline(server, a).join("\n")).toContain("waiting for a rollout slot");
    await swarm.settle();
    expect((await runToFinal(server, w)).status).toBe("succeeded");
    // Back in with a slot, it still has the 4 s of its 5 s it had not used at the registry: it tries again instead of failing.
    await until("api's deployment tries its registry again", () => timeline(server, a).filter((e) => e.includes("could not reach")).length >= 2);
    expect(server.store.getDeployment(a).status, timeline(server, a).join("\n")).toBe("running");
    server.registry.failTagWith(api, undefined);
    clock.advance(2000); // its next try
    expect(await runToFinal(server, a), timeline(server, a).join("\n")).toMatchObject({ status: "succeeded", digest: sha(1) });
  });
});

describe("webhooks matched against the service index", () => {
  async function indexed() {
    const server = createTestServer({}, { serviceIndex: true });
    await until("the index is fresh", () => server.serviceIndex.services() !== undefined);
    return server;
  }
  const settled = async (server: TestServer) => {
    await new Promise((r) => setImmediate(r));
    await server.serviceIndex.settled();
  };

  it("finds a push's services without listing the engine, and sees a service created, changed or removed", async () => {
    const server = await indexed();
    const web = server.swarm.addService({ name: "web", image: `${repo}:live` });
    await settled(server);
    const lists = server.swarm.callsOf("listServices").length;
    server.registry.push(live, sha(1));
    const one = await pushAcmeWeb(server, "live", sha(1));
    expect(one.deployments.map((d) => d.service)).toEqual(["web"]);
    await waitForFinal(server, one.deployments[0]!.id);
    server.swarm.addService({ name: "api", image: `${repo}:live` });
    await settled(server);
    server.registry.push(live, sha(2));
    const two = await pushAcmeWeb(server, "live", sha(2));
    expect(two.deployments.map((d) => d.service).sort()).toEqual(["api", "web"]);
    await Promise.all(two.deployments.map((d) => waitForFinal(server, d.id)));
    server.swarm.removeService(web.id);
    await settled(server);
    server.registry.push(live, sha(3));
    const three = await pushAcmeWeb(server, "live", sha(3));
    expect(three.deployments.map((d) => d.service)).toEqual(["api"]);
    await waitForFinal(server, three.deployments[0]!.id);
    expect(server.swarm.callsOf("listServices"), "no list per webhook").toHaveLength(lists);
  });

  it("matches from the engine's list while the index is behind: a service created a moment ago is not missed", async () => {
    const server = await indexed();
    server.swarm.addService({ name: "api", image: `${repo}:live` });
    await settled(server);
    const lists = server.swarm.callsOf("listServices").length;
    // The create's event has reached the index, but its read of the service has not come back when the push comes.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const findServices = server.swarm.findServices.bind(server.swarm);
    server.swarm.findServices = async (ids: string[]) => {
      const answer = await findServices(ids);
      await held;
      return answer;
    };
    server.swarm.addService({ name: "web", image: `${repo}:live` });
    await until("the index heard the event", () => server.serviceIndex.behind());
    server.registry.push(live, sha(1));
    const answer = await pushAcmeWeb(server, "live", sha(1));
    // The index knew api; web, still being read, comes from the engine's list.
    expect(answer.deployments.map((d) => d.service).sort()).toEqual(["api", "web"]);
    expect(server.swarm.callsOf("listServices")).toHaveLength(lists + 1);
    release();
    for (const d of answer.deployments) await waitForFinal(server, d.id);
  });

  it("asks the engine nothing for a push of a tag no service runs once the index has caught up", async () => {
    const server = await indexed();
    server.swarm.addService({ name: "web", image: `${repo}:live` });
    await settled(server);
    expect(server.serviceIndex.behind()).toBe(false);
    const calls = server.swarm.calls.length;
    server.registry.push({ ...live, tag: "build-7" }, sha(2));
    const answer = await pushAcmeWeb(server, "build-7", sha(2));
    expect(answer.deployments).toEqual([]);
    expect(answer.ignored).toEqual([expect.objectContaining({ reason: "no_matching_service" })]);
    expect(server.swarm.calls.slice(calls), "no Engine API call").toEqual([]);
  });

  it("inspects the services the engine's events name in the rollout watcher's rounds, not once per event and listener", async () => {
    const server = await indexed();
    server.drift.start();
    const services = addServices(server, 5);
    await settled(server);
    await server.drift.settled();
    const inspectsBefore = server.swarm.callsOf("findService").length;
    const eventsBefore = server.swarm.events.emitted.length;
    server.registry.push(live, sha(6));
    const answer = await pushAcmeWeb(server, "live", sha(6));
    const ends = await Promise.all(answer.deployments.map((d) => waitForFinal(server, d.id)));
    expect(ends.map((d) => d.status)).toEqual(Array(5).fill("succeeded"));
    await settled(server);
    await server.drift.settled();
    const events = server.swarm.events.emitted.slice(eventsBefore);
    expect(events.length, "each rollout moves its service more than once").toBeGreaterThan(services.length);
    // The only inspects of their own are the deployments' reads of their service before they update it.
    expect(server.swarm.callsOf("findService").length - inspectsBefore).toBe(server.swarm.callsOf("updateService").length);
    // Both listeners still saw every change: the index has the pinned images, and nothing was taken for drift.
    expect(server.serviceIndex.servicesOf(repo)!.map((s) => s.image)).toEqual(Array(5).fill(`${repo}:live@${sha(6)}`));
    expect(server.history.list({ limit: 50, trigger: "external" }).items).toEqual([]);
  });

  it("lists the services once when the event stream reconnects, for the index and the drift watcher both", async () => {
    const server = await indexed();
    server.drift.start();
    addServices(server, 3);
    await settled(server);
    await server.drift.settled();
    const lists = server.swarm.callsOf("listServices").length;
    server.swarm.events.setDown(true);
    server.swarm.events.setDown(false);
    await until("the index is fresh again", () => !server.serviceIndex.behind() && server.swarm.callsOf("listServices").length > lists);
    await settled(server);
    await server.drift.settled();
    expect(server.swarm.callsOf("listServices")).toHaveLength(lists + 1);
    expect(server.serviceIndex.services()).toHaveLength(3);
    expect(server.logLines.some((l) => l.includes("drift: could not list"))).toBe(false);
  });

  it("does not update a service the index still shows on the pushed image but that runs another repository now", async () => {
    const server = createTestServer({}, { serviceIndex: true, clock: new FakeClock() });
    await until("the index is fresh", () => server.serviceIndex.services() !== undefined);
    const web = server.swarm.addService({ name: "web", image: `${repo}:live` });
    await settled(server);
    // The service moves to another repository, and the push comes before the index hears of it.
    server.swarm.events.holdDeliveries();
    await server.swarm.updateService(web.id, web.version, { image: "127.0.0.1:5000/acme/other:live" });
    server.registry.push(live, sha(1));
    const answer = await pushAcmeWeb(server, "live", sha(1));
    expect(answer.deployments.map((d) => d.service)).toEqual(["web"]);
    server.swarm.events.deliverHeld();
    const done = await runToFinal(server, answer.deployments[0]!.id);
    expect(done.status).toBe("skipped");
    expect(done.message).toBe(`the service runs 127.0.0.1:5000/acme/other:live now, not ${repo}:live's repository`);
    expect(server.swarm.callsOf("updateService")).toHaveLength(1); // the test's own
  });
});
