/**
 * The poller's loop and decisions, over the real store and deployer with the
 * fake swarm, registry and clock: no test here sleeps.
 */
import { describe, expect, it } from "vitest";
import { RegistryError } from "../../server/registry/registry-port.js";
import { deployThroughWebhook } from "../helpers/api-client.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeRegistry } from "../helpers/fake-registry.js";
import { createTestServer, pushAcmeWeb, registryPush, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const host = "127.0.0.1:5000";
const repo = `${host}/acme/web`;
const ref = (tag: string, repository = "acme/web") => ({ registry: host, repository, tag });

function pollServer(env: Record<string, string> = {}, opts: { clock?: FakeClock } = {}) {
  const server = createTestServer({ SLEEP_TIME: "30s", ...env }, opts);
  return { server, clock: server.clock };
}

const deploymentsOf = (server: TestServer, service: string) => server.history.list({ service, limit: 50 }).items;

async function settle(server: TestServer) {
  await server.deployer.idle();
}

describe("the poll loop", () => {
  it("runs a cycle at start and the next one SLEEP_TIME after that cycle ended, never sooner", async () => {
    const { server, clock } = pollServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(1));
    server.poller.start();
    await clock.sleepCount(1);
    expect(server.registry.lookups).toEqual([`${repo}:live`]);
    expect(clock.sleeps).toEqual([30_000]);

    server.registry.push(ref("live"), sha(2));
    clock.advance(29_999);
    await new Promise((r) => setImmediate(r));
    expect(server.registry.lookups, "no second cycle before SLEEP_TIME has passed").toHaveLength(1);
    clock.advance(1);
    await clock.sleepCount(2);
    expect(server.registry.lookups).toHaveLength(2);
    await settle(server);
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:live@${sha(2)}`);
  });

  it("stops after the cycle under way, and no later cycle runs", async () => {
    const { server, clock } = pollServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(1));
    server.poller.start();
    await clock.sleepCount(1);
    await server.poller.stop();
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(server.registry.lookups).toHaveLength(1);
  });
});

describe("a poll cycle", () => {
  it("looks each distinct repo:tag up once, however many services run it", async () => {
    const { server } = pollServer();
    for (const name of ["a", "b", "c"]) server.swarm.addService({ name, image: `${repo}:live@${sha(1)}` });
    server.swarm.addService({ name: "d", image: `${repo}:canary@${sha(1)}` });
    server.registry.push(ref("live"), sha(1));
    server.registry.push(ref("canary"), sha(1));
    const result = await server.poller.runOnce();
    expect(server.registry.lookups.sort()).toEqual([`${repo}:canary`, `${repo}:live`]);
    expect(result).toMatchObject({ services: 4, lookups: 2, deployments: [] });
  });

  it("deploys a moved tag through the deployer as trigger poll by the poller, resolving it only once, and records missed_webhook", async () => {
    const { server } = pollServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    const { deployments } = await server.poller.runOnce();
    expect(deployments).toHaveLength(1);
    const done = await waitForFinal(server, deployments[0]!);
    expect(done).toMatchObject({
      status: "succeeded",
      trigger: "poll",
      requestedBy: "poller",
      digest: sha(2),
      previousImage: `${repo}:live@${sha(1)}`,
    });
    expect(server.store.listEvents(done.id)[0]?.message).toContain("missed_webhook");
    expect(server.registry.lookups, "the deployer used the poller's digest").toHaveLength(1);
    expect(await server.metrics.registry.getSingleMetricAsString("deployer_missed_webhooks_total")).toContain(`registry="${host}"} 1`);
  });

  it("deploys a push whose webhook came while the engine was down without counting it as a missed webhook", async () => {
    const { server } = pollServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    server.swarm.setUnavailable(true);
    const token = await server.tokens.signWebhookToken({ sub: "ci", repos: [`${host}/acme/*`] });
    const res = await server.request("/hooks/registry", {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      json: registryPush({ host, repository: "acme/web", tag: "live", digest: sha(2) }),
    });
    expect(((await res.json()) as { ignored: Array<{ reason: string }> }).ignored).toEqual([
      expect.objectContaining({ reason: "engine_unavailable" }),
    ]);
    server.swarm.setUnavailable(false);
    const { deployments } = await server.poller.runOnce();
    const done = await waitForFinal(server, deployments[0]!);
    expect(done).toMatchObject({ status: "succeeded", trigger: "poll", digest: sha(2) });
    expect(server.store.listEvents(done.id)[0]?.message).toMatch(/a webhook brought .* when no service could be matched to it/);
    expect(await server.metrics.registry.getSingleMetricAsString("deployer_missed_webhooks_total")).not.toMatch(/} 1/);
  });

  it("changes nothing when the tag still points at the running digest: no update, the version stays", async () => {
    const { server } = pollServer();
    const { version } = server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(1));
    for (let i = 0; i < 3; i++) expect((await server.poller.runOnce()).deployments).toEqual([]);
    expect(server.swarm.callsOf("updateService")).toEqual([]);
    expect((await server.swarm.findService("web"))?.version).toBe(version);
    expect(deploymentsOf(server, "web")).toEqual([]);
  });

  it("leaves disabled, ignorelisted, filtered-out, digest-pinned and held services alone without looking their tags up", async () => {
    const { server } = pollServer({ FILTER_SERVICES: "label=autodeploy", IGNORELIST_SERVICES: "ignored other" });
    const labels = { autodeploy: "yes" };
    server.swarm.addService({ name: "ignored", image: `${repo}:a`, labels });
    server.swarm.addService({ name: "unlabelled", image: `${repo}:b` });
    server.swarm.addService({ name: "disabled", image: `${repo}:c`, labels: { ...labels, "deployer.enable": "false" } });
    server.swarm.addService({ name: "pinned", image: `${repo}@${sha(1)}`, labels });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}`, labels });
    for (const tag of ["a", "b", "c", "latest", "live"]) server.registry.push(ref(tag), sha(9));
    const first = await server.poller.runOnce();
    expect(server.registry.lookups).toEqual([`${repo}:live`]);
    await waitForFinal(server, first.deployments[0]!);
    server.holds.hold("web", first.deployments[0]!, "rolled back by hand", "ops");
    server.registry.push(ref("live"), sha(10));
    expect((await server.poller.runOnce()).lookups).toBe(0);
    for (const name of ["ignored", "unlabelled", "disabled", "pinned"]) {
      expect(deploymentsOf(server, name), name).toEqual([]);
    }
    expect((await server.swarm.findService("pinned"))?.image).toBe(`${repo}@${sha(1)}`);
  });

  it("does not queue a second deployment while one for the service is under way", async () => {
    const { server } = pollServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    expect((await server.poller.runOnce()).deployments).toHaveLength(1);
    expect((await server.poller.runOnce()).deployments).toEqual([]);
    await server.swarm.settle();
    await settle(server);
    expect(deploymentsOf(server, "web")).toHaveLength(1);
  });

  it("rolls a failing digest back once and does not deploy it again in later cycles", async () => {
    const { server } = pollServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}`, failureAction: "rollback" });
    server.swarm.failImage(`${repo}:live@${sha(3)}`);
    server.registry.push(ref("live"), sha(3));
    const { deployments } = await server.poller.runOnce();
    expect((await waitForFinal(server, deployments[0]!)).status).toBe("rolled_back");
    for (let i = 0; i < 3; i++) expect((await server.poller.runOnce()).deployments).toEqual([]);
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("calls a deploy of a digest a webhook already brought a retry, not a missed webhook", async () => {
    // The webhook's deployment gives up on the registry at once, so that it fails before the poller runs.
    const { server } = pollServer({ DEPLOYER_REGISTRY_RETRY: "0" });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    // The webhook arrives while the registry is down: its deployment fails, not for the digest's sake.
    server.registry.failWith(new RegistryError("unreachable", "registry down"));
    const [failed] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(2) });
    expect(failed?.status).toBe("failed");
    server.registry.failWith(undefined);
    const { deployments } = await server.poller.runOnce();
    const events = server.store.listEvents(deployments[0]!);
    expect(events[0]?.message).toContain(`a webhook brought ${sha(2)} in ${failed!.id}`);
    expect(await server.metrics.registry.getSingleMetricAsString("deployer_missed_webhooks_total")).not.toMatch(/} 1/);
  });

  it("logs a registry error for one image and still deploys the others", async () => {
    const { server } = pollServer();
    server.swarm.addService({ name: "gone", image: `${repo}:missing@${sha(1)}` });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.failTagWith(ref("missing"), new RegistryError("not_found", "manifest unknown"));
    server.registry.push(ref("live"), sha(2));
    const { deployments } = await server.poller.runOnce();
    expect(deployments).toHaveLength(1);
    expect(server.logLines.join("")).toContain(
      "Error updating service gone! Image 127.0.0.1:5000/acme/web:missing does not exist or it is not available",
    );
  });

  it("survives an engine that does not answer, and deploys once it does", async () => {
    const { server } = pollServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    server.swarm.setUnavailable(true);
    expect(await server.poller.runOnce()).toMatchObject({ services: 0, deployments: [] });
    server.swarm.setUnavailable(false);
    expect((await server.poller.runOnce()).deployments).toHaveLength(1);
  });

  it("deploys a service scaled to zero without waiting on tasks that never come, and the next service as usual", async () => {
    const { server } = pollServer();
    server.swarm.addService({ name: "cron", image: `${repo}:live@${sha(1)}`, replicas: 0 });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}`, failureAction: "rollback" });
    server.swarm.failImage(`${repo}:live@${sha(2)}`);
    server.registry.push(ref("live"), sha(2));
    const { deployments } = await server.poller.runOnce();
    const outcomes = await Promise.all(deployments.map((id) => waitForFinal(server, id)));
    expect(Object.fromEntries(outcomes.map((d) => [d.service, d.status]))).toEqual({ cron: "succeeded", web: "rolled_back" });
  });

  it("does not take a service back to the digest it looked up when someone deployed a newer one meanwhile", async () => {
    const { server } = pollServer();
    const registry = server.registry as FakeRegistry;
    const resolve = registry.resolveDigest.bind(registry);
    let looked = false;
    registry.resolveDigest = async (r) => {
      const found = await resolve(r);
      if (!looked) {
        looked = true;
        // While the cycle asked, sha(3) was pushed and deployed by its webhook: the cycle's answer is already old.
        const [done] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(3) });
        expect(done?.status).toBe("succeeded");
      }
      return found;
    };
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    registry.push(ref("live"), sha(2));
    expect((await server.poller.runOnce()).deployments).toEqual([]);
    await settle(server);
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:live@${sha(3)}`);
    expect(deploymentsOf(server, "web").map((d) => d.trigger)).toEqual(["registry"]);
  });

  it("queues nothing over a deployment of the service that started after the cycle looked its tag up", async () => {
    const { server } = pollServer({}, { clock: new FakeClock() });
    const registry = server.registry as FakeRegistry;
    const resolve = registry.resolveDigest.bind(registry);
    const find = server.swarm.findService.bind(server.swarm);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let lookups = 0;
    // The cycle's lookup answers sha(2); the webhook's deployment, started next, waits on its own lookup,
    // so it is under way while the service still runs sha(1).
    registry.resolveDigest = async (r) => {
      if (++lookups > 1) await held;
      return resolve(r);
    };
    let webhook: string | undefined;
    server.swarm.findService = async (idOrName) => {
      if (!webhook) {
        webhook = "posting";
        registry.push(ref("live"), sha(3));
        webhook = (await pushAcmeWeb(server, "live", sha(3))).deployments[0]!.id;
        await expect.poll(() => server.store.getDeployment(webhook!).status).toBe("running");
      }
      return find(idOrName);
    };
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    registry.push(ref("live"), sha(2));
    expect((await server.poller.runOnce()).deployments).toEqual([]);
    expect((await find("web"))?.image, "the webhook's deployment had not touched the service").toBe(`${repo}:live@${sha(1)}`);
    release();
    await server.swarm.settle();
    await settle(server);
    expect((await waitForFinal(server, webhook!)).status).toBe("succeeded");
    expect((await find("web"))?.image).toBe(`${repo}:live@${sha(3)}`);
    expect(deploymentsOf(server, "web")).toHaveLength(1);
  });

  it("shrugs off a service removed while the cycle looked its tag up", async () => {
    const server = createTestServer();
    const registry = server.registry as FakeRegistry;
    const resolve = registry.resolveDigest.bind(registry);
    registry.resolveDigest = async (r) => {
      server.swarm.removeService("web");
      return resolve(r);
    };
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    registry.push(ref("live"), sha(2));
    expect((await server.poller.runOnce()).deployments).toEqual([]);
    expect(deploymentsOf(server, "web")).toEqual([]);
  });
});

describe("the pull budget", () => {
  it("deploys from a rate-limited registry only down to the reserve, then leaves it alone while other registries go on", async () => {
    const { server, clock } = pollServer();
    server.registry.setRateLimit("docker.io", { limit: 100, remaining: 12, windowSeconds: 21_600 });
    server.swarm.addService({ name: "one", image: `acme/one:latest@${sha(1)}`, replicas: 1 });
    server.swarm.addService({ name: "two", image: `acme/two:latest@${sha(1)}`, replicas: 2 });
    server.swarm.addService({ name: "local", image: `${repo}:live@${sha(1)}` });
    for (const name of ["acme/one", "acme/two"]) server.registry.push({ registry: "docker.io", repository: name, tag: "latest" }, sha(2));
    server.registry.push(ref("live"), sha(2));
    // Twelve left, ten kept in reserve: "one" costs one pull, "two" would cost two more.
    const first = await server.poller.runOnce();
    const deployed = first.deployments.map((id) => server.store.getDeployment(id).service).sort();
    expect(deployed).toEqual(["local", "one"]);
    expect(server.logLines.join("")).toContain("pull budget of the registry spent");

    server.registry.push(ref("live"), sha(3));
    await settle(server);
    clock.advance(30_000);
    const lookupsBefore = server.registry.lookups.length;
    const second = await server.poller.runOnce();
    expect(server.registry.lookups.slice(lookupsBefore), "docker.io rests; the local registry does not").toEqual([`${repo}:live`]);
    expect(second.deployments).toHaveLength(1);
    // The reserve refills after window/limit × reserve = 36 minutes.
    clock.advance(36 * 60_000);
    server.registry.setRateLimit("docker.io", { limit: 100, remaining: 80, windowSeconds: 21_600 });
    await settle(server);
    const third = await server.poller.runOnce();
    expect(third.deployments.map((id) => server.store.getDeployment(id).service)).toEqual(["two"]);
  });

  it("rests a registry that answered 429", async () => {
    const { server, clock } = pollServer();
    server.swarm.addService({ name: "one", image: `acme/one:latest@${sha(1)}` });
    server.registry.failWith(new RegistryError("rate_limited", "toomanyrequests"));
    await server.poller.runOnce();
    server.registry.failWith(undefined);
    clock.advance(30_000);
    expect((await server.poller.runOnce()).lookups).toBe(0);
  });
});
