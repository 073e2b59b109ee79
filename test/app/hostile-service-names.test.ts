/**
 * Service names in API paths are checked at the edge by Docker's own rule: a
 * name that cannot name a service is a 400 in the envelope, writes nothing and
 * never reaches the swarm port.
 */
import { describe, expect, it } from "vitest";
import { api } from "../helpers/api-client.js";
import { countRows, createTestServer } from "../helpers/test-server.js";

/** Path segments as a client sends them (already percent-encoded). */
const HOSTILE_SEGMENTS = [
  "x%2F..%2F..",
  "..%2F..%2Finfo",
  "a%00b",
  "%20OR%201%3D1",
  "web%20",
  "%F0%9F%98%80",
  "%C3%A9",
  "a%0D%0AX-Injected%3A%201",
  "web%3Fx%3D1",
  "-web",
  "web_",
  "a.b",
  "a".repeat(64),
  "%E0%A4%A", // a broken escape
];

const ROUTES = [
  { action: "deploy", json: { tag: "v2" } },
  { action: "rollback", json: {} },
  { action: "resume", json: undefined },
];

describe("service names in API paths", () => {
  for (const { action, json } of ROUTES) {
    it(`POST /api/services/:name/${action} answers 400 in the envelope for names Docker would refuse, writing nothing`, async () => {
      const server = createTestServer();
      server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live" });
      const callsBefore = server.swarm.calls.length;
      for (const segment of HOSTILE_SEGMENTS) {
        const res = await api(server, "POST", `/api/services/${segment}/${action}`, { json });
        expect(res.status, `${segment}: ${res.text}`).toBe(400);
        expect(res.body.error, segment).toMatchObject({ code: "VALIDATION_FAILED", requestId: expect.any(String) });
        expect(res.body.error.message, segment).toMatch(/^name: not a Docker service name/);
      }
      expect(server.swarm.calls.slice(callsBefore)).toEqual([]);
      expect(countRows(server, "deployments")).toBe(0);
      expect(countRows(server, "triggers")).toBe(0);
    });
  }

  it("a dot-dot segment is resolved by URL parsing before routing, to a route that does not exist", async () => {
    const server = createTestServer();
    const res = await api(server, "POST", "/api/services/%2E%2E/resume");
    expect(res.status, res.text).toBe(404);
    expect(res.body.error).toMatchObject({ code: "NOT_FOUND", requestId: expect.any(String) });
    expect(server.swarm.calls).toEqual([]);
  });

  it("checks the token first: a hostile name without a token is 401, with a read token 403", async () => {
    const server = createTestServer();
    const anonymous = await server.request("/api/services/x%2F..%2F../deploy", { method: "POST", json: { tag: "v2" } });
    expect(anonymous.status).toBe(401);
    const reader = await api(server, "POST", "/api/services/x%2F..%2F../deploy", { json: { tag: "v2" }, scopes: ["deployments:read"] });
    expect(reader.status).toBe(403);
  });

  it("takes every name Docker allows, stack names with underscores among them", async () => {
    const server = createTestServer();
    for (const name of ["web", "stack_web", "a", "A-1_b", "x".repeat(63)]) {
      server.swarm.addService({ name, image: "127.0.0.1:5000/acme/web:live" });
      const res = await api(server, "POST", `/api/services/${name}/resume`);
      expect(res.status, `${name}: ${res.text}`).toBe(200);
      expect(res.body).toEqual({ service: name, wasHeld: false });
    }
  });
});
