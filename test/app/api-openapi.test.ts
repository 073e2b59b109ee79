import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { api, deployThroughWebhook } from "../helpers/api-client.js";
import { sseReader } from "../helpers/sse.js";
import { createTestServer, sha } from "../helpers/test-server.js";

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
  components: unknown;
};

/** Validates a real response against the schema the document declares for it. */
function checkerFor(doc: Doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: "doc", components: doc.components } as object);
  return (path: string, method: string, status: number, body: unknown) => {
    const declared = doc.paths[path]?.[method]?.responses[String(status)];
    expect(declared, `the document declares ${method.toUpperCase()} ${path} → ${status}`).toBeDefined();
    const type = status === 200 && path.endsWith("/events") ? "text/event-stream" : "application/json";
    const schema = JSON.parse(JSON.stringify(declared!.content![type]!.schema).replaceAll('"#/components', '"doc#/components'));
    const validate = ajv.compile(schema);
    expect(validate(body), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`).toBe(true);
  };
}

describe("GET /api/openapi.json", () => {
  it("describes every route, and the real responses match it", async () => {
    const server = createTestServer();
    const docRes = await server.request("/api/openapi.json");
    expect(docRes.status).toBe(200);
    const doc = (await docRes.json()) as Doc;
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/backup",
      "/deployments",
      "/deployments/{id}",
      "/deployments/{id}/approve",
      "/deployments/{id}/events",
      "/deployments/{id}/reject",
      "/events",
      "/services",
      "/services/{name}/deploy",
      "/services/{name}/resume",
      "/services/{name}/rollback",
      "/sources",
      "/sources/{id}",
      "/sources/{id}/rotate",
    ]);
    const check = checkerFor(doc);

    server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live" });
    const [first] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(2) });

    const list = await api(server, "GET", "/api/deployments?limit=1");
    check("/deployments", "get", list.status, list.body);
    const detail = await api(server, "GET", `/api/deployments/${first!.id}`);
    check("/deployments/{id}", "get", detail.status, detail.body);
    const services = await api(server, "GET", "/api/services");
    check("/services", "get", services.status, services.body);
    const rollback = await api(server, "POST", "/api/services/web/rollback", { json: { to: first!.id } });
    check("/services/{name}/rollback", "post", rollback.status, rollback.body);
    const held = await api(server, "GET", "/api/services");
    check("/services", "get", held.status, held.body);
    expect(held.body.items[0].held).toBe(true);
    const resume = await api(server, "POST", "/api/services/web/resume");
    check("/services/{name}/resume", "post", resume.status, resume.body);
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v3" }, sha(3));
    const deploy = await api(server, "POST", "/api/services/web/deploy", { json: { tag: "v3" } });
    check("/services/{name}/deploy", "post", deploy.status, deploy.body);

    const invalid = await api(server, "GET", "/api/deployments?limit=0");
    check("/deployments", "get", invalid.status, invalid.body);
    const missing = await api(server, "GET", "/api/deployments/dep_nope");
    check("/deployments/{id}", "get", missing.status, missing.body);
    const unknown = await api(server, "POST", "/api/services/nope/rollback", { json: {} });
    check("/services/{name}/rollback", "post", unknown.status, unknown.body);
    const notWaiting = await api(server, "POST", `/api/deployments/${detail.body.id}/approve`);
    expect(notWaiting.status).toBe(409);
    check("/deployments/{id}/approve", "post", notWaiting.status, notWaiting.body);
    const noSuch = await api(server, "POST", "/api/deployments/dep_00000000000000000000000000/reject");
    expect(noSuch.status).toBe(404);
    check("/deployments/{id}/reject", "post", noSuch.status, noSuch.body);

    const admin = { scopes: ["sources:admin" as const] };
    const added = await api(server, "POST", "/api/sources", {
      ...admin,
      json: { kind: "ecr", repos: ["123456789012.dkr.ecr.us-west-2.amazonaws.com/*"] },
    });
    check("/sources", "post", added.status, added.body);
    const sources = await api(server, "GET", "/api/sources", admin);
    check("/sources", "get", sources.status, sources.body);
    const rotated = await api(server, "POST", `/api/sources/${added.body.source.id}/rotate`, { ...admin, json: { grace: "1h" } });
    check("/sources/{id}/rotate", "post", rotated.status, rotated.body);
    const source = await api(server, "GET", `/api/sources/${added.body.source.id}`, admin);
    check("/sources/{id}", "get", source.status, source.body);
    const removed = await api(server, "DELETE", `/api/sources/${added.body.source.id}`, admin);
    check("/sources/{id}", "delete", removed.status, removed.body);
    const badKind = await api(server, "POST", "/api/sources", { ...admin, json: { kind: "svn", repos: ["acme/web"] } });
    check("/sources", "post", badKind.status, badKind.body);
    const oidc = await api(server, "POST", "/api/sources", {
      ...admin,
      json: { kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "deployer", claims: { repository: "acme/*" } },
    });
    check("/sources", "post", oidc.status, oidc.body);
    const noRotate = await api(server, "POST", `/api/sources/${oidc.body.source.id}/rotate`, admin);
    check("/sources/{id}/rotate", "post", noRotate.status, noRotate.body);
    const withOidc = await api(server, "GET", "/api/sources", admin);
    check("/sources", "get", withOidc.status, withOidc.body);

    // Each event's data is a StreamEvent; errors are the envelope.
    const read = await server.tokens.signApiToken({ sub: "x", scopes: ["deployments:read"] });
    const events = await server.request(`/api/deployments/${first!.id}/events`, { headers: { authorization: `Bearer ${read}` } });
    const messages = await sseReader(events).rest();
    expect(messages.length).toBeGreaterThan(2);
    for (const m of messages) check("/deployments/{id}/events", "get", 200, JSON.parse(m.data));
    const noEvents = await api(server, "GET", "/api/deployments/dep_nope/events");
    check("/deployments/{id}/events", "get", noEvents.status, noEvents.body);
    const badCursor = await api(server, "GET", "/api/events?lastEventId=x");
    check("/events", "get", badCursor.status, badCursor.body);
    const noBackup = await api(server, "GET", "/api/backup");
    check("/backup", "get", noBackup.status, noBackup.body);
  });
});
