import { describe, expect, it, onTestFinished } from "vitest";
import { startCallbackReceiver } from "../helpers/callback-receiver.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { countRows, createTestServer, dockerHubPush, registryPush, runToFinal, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const ref = { registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" };

interface Answer {
  deployments: Array<{ id: string; service: string; status: string }>;
  ignored: Array<{ reason: string; service?: string; deployment?: string }>;
}

async function push(server: TestServer, digest: string, id?: string): Promise<Answer> {
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
  const body = registryPush({ repository: "acme/web", tag: "v1", digest });
  if (id) (body as { events: Array<{ id: string }> }).events[0]!.id = id;
  const res = await server.request("/hooks/registry", { method: "POST", headers: { authorization: `Bearer ${token}` }, json: body });
  expect(res.status).toBe(202);
  return (await res.json()) as Answer;
}

const coalescedInto = (answers: Answer[]) =>
  answers.flatMap((a) => a.ignored.filter((i) => i.reason === "coalesced").map((i) => `${i.service}->${i.deployment}`));

describe("a burst of events for one push", () => {
  it("ends 1,000 events of one push in one rollout per service, the other 999 recorded as coalesced", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.swarm.addService({ name: "web-canary", image: `${repo}:v1` });
    server.registry.push(ref, sha(1));
    const answers: Answer[] = [];
    // Eight at a time, as a registry's notification workers send them.
    for (let i = 0; i < 1000; i += 8) {
      answers.push(...(await Promise.all(Array.from({ length: 8 }, (_, j) => push(server, sha(1), `evt-${i + j}`)))));
    }
    const deployments = answers.flatMap((a) => a.deployments);
    expect(deployments.map((d) => d.service).sort()).toEqual(["web", "web-canary"]);
    const into = coalescedInto(answers);
    expect(into).toHaveLength(2 * 999);
    for (const d of deployments) expect(into.filter((c) => c === `${d.service}->${d.id}`)).toHaveLength(999);
    await server.swarm.settle();
    for (const d of deployments) expect((await waitForFinal(server, d.id)).status).toBe("succeeded");
    expect(server.swarm.callsOf("updateService")).toHaveLength(2);
    expect(countRows(server, "deployments")).toBe(2);
    expect(countRows(server, "triggers")).toBe(1000);
    const metrics = await (await server.request("/metrics")).text();
    expect(metrics).toContain('deployer_coalesced_events_total{trigger="registry"} 1998');
  });

  it("deploys a multi-arch push once when each platform's manifest is announced with the tag before the index", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    // The push is whole by the time the first deployment resolves: the tag names the index.
    const [amd64, arm64, index] = [sha(11), sha(12), sha(13)];
    server.registry.push(ref, index);
    // One notification envelope, as the registry batches them: each platform's manifest, then the index.
    const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
    const events = [amd64, arm64, index].flatMap((digest) => registryPush({ repository: "acme/web", tag: "v1", digest }).events);
    const res = await server.request("/hooks/registry", { method: "POST", headers: { authorization: `Bearer ${token}` }, json: { events } });
    const answers = [(await res.json()) as Answer];
    // One deployment, still resolving the tag when the others came: it covers them, whatever digest each names.
    const [deployment, ...more] = answers.flatMap((a) => a.deployments);
    expect(more).toEqual([]);
    expect(coalescedInto(answers)).toEqual([`web->${deployment!.id}`, `web->${deployment!.id}`]);
    const done = await runToFinal(server, deployment!.id);
    expect([done.status, done.digest]).toEqual(["succeeded", index]);
    expect(server.store.listEvents(done.id).map((e) => e.message)).toContain(
      "another push of 127.0.0.1:5000/acme/web:v1 came while resolving it; resolving again",
    );
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:v1@${index}`);
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("rolls a multi-arch push out once when its events come one by one, the tag deciding at deploy time", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    const [amd64, arm64, index] = [sha(11), sha(12), sha(13)];
    server.registry.push(ref, index);
    const first = (await push(server, amd64)).deployments[0]!;
    for (let i = 0; i < 50 && !server.store.getDeployment(first.id).digest; i++) {
      server.clock.advance(2);
      await new Promise((r) => setImmediate(r));
    }
    expect(server.store.getDeployment(first.id).digest).toBe(index);
    // The first resolved the tag already: an event naming another digest may be a newer push, so it waits its turn;
    // the index's own event names the digest under way and joins it.
    const follower = (await push(server, arm64)).deployments[0]!;
    expect(coalescedInto([await push(server, index)])).toEqual([`web->${first.id}`]);
    await server.swarm.settle();
    expect((await waitForFinal(server, first.id)).status).toBe("succeeded");
    const after = await runToFinal(server, follower.id);
    expect([after.status, after.message]).toEqual(["skipped", `the service already runs ${index}`]);
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("still deploys a newer push that comes while a burst's rollout runs", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref, sha(1));
    const first = await push(server, sha(1));
    await expect.poll(() => server.store.getDeployment(first.deployments[0]!.id).digest).toBe(sha(1));
    const retry = await push(server, sha(1));
    expect(coalescedInto([retry])).toEqual([`web->${first.deployments[0]!.id}`]);
    server.registry.push(ref, sha(2));
    const newer = await push(server, sha(2));
    expect(newer.deployments.map((d) => d.status)).toEqual(["queued"]);
    await server.swarm.settle();
    await waitForFinal(server, first.deployments[0]!.id);
    await server.swarm.settle();
    expect((await waitForFinal(server, newer.deployments[0]!.id)).status).toBe("succeeded");
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(2)}`);
  });

  it("answers a coalesced Docker Hub push's callback once the deployment it joined has ended", async () => {
    const cb = await startCallbackReceiver();
    onTestFinished(() => cb.close());
    const server = createTestServer({ DEPLOYER_CALLBACK_HOSTS: cb.host }, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: "acme/web:latest" });
    server.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(1));
    const token = await server.tokens.signWebhookToken({ sub: "docker-hub", repos: ["acme/*"] });
    const hub = async (pushedAt: number) => {
      const res = await server.request(`/hooks/dockerhub/${token}`, {
        method: "POST",
        json: dockerHubPush({ repoName: "acme/web", tag: "latest", pushedAt, callbackUrl: cb.url() }),
      });
      return (await res.json()) as Answer;
    };
    // The registry answers the first lookup only once both pushes are in: the second comes while the first resolves.
    const resolve = server.registry.resolveDigest.bind(server.registry);
    let release!: () => void;
    const bothIn = new Promise<void>((r) => (release = r));
    server.registry.resolveDigest = async (ref) => {
      await bothIn;
      return resolve(ref);
    };
    const a = await hub(1_700_000_000);
    const b = await hub(1_700_000_001);
    release();
    const own = [...a.deployments, ...b.deployments];
    expect(own).toHaveLength(1);
    expect(coalescedInto([a, b])).toEqual([`web->${own[0]!.id}`]);
    expect(cb.received).toHaveLength(0);
    await server.swarm.settle();
    await waitForFinal(server, own[0]!.id);
    const calls = await cb.waitForCount(2);
    for (const call of calls) expect(call.body).toMatchObject({ state: "success", description: expect.stringContaining("web: succeeded") });
  });
});
