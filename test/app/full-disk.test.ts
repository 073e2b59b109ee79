import { describe, expect, it } from "vitest";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import { diskFull, fillDatabase, failCommits, refuseTransitions } from "../helpers/storage-faults.js";
import { countRows, createTestServer, registryPush, ROLLOUT_POLL_MS, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";

async function push(server: TestServer, digest: string) {
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
  server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, digest);
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(registryPush({ repository: "acme/web", tag: "v1", digest })),
  });
  return { status: res.status, json: (await res.json()) as { deployments?: Array<{ id: string }>; error?: { code: string; message: string } } };
}

async function until(what: string, ok: () => boolean) {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!ok()) throw new Error(`never saw ${what}`);
}

describe("a database that cannot be written (disk full or failing)", () => {
  it("answers writes 503 in the envelope, writes nothing, keeps the deployment under way, and finishes it once space returns", async () => {
    const swarm = new FakeSwarm(); // rollouts move only when the test ticks
    const clock = new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    const server = createTestServer({}, { swarm, clock });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, replicas: 1 });

    const underWay = await push(server, sha(2));
    expect(underWay.status).toBe(202);
    const id = underWay.json.deployments![0]!.id;
    await until("the update sent", () => server.store.getDeployment(id).updateSentAt !== null);

    const disk = fillDatabase(server);
    const rows = () => [countRows(server, "triggers"), countRows(server, "deployments"), countRows(server, "deployment_events")];
    const before = rows();
    // The rollout ends while nothing can be recorded: the deployer waits for space instead of failing or crashing.
    await swarm.settle();
    await until("the deployer waiting for space", () => clock.sleeps.includes(1000));
    expect(server.store.getDeployment(id).status).toBe("running");

    const refused = await push(server, sha(3));
    expect(refused.status).toBe(503);
    expect(refused.json.error?.code).toBe("UNAVAILABLE");
    expect(refused.json.error?.message).toMatch(/disk is full or failing/);
    expect(rows()).toEqual(before);
    expect(server.logLines.join("")).toContain("SQLITE_READONLY");

    disk.lift();
    clock.advance(1000);
    const ended = await waitForFinal(server, id);
    expect(ended.status).toBe("succeeded");
    expect(ended.digest).toBe(sha(2));

    const again = await push(server, sha(4));
    expect(again.status).toBe(202);
    const next = server.deployer.idle();
    await swarm.settle();
    await next;
    expect((await waitForFinal(server, again.json.deployments![0]!.id)).digest).toBe(sha(4));
    expect((await swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(4)}`);
  });

  it("leaves no trace of a refused push in the service's lane: the next push deploys, and the one that waited still runs", async () => {
    const swarm = new FakeSwarm();
    const server = createTestServer({}, { swarm });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, replicas: 1 });

    // Nothing under way: the refused push must not stay the lane's active deployment.
    const disk = failCommits(server);
    expect((await push(server, sha(2))).status).toBe(503);
    disk.lift();
    const idle = await push(server, sha(3));
    expect(idle.status).toBe(202);
    await until("the update sent", () => server.store.getDeployment(idle.json.deployments![0]!.id).updateSentAt !== null);

    // One running, one waiting: the refused push must not supersede the waiting one for good.
    const waiting = await push(server, sha(4));
    expect(waiting.json.deployments![0]).toMatchObject({ status: "queued" });
    const again = failCommits(server);
    expect((await push(server, sha(5))).status).toBe(503);
    again.lift();
    const done = server.deployer.idle();
    for (let i = 0; i < 100 && server.store.findUnfinished().length > 0; i++) {
      await swarm.settle();
      await new Promise((r) => setTimeout(r, 5));
    }
    await done;
    const ended = await waitForFinal(server, waiting.json.deployments![0]!.id);
    expect(ended.status).toBe("succeeded");
    // Resolved when it ran: the registry's tag names the refused push's digest by then, and that is what runs.
    expect(ended.digest).toBe(sha(5));
    expect((await swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(5)}`);
  });

  it("records a failed rollout's end and the quarantine of its digest together: a refused quarantine is retried with it, and announced once", async () => {
    const clock = new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    const server = createTestServer({}, { clock });
    server.swarm.addService({ name: "web", image: `${repo}:v1`, failureAction: "rollback" });
    server.swarm.failImage(`${repo}:v1@${sha(6)}`, "task: non-zero exit (3)");
    const real = server.holds.quarantine.bind(server.holds);
    let refused = 0;
    server.holds.quarantine = (...args: Parameters<typeof real>) => {
      if (refused++ === 0) throw diskFull();
      return real(...args);
    };
    const announced: string[] = [];
    server.deployer.onFinished((d) => void announced.push(d.status));
    const id = (await push(server, sha(6))).json.deployments![0]!.id;
    await until("the quarantine refused", () => refused === 1);
    // Nothing of the end was kept: the deployment is still under way, and the deployer waits for space.
    expect(server.store.getDeployment(id).status).toBe("running");
    await until("the deployer waiting for space", () => clock.sleeps.includes(1000));
    clock.advance(1000);
    expect((await waitForFinal(server, id)).status).toBe("rolled_back");
    expect(server.holds.findQuarantine("web", sha(6))).toMatchObject({ deploymentId: id });
    await server.deployer.idle();
    expect(announced).toEqual(["rolled_back"]);
  });

  it("follows an update the engine took but the database refused to record to its end, instead of taking the service for one already there", async () => {
    const swarm = new FakeSwarm(); // rollouts move only when the test ticks
    const clock = new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    const server = createTestServer({}, { swarm, clock });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, replicas: 1 });
    refuseTransitions(server, (patch) => !!patch.updateSentAt, 1);
    const id = (await push(server, sha(2))).json.deployments![0]!.id;
    await until("the deployer waiting for space", () => clock.sleeps.includes(1000));
    expect(swarm.callsOf("updateService")).toHaveLength(1);
    expect(server.store.getDeployment(id).updateSentAt).toBeNull();
    clock.advance(1000);
    await until("the rollout followed", () => server.store.getDeployment(id).updateSentAt !== null);
    await swarm.settle();
    const ended = await waitForFinal(server, id);
    expect(ended).toMatchObject({ status: "succeeded", pinnedImage: `${repo}:v1@${sha(2)}` });
    expect(server.store.listEvents(id).map((e) => e.message)).toContain(
      `the engine took the update to ${repo}:v1@${sha(2)} (service version 101) before this deployment could record it; following it`,
    );
    expect(swarm.callsOf("updateService"), "the update is not sent twice").toHaveLength(1);
  });

  it("does not take its own update, which the database refused to record, for someone else's change while the write waits for space", async () => {
    const swarm = new FakeSwarm(); // rollouts move only when the test ticks
    const clock = new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    const server = createTestServer({}, { swarm, clock });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, replicas: 1 });
    server.drift.start();
    await server.drift.settled();
    refuseTransitions(server, (patch) => !!patch.updateSentAt, 1);
    const id = (await push(server, sha(2))).json.deployments![0]!.id;
    await until("the deployer waiting for space", () => clock.sleeps.includes(1000));
    // The engine's event for the update reaches the drift watcher before the deployment could record the update.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    await server.drift.settled();
    clock.advance(1000);
    await until("the rollout followed", () => server.store.getDeployment(id).updateSentAt !== null);
    await swarm.settle();
    expect(await waitForFinal(server, id)).toMatchObject({ status: "succeeded", pinnedImage: `${repo}:v1@${sha(2)}` });
    await server.drift.settled();
    expect(server.history.list({ limit: 10, trigger: "external" }).items, "no external deployment for our own update").toEqual([]);
    await server.drift.stop();
  });

  it("after a restart, follows the update it sent but could not record, and leaves someone else's update of the same digest to them", async () => {
    const swarm = new FakeSwarm(); // rollouts move only when the test ticks
    const clock = new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    const first = createTestServer({}, { swarm, clock });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, replicas: 2 });
    refuseTransitions(first, (patch) => !!patch.updateSentAt);
    const id = (await push(first, sha(2))).json.deployments![0]!.id;
    await until("the deployer waiting for space", () => clock.sleeps.includes(1000));
    // The process ends there; the engine goes on with the update it took.
    first.deployer.stop();
    await swarm.tick();
    expect((await swarm.findService("web"))?.updateStatus?.state).toBe("updating");
    const second = createTestServer({}, { swarm, dbPath: first.dbPath });
    expect(second.deployer.reconcile()).toBe(1);
    await until("the rollout followed", () => second.store.getDeployment(id).updateSentAt !== null);
    await swarm.settle();
    expect(await waitForFinal(second, id)).toMatchObject({ status: "succeeded", pinnedImage: `${repo}:v1@${sha(2)}` });
    expect(swarm.callsOf("updateService"), "the update is not sent twice").toHaveLength(1);

    // Someone rolls the service to a digest by hand; the push of that digest, which never ran before, leaves it to them.
    const web = (await swarm.findService("web"))!;
    await swarm.updateService(web.id, web.version, { image: `${repo}:v1@${sha(3)}` });
    await swarm.tick();
    const theirs = (await push(second, sha(3))).json.deployments![0]!.id;
    expect(await waitForFinal(second, theirs)).toMatchObject({ status: "skipped", message: `the service already runs ${sha(3)}` });
  });
});
