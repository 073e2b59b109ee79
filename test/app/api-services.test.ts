import { describe, expect, it } from "vitest";
import { api, deployThroughWebhook } from "../helpers/api-client.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createTestServer, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";

/** A service deployed through webhooks to v1, v2 and v3 (digests sha(1..3)). */
async function serviceWithHistory(server: TestServer) {
  server.swarm.addService({ name: "web", image: `${repo}:live`, replicas: 2 });
  const ids: string[] = [];
  for (const n of [1, 2, 3]) {
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(n) });
    expect(dep!.status).toBe("succeeded");
    ids.push(dep!.id);
  }
  return ids;
}

const running = async (server: TestServer) => (await server.swarm.findService("web"))!.image;

describe("GET /api/services", () => {
  it("lists managed services with image, digest, replicas, hold and last deployment", async () => {
    const server = createTestServer();
    const ids = await serviceWithHistory(server);
    server.swarm.addService({ name: "untouchable", image: `${repo}:live`, labels: { "deployer.enable": "false" } });
    const res = await api(server, "GET", "/api/services", { scopes: ["deployments:read"] });
    expect(res.status, res.text).toBe(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({
        name: "web",
        image: `${repo}:live@${sha(3)}`,
        digest: sha(3),
        replicas: 2,
        mode: "replicated",
        held: false,
        hold: null,
        lastDeployment: expect.objectContaining({ id: ids[2], status: "succeeded" }),
      }),
    ]);
  });

  it("answers 503 naming the engine when Docker is unreachable", async () => {
    const server = createTestServer();
    server.swarm.setUnavailable(true);
    const res = await api(server, "GET", "/api/services");
    expect(res.status, res.text).toBe(503);
    expect(res.body.error.code).toBe("UNAVAILABLE");
  });
});

describe("POST /api/services/:name/rollback", () => {
  it("redeploys the recorded digest of the deployment named by id and holds the service", async () => {
    const server = createTestServer();
    const [v1] = await serviceWithHistory(server);
    const res = await api(server, "POST", "/api/services/web/rollback", { json: { to: v1 } });
    expect(res.status, res.text).toBe(202);
    expect(res.body.deployment).toMatchObject({ service: "web", trigger: "rollback", digest: sha(1), requestedBy: "ops-alice" });
    const done = await waitForFinal(server, res.body.deployment.id);
    expect(done.status).toBe("succeeded");
    expect(await running(server)).toBe(`${repo}:live@${sha(1)}`);
    const services = await api(server, "GET", "/api/services");
    expect(services.body.items[0]).toMatchObject({ held: true, hold: { deploymentId: done.id, heldBy: "ops-alice" } });
  });

  it("without `to`, goes back to the newest success whose digest is not the running one", async () => {
    const server = createTestServer();
    await serviceWithHistory(server);
    const res = await api(server, "POST", "/api/services/web/rollback", { json: {} });
    expect(res.status, res.text).toBe(202);
    expect(res.body.deployment.digest).toBe(sha(2));
    await waitForFinal(server, res.body.deployment.id);
    expect(await running(server)).toBe(`${repo}:live@${sha(2)}`);
  });

  it("takes an empty body as {}", async () => {
    const server = createTestServer();
    await serviceWithHistory(server);
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:write"] });
    const res = await server.request("/api/services/web/rollback", { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(res.status, await res.clone().text()).toBe(202);
  });

  it("keeps a held service away from webhooks, recording why, until resumed", async () => {
    const server = createTestServer();
    const [v1] = await serviceWithHistory(server);
    await waitForFinal(server, (await api(server, "POST", "/api/services/web/rollback", { json: { to: v1 } })).body.deployment.id);

    const [ignored] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(4) });
    expect(ignored!.status).toBe("skipped");
    expect(ignored!.message).toContain("held");
    expect(await running(server)).toBe(`${repo}:live@${sha(1)}`);

    const resumed = await api(server, "POST", "/api/services/web/resume");
    expect(resumed.status, resumed.text).toBe(200);
    expect(resumed.body).toEqual({ service: "web", wasHeld: true });
    const [deployed] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(5) });
    expect(deployed!.status).toBe("succeeded");
    expect(await running(server)).toBe(`${repo}:live@${sha(5)}`);
  });

  it("queues a rollback behind a running deployment, one writer per service", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({ name: "web", image: `${repo}:live` });
    const updates = (count: number) => server.swarm.callCount("updateService", count);
    const first = deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    await updates(1);
    await server.swarm.settle();
    await first;
    // v2's rollout hangs (time stands still and the fake swarm is not ticked) while the rollback arrives.
    const slow = deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(2) });
    await updates(2);
    const rollback = await api(server, "POST", "/api/services/web/rollback", { json: {} });
    expect(rollback.status, rollback.text).toBe(202);
    expect(rollback.body.deployment.status).toBe("queued");
    expect(rollback.body.deployment.digest).toBe(sha(1));
    await server.swarm.settle();
    expect((await slow)[0]!.status).toBe("succeeded");
    await updates(3);
    await server.swarm.settle();
    const done = await waitForFinal(server, rollback.body.deployment.id);
    expect(done.status).toBe("succeeded");
    expect(await running(server)).toBe(`${repo}:live@${sha(1)}`);
  });

  const failures: Array<[string, (s: TestServer) => Promise<{ path: string; json?: unknown }>, number, string]> = [
    ["an unknown service", async () => ({ path: "/api/services/nope/rollback", json: {} }), 404, "NOT_FOUND"],
    [
      "a service with nothing to go back to",
      async (s) => (s.swarm.addService({ name: "fresh", image: `${repo}:x` }), { path: "/api/services/fresh/rollback", json: {} }),
      422,
      "UNPROCESSABLE",
    ],
    [
      "a deployment of another service",
      async (s) => {
        const ids = await serviceWithHistory(s);
        s.swarm.addService({ name: "other", image: `${repo}:other` });
        return { path: "/api/services/other/rollback", json: { to: ids[0] } };
      },
      422,
      "UNPROCESSABLE",
    ],
    [
      "a deployment id that does not exist",
      async (s) => (await serviceWithHistory(s), { path: "/api/services/web/rollback", json: { to: "dep_01kdwnotarecordeddeploymnt" } }),
      404,
      "NOT_FOUND",
    ],
    ["an unknown field", async () => ({ path: "/api/services/web/rollback", json: { too: "x" } }), 400, "VALIDATION_FAILED"],
    [
      "a deployment whose digest failed there (its rollout failed and was rolled back)",
      async (s) => {
        await serviceWithHistory(s);
        s.swarm.failImage(`${repo}:live@${sha(9)}`);
        const [bad] = await deployThroughWebhook(s, { repository: "acme/web", tag: "live", digest: sha(9) });
        expect(bad!.status).not.toBe("succeeded");
        return { path: "/api/services/web/rollback", json: { to: bad!.id } };
      },
      422,
      "UNPROCESSABLE",
    ],
  ];
  for (const [what, make, status, code] of failures) {
    it(`answers ${status} to ${what} and writes nothing`, async () => {
      const server = createTestServer();
      const { path, json } = await make(server);
      const before = server.history.list({ limit: 200 }).items.length;
      const res = await api(server, "POST", path, { json });
      expect(res.status, res.text).toBe(status);
      expect(res.body.error.code).toBe(code);
      expect(server.history.list({ limit: 200 }).items.length).toBe(before);
      expect(server.holds.all()).toEqual([]);
    });
  }
});

describe("POST /api/services/:name/deploy", () => {
  it("deploys a tag by hand, lifting the hold", async () => {
    const server = createTestServer();
    const [v1] = await serviceWithHistory(server);
    await waitForFinal(server, (await api(server, "POST", "/api/services/web/rollback", { json: { to: v1 } })).body.deployment.id);
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v9" }, sha(9));
    const res = await api(server, "POST", "/api/services/web/deploy", { json: { tag: "v9" } });
    expect(res.status, res.text).toBe(202);
    expect(res.body.deployment).toMatchObject({ trigger: "manual", image: `${repo}:v9` });
    expect((await waitForFinal(server, res.body.deployment.id)).status).toBe("succeeded");
    expect(await running(server)).toBe(`${repo}:v9@${sha(9)}`);
    expect(server.holds.all()).toEqual([]);
  });

  it("deploys a quarantined digest by hand and lifts its quarantine", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:live`, failureAction: "rollback" });
    server.swarm.failImage(`${repo}:live@${sha(7)}`);
    const [bad] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(7) });
    expect(bad!.status).toBe("rolled_back");
    expect(server.holds.findQuarantine("web", sha(7))).toBeDefined();
    const res = await api(server, "POST", "/api/services/web/deploy", { json: { digest: sha(7) } });
    expect(res.status, res.text).toBe(202);
    expect(server.holds.findQuarantine("web", sha(7))).toBeUndefined();
    // Tried again for real (the fake still fails it), not skipped as quarantined.
    const again = await waitForFinal(server, res.body.deployment.id);
    expect(again.status).toBe("rolled_back");
    expect(server.swarm.callsOf("updateService")).toHaveLength(2);
  });

  for (const [what, json, field] of [
    ["both tag and digest", { tag: "v1", digest: sha(1) }, "tag"],
    ["neither", {}, "tag"],
    ["a malformed digest", { digest: "sha256:abc" }, "digest"],
    ["a malformed tag", { tag: "-bad" }, "tag"],
  ] as const) {
    it(`rejects ${what} naming the field`, async () => {
      const server = createTestServer();
      server.swarm.addService({ name: "web", image: `${repo}:live` });
      const res = await api(server, "POST", "/api/services/web/deploy", { json });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.message.startsWith(`${field}:`), res.text).toBe(true);
      expect(server.history.list({ limit: 10 }).items).toEqual([]);
    });
  }

  it("refuses a service labelled deployer.enable=false with 422", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:live`, labels: { "deployer.enable": "false" } });
    const res = await api(server, "POST", "/api/services/web/deploy", { json: { tag: "v2" } });
    expect(res.status, res.text).toBe(422);
  });

  it("refuses a job service with 422: its tasks run to completion, which is no rollout to follow", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "migrate", image: `${repo}:live`, job: true });
    for (const path of ["/api/services/migrate/deploy", "/api/services/migrate/rollback"]) {
      const res = await api(server, "POST", path, { json: path.endsWith("deploy") ? { tag: "v2" } : {} });
      expect(res.status, res.text).toBe(422);
      expect(res.body.error.message).toContain("is a job (replicated-job or global-job)");
    }
    expect(server.history.list({ limit: 10 }).items).toEqual([]);
  });

  it("answers 415 to a body that is not JSON and 413 to one over 1 MiB", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:live` });
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:write"] });
    const form = await server.request("/api/services/web/deploy", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" },
      body: "tag=v2",
    });
    expect(form.status).toBe(415);
    expect((await form.json()).error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    const big = await server.request("/api/services/web/deploy", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ tag: "v2", pad: "x".repeat(1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    const broken = await server.request("/api/services/web/deploy", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{not json",
    });
    expect(broken.status).toBe(400);
    expect((await broken.json()).error.code).toBe("BAD_REQUEST");
  });
});
