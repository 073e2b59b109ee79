/**
 * An engine that hangs or is down holds nothing: webhooks are answered at
 * once with their push recorded, /readyz says so within its deadline, and each
 * recorded push is matched and deployed once the engine answers, with the
 * poller off and across a restart.
 */
import { describe, expect, it } from "vitest";
import { countRows, createTestServer, registryPush, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";
import { tempDir } from "../helpers/temp-dir.js";

const host = "127.0.0.1:5000";
const repo = `${host}/acme/web`;
const ref = (tag: string) => ({ registry: host, repository: "acme/web", tag });

async function push(server: TestServer, digest: string, opts: { services?: string[] } = {}) {
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: [`${host}/acme/*`], services: opts.services });
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    json: registryPush({ host, repository: "acme/web", tag: "live", digest }),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { deployments: Array<{ id: string }>; ignored: Array<{ reason: string; message?: string }> };
}

describe("an engine that hangs", () => {
  it("does not hold a webhook: the push is recorded, answered engine_unavailable, and deployed once the engine answers", async () => {
    const server = createTestServer({ DEPLOYER_POLL: "false" });
    const swarm = server.swarm;
    swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    swarm.setHanging(true);
    // Without a deadline this request would wait on the engine for good (and this test time out).
    const body = await push(server, sha(2));
    expect(body.deployments).toEqual([]);
    expect(body.ignored).toEqual([
      expect.objectContaining({ reason: "engine_unavailable", message: expect.stringContaining("did not answer within") }),
    ]);
    expect(countRows(server, "triggers")).toBe(1);

    const ready = await server.request("/readyz");
    expect(ready.status).toBe(503);

    swarm.setHanging(false);
    expect(await server.unmatched.runOnce()).toBe(1);
    const [dep] = server.history.list({ service: "web", limit: 5 }).items;
    const done = await waitForFinal(server, dep!.id);
    expect(done).toMatchObject({ status: "succeeded", trigger: "registry", digest: sha(2), requestedBy: "ci" });
    expect(server.store.listEvents(done.id)[0]?.message).toContain("received while the engine did not answer, matched now");
    expect((await swarm.findService("web"))?.image).toBe(`${repo}:live@${sha(2)}`);
    expect(await server.unmatched.runOnce(), "a matched push is not matched twice").toBe(0);
  });
});

describe("webhooks during a hang", () => {
  it("wait on the engine once: later webhooks do not wait on the call it never answered, and the first after it answers lists again", async () => {
    const server = createTestServer({ DEPLOYER_POLL: "false" });
    const swarm = server.swarm;
    swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(4));
    swarm.setHanging(true);
    expect((await push(server, sha(2))).ignored[0]?.message).toContain("did not answer within");
    for (const n of [3, 4]) {
      const body = await push(server, sha(n));
      expect(body.ignored[0]).toMatchObject({
        reason: "engine_unavailable",
        message: expect.stringContaining("has not answered an earlier request yet"),
      });
    }
    expect(swarm.callsOf("listServices"), "one call out to the hung engine, not one per webhook").toHaveLength(1);

    swarm.setHanging(false);
    await new Promise((r) => setImmediate(r));
    server.registry.push(ref("live"), sha(5));
    const body = await push(server, sha(5));
    expect(body.deployments).toHaveLength(1);
    expect((await waitForFinal(server, body.deployments[0]!.id)).digest).toBe(sha(5));
  });
});

describe("a push recorded while the engine is down", () => {
  it("is deployed after a restart, once the engine is back, with the poller off; the tag ends on the newest digest", async () => {
    const dbPath = `${tempDir("deployer-faults-")}/deployer.db`;
    const first = createTestServer({ DEPLOYER_POLL: "false" }, { dbPath });
    first.swarm.setUnavailable(true);
    for (const n of [2, 3]) {
      const body = await push(first, sha(n));
      expect(body.ignored[0]?.reason).toBe("engine_unavailable");
    }
    first.deployer.stop();

    // A new process on the same database; the engine answers again.
    const second = createTestServer({ DEPLOYER_POLL: "false" }, { dbPath });
    const swarm = second.swarm;
    swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    second.registry.push(ref("live"), sha(3));
    // Both pushes name the tag, which now points at the newer digest: the first deploys it, and the second,
    // matched while the first resolves the tag, is coalesced into it.
    expect(await second.unmatched.runOnce()).toBe(1);
    await second.deployer.idle();
    const [only, ...more] = second.history.list({ service: "web", limit: 5 }).items;
    expect(more).toEqual([]);
    expect([only!.status, only!.digest]).toEqual(["succeeded", sha(3)]);
    expect(second.store.coalescedInto(only!.id, 5).count).toBe(1);
    expect((await swarm.findService("web"))?.image).toBe(`${repo}:live@${sha(3)}`);
  });

  it("is matched within the webhook token's service limit", async () => {
    const server = createTestServer({ DEPLOYER_POLL: "false" });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.swarm.addService({ name: "other", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    server.swarm.setUnavailable(true);
    await push(server, sha(2), { services: ["web"] });
    server.swarm.setUnavailable(false);
    expect(await server.unmatched.runOnce()).toBe(1);
    await server.deployer.idle();
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:live@${sha(2)}`);
    expect((await server.swarm.findService("other"))?.image).toBe(`${repo}:live@${sha(1)}`);
    // What the webhook could not answer then is logged now: how many services it left alone and why, not their names.
    const matched = server.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === "matched a push recorded while the engine did not answer");
    expect(matched.leftAlone).toEqual({ not_in_token: 1 });
    expect(JSON.stringify(matched)).not.toContain('"other"');
  });

  it("is matched by the server's own loop when it runs, on its clock", async () => {
    const server = createTestServer({ DEPLOYER_POLL: "false" });
    const clock = server.clock;
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    server.swarm.setUnavailable(true);
    server.unmatched.start();
    await clock.sleepCount(1); // the first pass found the engine down and waits
    await push(server, sha(2));
    server.swarm.setUnavailable(false);
    clock.advance(5000);
    await clock.sleepCount(2);
    await server.deployer.idle();
    expect((await server.swarm.findService("web"))?.image).toBe(`${repo}:live@${sha(2)}`);
  });
});
