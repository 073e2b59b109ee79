/**
 * A push of the digest the service runs is skipped as it is recorded, taking no one's place; but only then, from
 * the service as it was just read, and never in place of a waiting deployment of the same tag.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import { createTestServer, pushAcmeWeb as push, registryPush, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const ref = (tag: string) => ({ registry: "127.0.0.1:5000", repository: "acme/web", tag });
const timeline = (s: TestServer, id: string) => s.store.listEvents(id).map((e) => `${e.status}: ${e.message}`);

async function until(s: TestServer, id: string, check: (status: string) => boolean) {
  for (let i = 0; i < 2000 && !check(s.store.getDeployment(id).status); i++) await new Promise((r) => setTimeout(r, 2));
  expect(check(s.store.getDeployment(id).status), timeline(s, id).join("\n")).toBe(true);
}

describe("a push of the digest the service runs", () => {
  it("after a restart, is followed to its end when its update went out: the tag had moved on meanwhile", async () => {
    const swarm = new FakeSwarm(); // rollouts move only when the test settles them
    const clock = new FakeClock(); // the first server's clock moves only when the test moves it
    // The first server's view of the swarm: once it "dies", nothing it asks is ever answered, so it writes nothing more.
    let dead = false;
    const firstView = Object.create(swarm) as FakeSwarm;
    for (const method of ["findServices", "listTasksOf", "findService", "listServices", "updateService"] as const) {
      const real = swarm[method].bind(swarm) as (...args: unknown[]) => Promise<unknown>;
      (firstView as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => (dead ? new Promise(() => {}) : real(...args));
    }
    const first = createTestServer({}, { clock, swarm: firstView });
    swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, failureAction: "rollback" });
    swarm.failImage(`${repo}:v1@${sha(9)}`);
    first.registry.push(ref("v1"), sha(9));
    const bad = (await push(first, "v1", sha(9))).deployments[0]!.id;
    await swarm.callCount("updateService", 1);
    // Queued behind the rollout: a push naming the digest the service ran; the tag names a third one by its turn.
    const hinted = (await push(first, "v1", sha(1))).deployments[0]!.id;
    expect(first.store.getDeployment(hinted).status).toBe("queued");
    first.registry.push(ref("v1"), sha(20));
    await swarm.settle();
    while (first.store.getDeployment(bad).status === "running") {
      clock.advance(250);
      await new Promise((r) => setImmediate(r));
    }
    expect(first.store.getDeployment(bad).status).toBe("rolled_back");
    // Its turn: the tag is looked at (twice, on the first server's clock), and the update goes out.
    for (let i = 0; i < 200 && !first.store.getDeployment(hinted).updateSentAt; i++) {
      clock.advance(10);
      await new Promise((r) => setImmediate(r));
    }
    expect(first.store.getDeployment(hinted).updateSentAt, timeline(first, hinted).join("\n")).not.toBeNull();
    dead = true; // the server dies with the update under way
    first.deployer.stop();
    const second = createTestServer({}, { dbPath: first.dbPath, swarm });
    second.registry.push(ref("v1"), sha(20));
    second.deployer.reconcile();
    await swarm.settle();
    const done = await waitForFinal(second, hinted);
    expect(done.status, timeline(second, hinted).join("\n")).toBe("succeeded");
    expect(timeline(second, hinted)).toContain("running: resumed following the rollout after a restart");
    expect((await swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(20)}`);
  });

  it("after an approval, deploys what it resolved though the service ran its hint when it was matched", async () => {
    const s = createTestServer({ DEPLOYER_MAX_ROLLOUTS: "1" });
    s.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, labels: { "deployer.approve": "required" } });
    s.swarm.addService({ name: "api", image: `127.0.0.1:5000/acme/api:v1@${sha(1)}` });
    s.registry.push({ registry: "127.0.0.1:5000", repository: "acme/api", tag: "v1" }, sha(2));
    // The only rollout slot is held by api's deployment while web's requests queue.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const resolve = s.registry.resolveDigest.bind(s.registry);
    s.registry.resolveDigest = async (r) => {
      if (r.repository === "acme/api") await held;
      return resolve(r);
    };
    const webhook = await s.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
    const apiPush = await s.request("/hooks/registry", {
      method: "POST",
      headers: { authorization: `Bearer ${webhook}` },
      json: registryPush({ repository: "acme/api", tag: "v1", digest: sha(2) }),
    });
    const apiDeployment = ((await apiPush.json()) as { deployments: Array<{ id: string }> }).deployments[0]!.id;
    const alice = await s.tokens.signApiToken({ sub: "alice", scopes: ["deployments:read", "deployments:write"] });
    const byHand = await s.request("/api/services/web/deploy", {
      method: "POST",
      headers: { authorization: `Bearer ${alice}` },
      json: { digest: sha(5) },
    });
    const manual = ((await byHand.json()) as { deployment: { id: string } }).deployment.id;
    s.registry.push(ref("v1"), sha(1));
    const pushed = (await push(s, "v1", sha(1))).deployments[0]!.id;
    expect(s.store.getDeployment(pushed).status).toBe("queued");
    release();
    await waitForFinal(s, apiDeployment);
    expect((await waitForFinal(s, manual)).status).toBe("succeeded");
    await until(s, pushed, (status) => status === "awaiting_approval");
    const approved = await s.request(`/api/deployments/${pushed}/approve`, { method: "POST", headers: { authorization: `Bearer ${alice}` } });
    expect(approved.status).toBe(200);
    expect((await waitForFinal(s, pushed)).status, timeline(s, pushed).join("\n")).toBe("succeeded");
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(1)}`);
  });

  it("replaces a waiting deployment of the same tag: the tag was put back on the running digest", async () => {
    const s = createTestServer();
    s.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}`, labels: { "deployer.window": "daily 14:00-15:00 UTC" } });
    s.registry.push(ref("v1"), sha(2));
    const waiting = (await push(s, "v1", sha(2))).deployments[0]!.id;
    await until(s, waiting, (status) => status === "scheduled");
    // The bad build is reverted: the tag names the running digest again.
    s.registry.push(ref("v1"), sha(1));
    const revert = (await push(s, "v1", sha(1))).deployments[0]!.id;
    expect(s.store.getDeployment(waiting)).toMatchObject({ status: "superseded", supersededBy: revert });
    expect((await waitForFinal(s, revert)).message).toBe(`the service already runs ${sha(1)}`);
    s.clock.advance(10 * 3600_000);
    await s.deployer.idle();
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(1)}`);
    expect(s.swarm.callsOf("updateService")).toEqual([]);
  });
});
