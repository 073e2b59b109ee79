import { describe, expect, it } from "vitest";
import { api, deployThroughWebhook } from "../helpers/api-client.js";
import { createTestServer, sha, type TestServer } from "../helpers/test-server.js";

/** Seeds `n` finished deployments across services straight through the store, as a factory. */
function seed(server: TestServer, n: number) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const service = `svc-${i % 3}`;
    const recorded = server.store.recordTrigger(
      { kind: i % 2 ? "registry" : "dockerhub", eventKey: `seed-${i}`, imageKey: `docker.io/acme/${service}:v${i}`, requestedBy: "seed" },
      [
        {
          service,
          serviceId: `id-${service}`,
          image: `acme/${service}:v${i}`,
          imageKey: `docker.io/acme/${service}:v${i}`,
          trigger: i % 2 ? "registry" : "dockerhub",
          requestedBy: "seed",
          message: "seeded",
        },
      ],
    );
    if (recorded.duplicate) throw new Error("seed collided");
    const id = recorded.deployments[0]!.id;
    server.store.transition(id, { status: "running", startedAt: Date.now() }, "seeded start");
    server.store.transition(id, { status: i % 4 === 0 ? "failed" : "succeeded", digest: sha(i), finishedAt: Date.now() }, "seeded outcome");
    ids.push(id);
  }
  return ids;
}

describe("GET /api/deployments", () => {
  it("lists newest first with the contract's fields", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live" });
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    const res = await api(server, "GET", "/api/deployments", { scopes: ["deployments:read"] });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({
      items: [
        {
          id: dep!.id,
          service: "web",
          serviceId: expect.any(String),
          image: "127.0.0.1:5000/acme/web:live",
          digest: sha(1),
          previousImage: "127.0.0.1:5000/acme/web:live",
          trigger: "registry",
          status: "succeeded",
          message: expect.any(String),
          requestedBy: "ci",
          createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          finishedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          waitUntil: null,
          approvedBy: null,
          approvedAt: null,
        },
      ],
      nextCursor: null,
    });
  });

  it("pages with an opaque cursor without skipping or repeating a row", async () => {
    const server = createTestServer();
    const ids = seed(server, 25);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await api(server, "GET", `/api/deployments?limit=7${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status, res.text).toBe(200);
      seen.push(...res.body.items.map((d: { id: string }) => d.id));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(4);
    expect(seen).toEqual([...ids].reverse());
  });

  it("filters by service, status and trigger together", async () => {
    const server = createTestServer();
    seed(server, 24);
    const res = await api(server, "GET", "/api/deployments?service=svc-1&status=succeeded&trigger=registry&limit=200");
    expect(res.status, res.text).toBe(200);
    expect(res.body.items.length).toBeGreaterThan(0);
    for (const d of res.body.items) expect(d).toMatchObject({ service: "svc-1", status: "succeeded", trigger: "registry" });
    const all = server.history
      .list({ limit: 200 })
      .items.filter((d) => d.service === "svc-1" && d.status === "succeeded" && d.trigger === "registry");
    expect(res.body.items.length).toBe(all.length);
  });

  it("defaults to 50 items", async () => {
    const server = createTestServer();
    seed(server, 60);
    const res = await api(server, "GET", "/api/deployments");
    expect(res.body.items).toHaveLength(50);
    expect(res.body.nextCursor).toEqual(expect.any(String));
  });

  for (const [query, field] of [
    ["limit=0", "limit"],
    ["limit=201", "limit"],
    ["limit=ten", "limit"],
    ["status=done", "status"],
    ["trigger=cron", "trigger"],
    ["cursor=bm90LWEtY3Vyc29y", "cursor"],
  ] as const) {
    it(`rejects ${query} naming ${field}`, async () => {
      const server = createTestServer();
      const res = await api(server, "GET", `/api/deployments?${query}`);
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.code).toBe("VALIDATION_FAILED");
      expect(res.body.error.message.startsWith(`${field}:`), res.text).toBe(true);
    });
  }

  it("answers 404 for an unknown deployment id", async () => {
    const server = createTestServer();
    const res = await api(server, "GET", "/api/deployments/dep_00000000000000000000000000");
    expect(res.status, res.text).toBe(404);
    expect(res.body.error.code).toBe("NOT_FOUND");
  });
});
