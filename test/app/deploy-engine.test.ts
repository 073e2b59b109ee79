import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { RegistryError } from "../../server/registry/registry-port.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import { countRows, createTestServer, ROLLOUT_POLL_MS, runToFinal, sha, waitForFinal, type TestServer, pushAcmeWeb } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const ref = (tag: string) => ({ registry: "127.0.0.1:5000", repository: "acme/web", tag });

const push = pushAcmeWeb;

/** Resolves once the server asked its fake clock for the `n`th wait of `ms`. */
async function untilSlept(server: TestServer, ms: number, n: number) {
  for (let i = 0; i < 1000 && server.clock.sleeps.filter((s) => s === ms).length < n; i++) await new Promise((r) => setTimeout(r, 2));
  expect(server.clock.sleeps.filter((s) => s === ms).length, `waits of ${ms} ms`).toBeGreaterThanOrEqual(n);
}

/** Resolves once the deployment resolved its tag (time stands still, so its rollout then waits for the fake swarm). */
async function untilResolved(server: TestServer, id: string) {
  for (let i = 0; i < 1000 && !server.store.getDeployment(id).digest; i++) await new Promise((r) => setTimeout(r, 2));
  expect(server.store.getDeployment(id).digest).not.toBeNull();
}

/**
 * A rollout under TIMEOUT=1 on a swarm off the clock (advancing time moves no rollout step, so it finishes only when
 * the test settles the swarm), once it has looked once and waits for its next poll.
 */
async function rolloutUnderOneSecondTimeout() {
  const clock = new FakeClock();
  const server = createTestServer({ TIMEOUT: "1" }, { clock, swarm: new FakeSwarm() });
  server.swarm.addService({ name: "web", image: `${repo}:v1` });
  server.registry.push(ref("v1"), sha(9));
  const id = (await push(server, "v1", sha(9))).deployments[0]!.id;
  await clock.sleepCount(1);
  return { clock, server, id };
}

const timeline = (server: TestServer, id: string) => server.store.listEvents(id).map((e) => `${e.status}: ${e.message}`);

describe("the deploy engine", () => {
  it("coalesces a push into the deployment that waits for the same tag, which deploys the newest digest", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref("v1"), sha(1));
    const first = await push(server, "v1", sha(1));
    // Time stands still, so the first rollout hangs until the fake swarm is ticked and the next pushes wait behind it.
    server.registry.push(ref("v1"), sha(2));
    const second = await push(server, "v1", sha(2));
    expect(second.deployments[0]!.status).toBe("queued");
    server.registry.push(ref("v1"), sha(3));
    const third = await push(server, "v1", sha(3));
    // The waiting deployment resolves the tag when it starts, after this push: it covers it.
    expect(third.deployments).toEqual([]);
    expect(third.ignored).toEqual([{ reason: "coalesced", service: "web", image: `${repo}:v1`, deployment: second.deployments[0]!.id }]);
    await server.swarm.settle();
    expect((await waitForFinal(server, first.deployments[0]!.id)).status).toBe("succeeded");
    // The tag names sha(3), not the payload's sha(2): it is looked at again, in fake time, before the newer digest wins.
    const two = await runToFinal(server, second.deployments[0]!.id);
    expect(two.status, timeline(server, two.id).join("\n")).toBe("succeeded");
    expect(two.digest).toBe(sha(3));
    expect(timeline(server, two.id).join("\n")).toContain(`the payload named ${sha(2)}, which the tag does not point to`);
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(3)}`);
    expect(server.swarm.callsOf("updateService")).toHaveLength(2);
    expect(countRows(server, "deployments")).toBe(2);
  });

  it("lets a deploy by hand replace the waiting deployment, which ends superseded, on disk by the time it is answered", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref("v1"), sha(1));
    const first = await push(server, "v1", sha(1)); // running; the fake swarm holds it until ticked, as time stands still
    server.registry.push(ref("v1"), sha(2));
    const waiting = await push(server, "v1", sha(2));
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:write"] });
    const reader = new Database(server.dbPath, { readonly: true });
    try {
      const res = await server.request("/api/services/web/deploy", {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        json: { digest: sha(5) },
      });
      expect(res.status).toBe(202);
      const byHand = ((await res.json()) as { deployment: { id: string } }).deployment.id;
      // Another connection sees only what was committed.
      const onDisk = reader.prepare("select status, message from deployments where id = ?").get(waiting.deployments[0]!.id);
      expect(onDisk).toEqual({ status: "superseded", message: `superseded by ${byHand}, a newer request for this service` });
      await server.swarm.settle();
      await waitForFinal(server, first.deployments[0]!.id);
      await server.swarm.settle();
      expect((await waitForFinal(server, byHand)).status).toBe("succeeded");
    } finally {
      reader.close();
    }
  });

  it("records concurrent pushes of a tag as coalesced, on disk, by the time they are answered", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref("v1"), sha(1));
    await push(server, "v1", sha(1)); // running
    const reader = new Database(server.dbPath, { readonly: true });
    try {
      server.registry.push(ref("v1"), sha(4));
      const answers = await Promise.all([push(server, "v1", sha(2)), push(server, "v1", sha(3)), push(server, "v1", sha(4))]);
      const queued = answers.flatMap((a) => a.deployments);
      expect(queued.map((d) => d.status)).toEqual(["queued"]);
      const coalesced = answers.flatMap((a) => a.ignored);
      expect(coalesced).toHaveLength(2);
      for (const c of coalesced) expect(c).toMatchObject({ reason: "coalesced", deployment: queued[0]!.id });
      const rows = reader.prepare("select deployment_id as id from coalesced_events").all();
      expect(rows).toEqual([{ id: queued[0]!.id }, { id: queued[0]!.id }]);
      expect(countRows(server, "deployments")).toBe(2);
      expect(countRows(server, "triggers")).toBe(4);
    } finally {
      reader.close();
    }
  });

  it("coalesces a push of the digest already being deployed, already queued or already deployed", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref("v1"), sha(1));
    const first = await push(server, "v1", sha(1));
    await untilResolved(server, first.deployments[0]!.id);
    const again = await push(server, "v1", sha(1));
    expect(again.deployments).toEqual([]);
    expect(again.ignored).toEqual([{ reason: "coalesced", service: "web", image: `${repo}:v1`, deployment: first.deployments[0]!.id }]);
    server.registry.push(ref("v1"), sha(2));
    const queued = await push(server, "v1", sha(2));
    const queuedAgain = await push(server, "v1", sha(2));
    expect(queued.deployments[0]!.status).toBe("queued");
    expect(queuedAgain.ignored).toMatchObject([{ reason: "coalesced", deployment: queued.deployments[0]!.id }]);
    await server.swarm.settle();
    await waitForFinal(server, first.deployments[0]!.id);
    await server.swarm.settle();
    expect((await waitForFinal(server, queued.deployments[0]!.id)).status).toBe("succeeded");
    // Done and still running on the service: a late retry of that push is coalesced into it too.
    const late = await push(server, "v1", sha(2));
    expect(late.ignored).toMatchObject([{ reason: "coalesced", deployment: queued.deployments[0]!.id }]);
    expect(countRows(server, "deployments")).toBe(2);
    // A push naming no digest while nothing waits gets a deployment of its own: only the tag can tell.
    const ciToken = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
    const ci = await server.request("/hooks/ci", { method: "POST", headers: { authorization: `Bearer ${ciToken}` }, json: { image: `${repo}:v1` } });
    const [own] = ((await ci.json()) as { deployments: Array<{ id: string }> }).deployments;
    const skipped = await waitForFinal(server, own!.id);
    expect([skipped.status, skipped.message]).toEqual(["skipped", `the service already runs ${sha(2)}`]);
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] });
    const detail = await server.request(`/api/deployments/${queued.deployments[0]!.id}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await detail.json()) as { coalesced: { count: number; latest: Array<{ trigger: string }> } };
    expect(body.coalesced.count).toBe(2);
    expect(countRows(server, "deployments")).toBe(3);
    expect(body.coalesced.latest.map((c) => c.trigger)).toEqual(["registry", "registry"]);
    expect(server.swarm.callsOf("updateService")).toHaveLength(2);
  });

  it("skips without an update when the service already runs the resolved digest", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}` });
    server.registry.push(ref("v1"), sha(1));
    const res = await push(server, "v1", sha(1));
    const done = await waitForFinal(server, res.deployments[0]!.id);
    expect(done.status).toBe("skipped");
    expect(done.message).toContain("already runs");
    expect(server.swarm.callsOf("updateService")).toEqual([]);
  });

  it("marks the deployment rolled_back when swarm rolls back, keeps the task error and quarantines the digest", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1`, failureAction: "rollback" });
    server.registry.push(ref("v1"), sha(6));
    server.swarm.failImage(`${repo}:v1@${sha(6)}`, "task: non-zero exit (3)");
    const res = await push(server, "v1", sha(6));
    const done = await waitForFinal(server, res.deployments[0]!.id);
    expect(done.status, timeline(server, done.id).join("\n")).toBe("rolled_back");
    expect(done.message).toContain("non-zero exit (3)");
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:v1`);

    const retry = await push(server, "v1", sha(6));
    const skipped = await waitForFinal(server, retry.deployments[0]!.id);
    expect(skipped.status).toBe("skipped");
    expect(skipped.message).toContain("quarantined");
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("marks the deployment failed when swarm pauses the update", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1`, failureAction: "pause" });
    server.registry.push(ref("v1"), sha(7));
    server.swarm.failImage(`${repo}:v1@${sha(7)}`, "task: non-zero exit (1)");
    const done = await waitForFinal(server, (await push(server, "v1", sha(7))).deployments[0]!.id);
    expect(done.status).toBe("failed");
    expect(done.message).toMatch(/paused.*non-zero exit \(1\)/);
    expect(server.swarm.callsOf("rollbackService")).toEqual([]);
  });

  it("rolls back itself after a paused update when ROLLBACK_ON_FAILURE is on", async () => {
    const server = createTestServer({ ROLLBACK_ON_FAILURE: "true" });
    server.swarm.addService({ name: "web", image: `${repo}:v1`, failureAction: "pause" });
    server.registry.push(ref("v1"), sha(8));
    server.swarm.failImage(`${repo}:v1@${sha(8)}`);
    const done = await waitForFinal(server, (await push(server, "v1", sha(8))).deployments[0]!.id);
    expect(done.status, timeline(server, done.id).join("\n")).toBe("rolled_back");
    expect(server.swarm.callsOf("rollbackService")).toHaveLength(1);
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:v1`);
  });

  it("with ROLLBACK_ON_FAILURE, rolls back only its own update: a paused update someone else sent meanwhile is theirs", async () => {
    const clock = new FakeClock();
    const server = createTestServer({ ROLLBACK_ON_FAILURE: "true" }, { clock, swarm: new FakeSwarm() });
    server.swarm.addService({ name: "web", image: `${repo}:v1`, failureAction: "pause" });
    server.registry.push(ref("v1"), sha(34));
    const id = (await push(server, "v1", sha(34))).deployments[0]!.id;
    await clock.sleepCount(1); // our update is sent and followed
    // An operator's `docker service update --image …:v3`, which fails: swarm pauses it.
    server.swarm.failImage(`${repo}:v3`);
    const service = (await server.swarm.findService("web"))!;
    await server.swarm.updateService(service.id, service.version, { image: `${repo}:v3` });
    await server.swarm.settle();
    clock.advance(250);
    const done = await waitForFinal(server, id);
    expect(done.status, timeline(server, id).join("\n")).toBe("failed");
    expect(done.message).toBe(`the service's image was changed to ${repo}:v3 by someone else during the rollout`);
    expect(server.swarm.callsOf("rollbackService"), "their update is not rolled back by us").toEqual([]);
    expect(server.holds.findQuarantine("web", sha(34)), "our digest did nothing wrong").toBeUndefined();
  });

  it("fails a rollout that does not finish within TIMEOUT, on the server's clock", async () => {
    const { clock, server, id } = await rolloutUnderOneSecondTimeout();
    clock.advance(999);
    await clock.sleepCount(2);
    expect(server.store.getDeployment(id).status).toBe("running");
    clock.advance(2); // the next poll is due past TIMEOUT, and no real second has passed
    const done = await waitForFinal(server, id);
    expect(done.status).toBe("failed");
    expect(done.message).toContain("timed out after 1 s");
    expect(done.finishedAt! - done.startedAt!).toBe(1001);
  });

  it("does not count time the engine could not be asked against TIMEOUT: a rollout that finished meanwhile succeeds", async () => {
    const { clock, server, id } = await rolloutUnderOneSecondTimeout();
    server.swarm.setUnavailable(true);
    clock.advance(600);
    await clock.sleepCount(2); // looked, and could not ask
    await server.swarm.settle(); // swarm finishes the rollout on its own
    clock.advance(600); // past TIMEOUT, 600 ms of it without an engine
    await clock.sleepCount(3);
    expect(server.store.getDeployment(id).status, timeline(server, id).join("\n")).toBe("running");
    server.swarm.setUnavailable(false);
    clock.advance(600);
    const done = await waitForFinal(server, id);
    expect(done.status, timeline(server, id).join("\n")).toBe("succeeded");
    expect(timeline(server, id)).toContain(
      "running: lost the Docker engine while following the rollout: cannot reach the Docker engine (FakeSwarm set unavailable)",
    );
  });

  it("ends a rollout whose engine stays out of reach for TIMEOUT as failed with its outcome unknown, and quarantines nothing", async () => {
    const { clock, server, id } = await rolloutUnderOneSecondTimeout();
    server.swarm.setUnavailable(true);
    // Looks every 400 ms of fake time; each waits for the one before to have asked and gone to sleep, or to have ended it.
    for (let look = 2; look < 10; look++) {
      clock.advance(400);
      await expect.poll(() => clock.sleeps.length >= look || server.store.getDeployment(id).status !== "running").toBe(true);
      if (server.store.getDeployment(id).status !== "running") break;
    }
    const done = await waitForFinal(server, id);
    expect(done).toMatchObject({ status: "failed", failureKind: "error" });
    expect(done.message).toMatch(
      /^lost the Docker engine for 1 s while following the rollout, so its outcome is unknown \(cannot reach the Docker engine/,
    );
    expect(server.holds.findQuarantine("web", sha(9))).toBeUndefined();
    expect(server.swarm.callsOf("rollbackService")).toEqual([]);
  });

  it("retries an update that lost a race with another writer", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.swarm.conflictOnce("web");
    server.registry.push(ref("v1"), sha(10));
    const done = await waitForFinal(server, (await push(server, "v1", sha(10))).deployments[0]!.id);
    expect(done.status).toBe("succeeded");
    expect(server.swarm.callsOf("updateService")).toHaveLength(2);
    expect(timeline(server, done.id).join("\n")).toContain("update out of sequence");
  });

  it("fails with the registry's reason when the tag cannot be resolved, touching nothing", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.failWith(new RegistryError("not_found", "manifest unknown"));
    const done = await waitForFinal(server, (await push(server, "v1", sha(11))).deployments[0]!.id);
    expect(done.status).toBe("failed");
    expect(done.message).toContain("manifest unknown");
    expect(server.swarm.callsOf("updateService")).toEqual([]);
  });

  it("keeps trying a registry that does not answer, and deploys once it does", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1`, replicas: 1 });
    server.registry.push(ref("v1"), sha(11));
    server.registry.failWith(new RegistryError("unreachable", "connect ECONNREFUSED 127.0.0.1:5000"));
    const id = (await push(server, "v1", sha(11))).deployments[0]!.id;
    await untilSlept(server, 1000, 1);
    server.clock.advance(1000);
    await untilSlept(server, 2000, 1);
    expect(server.store.getDeployment(id).status).toBe("running");
    server.registry.failWith(undefined);
    server.clock.advance(2000);
    const done = await waitForFinal(server, id);
    expect(done).toMatchObject({ status: "succeeded", digest: sha(11) });
    expect(timeline(server, id).join("\n")).toMatch(/could not reach the registry .*ECONNREFUSED.*trying again in 1 s[\s\S]*trying again in 2 s/);
  });

  it("gives up on a registry that does not answer after DEPLOYER_REGISTRY_RETRY, with its reason", async () => {
    const server = createTestServer({ DEPLOYER_REGISTRY_RETRY: "5s" });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.failWith(new RegistryError("unreachable", "connect ECONNREFUSED 127.0.0.1:5000"));
    const id = (await push(server, "v1", sha(12))).deployments[0]!.id;
    // 1 s, 2 s, then 4 s would pass the 5 s: it fails instead of waiting again.
    for (const ms of [1000, 2000]) {
      await untilSlept(server, ms, 1);
      server.clock.advance(ms);
    }
    const done = await waitForFinal(server, id);
    expect(done.status).toBe("failed");
    expect(done.message).toContain("ECONNREFUSED");
    expect(server.swarm.callsOf("updateService")).toEqual([]);
  });

  it("records the push and answers 202 when the Docker engine is unreachable; /readyz says which", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.swarm.setUnavailable(true);
    const res = await push(server, "v1", sha(12));
    expect(res.deployments).toEqual([]);
    expect(res.ignored).toEqual([expect.objectContaining({ reason: "engine_unavailable" })]);
    expect(countRows(server, "triggers")).toBe(1);
    const ready = await server.request("/readyz");
    const body = await ready.json();
    expect(ready.status).toBe(503);
    expect(body.checks).toMatchObject({ database: "ok", docker: expect.stringContaining("unavailable") });
  });

  it("serves the deployment with its timeline to an API token", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref("v1"), sha(13));
    const id = (await push(server, "v1", sha(13))).deployments[0]!.id;
    await waitForFinal(server, id);
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] });
    const res = await server.request(`/api/deployments/${id}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({
      id,
      service: "web",
      image: "127.0.0.1:5000/acme/web:v1",
      digest: sha(13),
      trigger: "registry",
      status: "succeeded",
      requestedBy: "ci",
    });
    const messages = body.events.map((e: { message: string }) => e.message).join("\n");
    for (const step of ["received registry push", "resolved", "update sent", "tasks running the new image"]) expect(messages).toContain(step);
    expect(body.events.at(-1).status).toBe("succeeded");
    const missing = await server.request(`/api/deployments/dep_nope`, { headers: { authorization: `Bearer ${token}` } });
    expect(missing.status).toBe(404);
    const noScope = await server.request(`/api/deployments/${id}`, {
      headers: { authorization: `Bearer ${await server.tokens.signApiToken({ sub: "w", scopes: ["deployments:write"] })}` },
    });
    expect(noScope.status).toBe(403);
  });

  it("counts deployments, webhook requests and rollout durations in /metrics", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref("v1"), sha(14));
    await waitForFinal(server, (await push(server, "v1", sha(14))).deployments[0]!.id);
    await server.request("/hooks/registry", { method: "POST" });
    const text = await (await server.request("/metrics")).text();
    expect(text).toContain('deployer_deployments_total{trigger="registry",outcome="succeeded"} 1');
    expect(text).toContain('deployer_webhook_requests_total{endpoint="registry",result="accepted"} 1');
    expect(text).toContain('deployer_webhook_requests_total{endpoint="registry",result="UNAUTHORIZED"} 1');
    expect(text).toMatch(/deployer_rollout_duration_seconds_count\{outcome="succeeded"\} 1/);
  });
});

describe("restart", () => {
  it("finishes deployments a crash left queued or running", async () => {
    // The first server's clock stands still and the swarm moves only when ticked.
    const clock = new FakeClock();
    const swarm = new FakeSwarm();
    const first = createTestServer({}, { clock, swarm });
    swarm.addService({ name: "web", image: `${repo}:v1` });
    first.registry.push(ref("v1"), sha(20));
    const id = (await push(first, "v1", sha(20))).deployments[0]!.id;
    // The rollout waits for its first poll once the update is sent; then "crash": that wait never ends.
    await clock.sleepCount(1);
    first.deployer.stop();
    expect(first.store.getDeployment(id)).toMatchObject({ status: "running", updateSentAt: expect.any(Number) });

    // The swarm outlives the server: the restarted server sees the same one.
    const second = createTestServer({}, { dbPath: first.dbPath, swarm });
    const restarted = second.deployer.reconcile();
    await swarm.settle();
    expect(restarted).toBe(1);
    const done = await waitForFinal(second, id);
    expect(done.status, timeline(second, id).join("\n")).toBe("succeeded");
    expect(timeline(second, id).join("\n")).toContain("resumed following the rollout");
  });

  /** A server whose update reached the engine (or not), then "crashed" before it could record that it was sent. */
  async function crashWhileSending(how: { applied: boolean; rollback?: boolean; heldMeanwhile?: boolean }) {
    const swarm = new FakeSwarm(); // rollouts move only when the test ticks
    const first = createTestServer({}, { clock: new FakeClock(), swarm });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, failureAction: how.rollback ? "rollback" : "pause" });
    if (how.rollback) swarm.failImage(`${repo}:v1@${sha(22)}`);
    first.registry.push(ref("v1"), sha(22));
    swarm.loseUpdateAnswer("web", { applied: how.applied, hang: true });
    const id = (await push(first, "v1", sha(22))).deployments[0]!.id;
    await swarm.callCount("updateService", 1);
    first.deployer.stop();
    // Swarm goes on with what it took while no server watches.
    await swarm.settle();
    expect(first.store.getDeployment(id)).toMatchObject({ status: "running", updateSentAt: null });
    if (how.heldMeanwhile) first.holds.hold("web", id, "an operator's hold", "ops");
    const second = createTestServer({}, { dbPath: first.dbPath, swarm });
    second.registry.push(ref("v1"), sha(22));
    expect(second.deployer.reconcile()).toBe(1);
    return { second, swarm, id };
  }

  it("follows to its end an update the engine took just before a crash, instead of taking the service for one already there", async () => {
    const { second, swarm, id } = await crashWhileSending({ applied: true });
    await swarm.settle();
    const done = await waitForFinal(second, id);
    expect(done, timeline(second, id).join("\n")).toMatchObject({ status: "succeeded", pinnedImage: `${repo}:v1@${sha(22)}` });
    expect(timeline(second, id).join("\n")).toContain(`the engine took the update to ${repo}:v1@${sha(22)}`);
    expect(swarm.callsOf("updateService"), "the update is not sent twice").toHaveLength(1);
  });

  it("records swarm's rollback of an update it took just before a crash, and does not send the bad digest again", async () => {
    const { second, swarm, id } = await crashWhileSending({ applied: true, rollback: true });
    expect((await swarm.findService("web"))?.updateStatus?.state).toBe("rollback_completed");
    const done = await waitForFinal(second, id);
    expect(done.status, timeline(second, id).join("\n")).toBe("rolled_back");
    expect(swarm.callsOf("updateService"), "the update is not sent again").toHaveLength(1);
    expect(second.holds.findQuarantine("web", sha(22))).toMatchObject({ deploymentId: id });
  });

  it("does not take swarm's rollback of someone else's update, under way while it sent its own, for a rollback of its own", async () => {
    const swarm = new FakeSwarm(); // rollouts move only when the test ticks
    const first = createTestServer({}, { clock: new FakeClock(), swarm });
    const web = swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, failureAction: "rollback" });
    // Someone's `docker service update` to a bad image; swarm has started to roll it back.
    swarm.failImage(`${repo}:v1@${sha(30)}`);
    await swarm.updateService(web.id, web.version, { image: `${repo}:v1@${sha(30)}` });
    for (let i = 0; i < 20 && (await swarm.findService("web"))?.updateStatus?.state !== "rollback_started"; i++) await swarm.tick();
    expect((await swarm.findService("web"))?.updateStatus?.state).toBe("rollback_started");
    first.registry.push(ref("v1"), sha(31));
    swarm.loseUpdateAnswer("web", { applied: false, hang: true });
    const id = (await push(first, "v1", sha(31))).deployments[0]!.id;
    await swarm.callCount("updateService", 2);
    first.deployer.stop();
    await swarm.settle(); // the rollback completes: a newer version, the image our update replaced
    expect(await swarm.findService("web")).toMatchObject({ image: `${repo}:v1@${sha(1)}`, updateStatus: { state: "rollback_completed" } });

    const second = createTestServer({}, { dbPath: first.dbPath, swarm });
    second.registry.push(ref("v1"), sha(31));
    second.deployer.reconcile();
    await swarm.callCount("updateService", 3);
    await swarm.settle();
    const done = await waitForFinal(second, id);
    expect(done.status, timeline(second, id).join("\n")).toBe("succeeded");
    expect(second.holds.findQuarantine("web", sha(31))).toBeUndefined();
  });

  it("follows the update it sent before a crash although the service was held meanwhile", async () => {
    const { second, swarm, id } = await crashWhileSending({ applied: true, heldMeanwhile: true });
    await swarm.settle();
    const done = await waitForFinal(second, id);
    expect(done.status, timeline(second, id).join("\n")).toBe("succeeded");
  });

  it("sends the update again when the engine had not taken it before the crash", async () => {
    const { second, swarm, id } = await crashWhileSending({ applied: false });
    await swarm.callCount("updateService", 2);
    await swarm.settle();
    const done = await waitForFinal(second, id);
    expect(done.status, timeline(second, id).join("\n")).toBe("succeeded");
    expect((await swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(22)}`);
  });
});

describe("an update whose answer is lost", () => {
  /** A push of `digest` to a service "web" on v1, with `fault` done to the fake swarm first; its deployment to its end. */
  async function deployThrough(server: TestServer, digest: string, fault: (swarm: FakeSwarm) => void) {
    server.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}` });
    server.registry.push(ref("v1"), digest);
    fault(server.swarm);
    const id = (await push(server, "v1", digest)).deployments[0]!.id;
    return { id, done: await waitForFinal(server, id) };
  }
  it("is followed to its end when the engine took it (the connection dropped, or the deadline passed, after it was sent)", async () => {
    const server = createTestServer();
    const { id, done } = await deployThrough(server, sha(23), (swarm) => swarm.loseUpdateAnswer("web"));
    expect(done.status, timeline(server, id).join("\n")).toBe("succeeded");
    expect(timeline(server, id).join("\n")).toContain("but its answer was lost (the Docker engine did not answer within 30000 ms");
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("is looked at after a conflict too, and followed when the engine took it", async () => {
    const server = createTestServer();
    const { id, done } = await deployThrough(server, sha(27), (swarm) => {
      swarm.conflictOnce("web");
      swarm.loseUpdateAnswer("web");
    });
    expect(done.status, timeline(server, id).join("\n")).toBe("succeeded");
    expect(server.swarm.callsOf("updateService")).toHaveLength(2);
  });

  it("leaves the record as it was when the engine refuses the update: nothing pinned, the replaced image kept", async () => {
    const server = createTestServer();
    const { done } = await deployThrough(server, sha(28), (swarm) => swarm.refuseUpdate("web", "rpc error: code = InvalidArgument desc = no"));
    expect(done).toMatchObject({ status: "failed", pinnedImage: null, updateVersion: null, previousImage: `${repo}:v1@${sha(1)}` });
    expect(done.message).toBe("the engine refused the update: Docker engine answered 400: rpc error: code = InvalidArgument desc = no");
    expect(server.history.latestAppliedOf("web"), "a refused update is not applied").toBeUndefined();
  });

  it("is sent again when the engine, answering again, did not take it", async () => {
    const server = createTestServer();
    const { id, done } = await deployThrough(server, sha(24), (swarm) => swarm.loseUpdateAnswer("web", { applied: false }));
    expect(done.status, timeline(server, id).join("\n")).toBe("succeeded");
    expect(timeline(server, id).join("\n")).toContain("and did not take it; sending it again");
    expect(server.swarm.callsOf("updateService")).toHaveLength(2);
  });

  it("waits for the engine to answer again, and ends failed with its outcome unknown when it stays out of reach for TIMEOUT", async () => {
    const server = createTestServer({ TIMEOUT: "1" });
    const { done } = await deployThrough(server, sha(25), (swarm) => swarm.loseUpdateAnswer("web", { down: true }));
    expect(done).toMatchObject({ status: "failed", failureKind: "error", pinnedImage: `${repo}:v1@${sha(25)}` });
    expect(done.message).toMatch(/did not answer the update .* stayed out of reach for 1 s .*whether it took the update is unknown/);
    expect(server.holds.findQuarantine("web", sha(25)), "nothing is known of the digest").toBeUndefined();
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("is followed once the engine answers again within TIMEOUT", async () => {
    const clock = new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    let looksWhileDown = 0;
    const swarm: FakeSwarm = new FakeSwarm({
      clock,
      stepMs: ROLLOUT_POLL_MS,
      // The engine answers again at the fifth look after it went away.
      onCall: (call) => {
        if (call.method === "findService" && swarm.callsOf("updateService").length === 1 && ++looksWhileDown === 5) swarm.setUnavailable(false);
      },
    });
    const server = createTestServer({ TIMEOUT: "60" }, { clock, swarm });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}` });
    server.registry.push(ref("v1"), sha(26));
    swarm.loseUpdateAnswer("web", { down: true });
    const id = (await push(server, "v1", sha(26))).deployments[0]!.id;
    const done = await waitForFinal(server, id);
    expect(done.status, timeline(server, id).join("\n")).toBe("succeeded");
    expect(looksWhileDown).toBeGreaterThanOrEqual(5);
    expect(swarm.callsOf("updateService")).toHaveLength(1);
  });
});

describe("a service someone else changes while its update is on its way", () => {
  const theirs = "127.0.0.1:5000/other/thing:v9";

  /** The operator's `docker service update --image` lands just before (or, `after`, just behind) the deployer's first update. */
  function operatorUpdates(swarm: FakeSwarm, opts: { after?: boolean } = {}) {
    const real = swarm.updateService.bind(swarm);
    let first = true;
    const operator = async (id: string) => void (await real(id, (await swarm.findService(id))!.version, { image: theirs }));
    swarm.updateService = async (id, version, update) => {
      if (!first) return real(id, version, update);
      first = false;
      if (!opts.after) await operator(id);
      try {
        return await real(id, version, update);
      } finally {
        if (opts.after) await operator(id);
      }
    };
  }

  it("is not written over when the update comes back stale: the deployment is skipped, the operator's image stays", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}` });
    server.registry.push(ref("v1"), sha(31));
    operatorUpdates(server.swarm);
    const id = (await push(server, "v1", sha(31))).deployments[0]!.id;
    const done = await waitForFinal(server, id);
    expect(done.status, timeline(server, id).join("\n")).toBe("skipped");
    expect(done.message).toBe(`the service changed while its update was on its way: it runs ${theirs} now; left to whoever changed it`);
    expect(done).toMatchObject({ pinnedImage: null, updateVersion: null });
    expect((await server.swarm.findService("web"))?.image).toBe(theirs);
    expect(server.swarm.callsOf("updateService")).toHaveLength(2); // the operator's, and the refused one
  });

  it("is not written over when an update whose answer was lost is sent again", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}` });
    server.registry.push(ref("v1"), sha(32));
    server.swarm.loseUpdateAnswer("web", { applied: false });
    operatorUpdates(server.swarm, { after: true });
    const id = (await push(server, "v1", sha(32))).deployments[0]!.id;
    const done = await waitForFinal(server, id);
    expect(done.status, timeline(server, id).join("\n")).toBe("skipped");
    expect(done.message).toContain(`it runs ${theirs} now`);
    expect((await server.swarm.findService("web"))?.image).toBe(theirs);
  });

  it("is still sent again when only the engine moved the version (the image is the one it replaces)", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}` });
    server.registry.push(ref("v1"), sha(33));
    server.swarm.conflictOnce("web");
    const id = (await push(server, "v1", sha(33))).deployments[0]!.id;
    expect((await waitForFinal(server, id)).status).toBe("succeeded");
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(33)}`);
  });
});
