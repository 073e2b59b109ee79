/** Drift in-process, on the fake clock: changes someone else makes are recorded as `external`; ours are not. */
import { describe, expect, it, onTestFinished } from "vitest";
import { startCallbackReceiver } from "../helpers/callback-receiver.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import { ROLLOUT_POLL_MS, createTestServer, registryPush, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const host = "127.0.0.1:5000";
const repo = `${host}/acme/web`;

/** Lets the event stream deliver (a later turn) and the watcher finish its looks. */
async function settle(server: TestServer) {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  await server.drift.settled();
}

const externals = (server: TestServer) => server.history.list({ limit: 50, trigger: "external" }).items;

/** What `docker service update --image` by someone else does: an update straight on the swarm. */
async function updateByHand(swarm: FakeSwarm, name: string, image: string) {
  const service = (await swarm.findService(name))!;
  await swarm.updateService(service.id, service.version, { image });
}

async function push(server: TestServer, tag: string, digest: string) {
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: [`${host}/acme/*`] });
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    json: registryPush({ repository: "acme/web", tag, digest }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { deployments: Array<{ id: string }> }).deployments;
}

describe("drift", () => {
  it("records someone else's image change as an external deployment at the next event, and notifies Apprise", async () => {
    const apprise = await startCallbackReceiver();
    onTestFinished(() => apprise.close());
    const server = createTestServer({ APPRISE_SIDECAR_URL: `127.0.0.1:${apprise.port}/notify`, HOSTNAME: "swarm-1", TZ: "UTC" });
    const web = server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}` });
    server.drift.start();
    await settle(server);
    expect(externals(server), "what runs at the start is the baseline, not a change").toEqual([]);

    await updateByHand(server.swarm, "web", `${repo}:1.4.3@${sha(2)}`);
    await settle(server);
    const [drift] = externals(server);
    const after = (await server.swarm.findService("web"))!;
    expect(drift).toMatchObject({
      service: "web",
      serviceId: web.id,
      trigger: "external",
      status: "succeeded",
      requestedBy: "external",
      image: `${repo}:1.4.3`,
      digest: sha(2),
      previousImage: `${repo}:1.4.2@${sha(1)}`,
      pinnedImage: `${repo}:1.4.3@${sha(2)}`,
    });
    const [first] = server.store.listEvents(drift!.id);
    expect(first?.message).toContain(`changed outside the server: image ${repo}:1.4.2@${sha(1)} -> ${repo}:1.4.3@${sha(2)} (digest ${sha(2)})`);
    expect(first?.message).toMatch(new RegExp(`spec version ${web.version} -> \\d+`));
    expect(after.version).toBeGreaterThan(web.version);

    await server.notifier!.flush();
    expect(apprise.received.map((r) => r.body)).toEqual([
      expect.objectContaining({ title: "[Shepherd] Service web changed outside the deployer on swarm-1", notify_type: "warning" }),
    ]);
    // The rollout's own UpdateStatus writes are more events of the same change: still one record.
    await server.swarm.settle();
    await settle(server);
    expect(externals(server)).toHaveLength(1);
    expect(server.swarm.callsOf("updateService"), "the server does not fight it").toHaveLength(1);
  });

  it("does not record the server's own deployments, nor swarm's rollback of one, and deploys a push after a drift as usual", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}`, failureAction: "rollback" });
    server.drift.start();
    await settle(server);
    server.registry.push({ registry: host, repository: "acme/web", tag: "live" }, sha(2));
    const [ours] = await push(server, "live", sha(2));
    expect((await waitForFinal(server, ours!.id)).status).toBe("succeeded");
    server.swarm.failImage(`${repo}:live@${sha(3)}`);
    server.registry.push({ registry: host, repository: "acme/web", tag: "live" }, sha(3));
    const [bad] = await push(server, "live", sha(3));
    expect((await waitForFinal(server, bad!.id)).status).toBe("rolled_back");
    await settle(server);
    expect(externals(server)).toEqual([]);

    await updateByHand(server.swarm, "web", `${repo}:live@${sha(1)}`);
    await server.swarm.settle();
    await settle(server);
    expect(externals(server).map((d) => d.digest)).toEqual([sha(1)]);
    server.registry.push({ registry: host, repository: "acme/web", tag: "live" }, sha(4));
    const [later] = await push(server, "live", sha(4));
    expect((await waitForFinal(server, later!.id)).status).toBe("succeeded");
    await settle(server);
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:live@${sha(4)}`);
    expect(externals(server)).toHaveLength(1);
  });

  it("records a change made while the server was down from the version kept per service, once", async () => {
    const clock = new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    const swarm = new FakeSwarm({ clock, stepMs: ROLLOUT_POLL_MS });
    onTestFinished(() => swarm.stop());
    swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}` });
    swarm.addService({ name: "api", image: `${repo}:api@${sha(5)}` });
    const first = createTestServer({}, { swarm, clock });
    first.drift.start();
    await settle(first);
    await first.drift.stop();

    await updateByHand(swarm, "web", `${repo}:1.4.3@${sha(2)}`);
    await swarm.settle();
    const second = createTestServer({}, { swarm, clock, dbPath: first.dbPath });
    second.drift.start();
    await settle(second);
    const recorded = externals(second);
    expect(recorded.map((d) => [d.service, d.pinnedImage])).toEqual([["web", `${repo}:1.4.3@${sha(2)}`]]);
    expect(second.store.listEvents(recorded[0]!.id)[0]?.message).toContain("changed while the server was not running");

    await second.drift.stop();
    const third = createTestServer({}, { swarm, clock, dbPath: first.dbPath });
    third.drift.start();
    await settle(third);
    expect(externals(third), "a restart does not record it again").toHaveLength(1);
  });

  it("looks at every service again when the event stream comes back after a drop", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}` });
    server.drift.start();
    await settle(server);
    server.swarm.events.setDown(true);
    await updateByHand(server.swarm, "web", `${repo}:1.4.3@${sha(2)}`);
    await settle(server);
    expect(externals(server), "the event was lost with the stream").toEqual([]);
    server.swarm.events.setDown(false);
    await settle(server);
    const [drift] = externals(server);
    expect(server.store.listEvents(drift!.id)[0]?.message).toContain("changed while the engine's event stream was down");
    expect(server.logLines.some((l) => l.includes("event stream dropped"))).toBe(true);
  });

  it("does not take a reconnection's list, older than a look made since, for a change back", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}` });
    server.drift.start();
    await settle(server);
    // The list the reconnection asks for reads the swarm now and comes back late.
    const held: Array<() => void> = [];
    const list = server.swarm.listServices.bind(server.swarm);
    server.swarm.listServices = async () => {
      const answer = await list();
      await new Promise<void>((r) => held.push(r));
      return answer;
    };
    server.swarm.events.setDown(true);
    server.swarm.events.setDown(false);
    await settle(server);
    expect(held.length).toBeGreaterThan(0);
    // Someone changes the image while that list is out; the event's own look records it.
    await updateByHand(server.swarm, "web", `${repo}:1.4.3@${sha(2)}`);
    await settle(server);
    expect(externals(server).map((d) => d.image)).toEqual([`${repo}:1.4.3`]);
    for (const release of held) release();
    await settle(server);
    expect(
      externals(server).map((d) => d.image),
      "no change back to what the late list saw",
    ).toEqual([`${repo}:1.4.3`]);
  });
});
