import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { Scope } from "../../server/auth/tokens.js";
import { countRows, createTestServer, testSecret, type TestServer } from "../helpers/test-server.js";

const key = (secret: string) => new TextEncoder().encode(secret);

/** Every API route, with the scope it needs. */
const routes: Array<{ method: string; path: string; scope: Scope; json?: unknown }> = [
  { method: "GET", path: "/api/deployments", scope: "deployments:read" },
  { method: "GET", path: "/api/deployments/dep_00000000000000000000000000", scope: "deployments:read" },
  { method: "GET", path: "/api/services", scope: "deployments:read" },
  { method: "GET", path: "/api/events", scope: "deployments:read" },
  { method: "GET", path: "/api/deployments/dep_00000000000000000000000000/events", scope: "deployments:read" },
  { method: "POST", path: "/api/services/web/rollback", scope: "deployments:write", json: {} },
  { method: "POST", path: "/api/services/web/deploy", scope: "deployments:write", json: { tag: "v2" } },
  { method: "POST", path: "/api/services/web/resume", scope: "deployments:write" },
  { method: "GET", path: "/api/backup", scope: "database:backup" },
  { method: "GET", path: "/api/sources", scope: "sources:admin" },
  { method: "POST", path: "/api/sources", scope: "sources:admin", json: { kind: "github", repos: ["ghcr.io/acme/*"] } },
  { method: "GET", path: "/api/sources/src_00000000000000000000000000", scope: "sources:admin" },
  { method: "POST", path: "/api/sources/src_00000000000000000000000000/rotate", scope: "sources:admin", json: {} },
  { method: "DELETE", path: "/api/sources/src_00000000000000000000000000", scope: "sources:admin" },
];

const badTokens: Array<[string, (s: TestServer, scope: Scope) => Promise<string | undefined>, number]> = [
  ["no token", async () => undefined, 401],
  ["a malformed token", async () => "abc.def.ghi", 401],
  [
    "an expired token",
    async (s, scope) =>
      new SignJWT({ scope })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("x")
        .setAudience("deployer:api")
        // On the server's clock, which is fake.
        .setExpirationTime(Math.floor(s.clock.now() / 1000) - 600)
        .sign(key(testSecret)),
    401,
  ],
  [
    "a token for another audience",
    async (_s, scope) =>
      new SignJWT({ scope }).setProtectedHeader({ alg: "HS256" }).setSubject("x").setAudience("someone-else").sign(key(testSecret)),
    401,
  ],
  ["a webhook token", async (s) => s.tokens.signWebhookToken({ sub: "ci", repos: ["acme/*"] }), 401],
  [
    "a token signed with another key",
    async (_s, scope) =>
      new SignJWT({ scope })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("x")
        .setAudience("deployer:api")
        .sign(key("x".repeat(40))),
    401,
  ],
  [
    "a token without the route's scope",
    async (s, scope) => s.tokens.signApiToken({ sub: "x", scopes: [scope === "deployments:read" ? "deployments:write" : "deployments:read"] }),
    403,
  ],
];

describe("API security: every route refuses bad tokens and writes nothing", () => {
  for (const route of routes) {
    for (const [what, make, status] of badTokens) {
      it(`${route.method} ${route.path} answers ${status} to ${what}`, async () => {
        const server = createTestServer();
        server.swarm.addService({ name: "web", image: "acme/web:v1" });
        const token = await make(server, route.scope);
        const res = await server.request(route.path, {
          method: route.method,
          headers: token ? { authorization: `Bearer ${token}` } : {},
          ...(route.json === undefined ? {} : { json: route.json }),
        });
        const body = await res.json();
        expect(res.status, JSON.stringify(body)).toBe(status);
        expect(body).toEqual({
          error: { code: status === 401 ? "UNAUTHORIZED" : "FORBIDDEN", message: expect.any(String), requestId: expect.any(String) },
        });
        expect(countRows(server, "deployments")).toBe(0);
        expect(countRows(server, "sources")).toBe(0);
        expect(server.holds.all()).toEqual([]);
        expect(server.swarm.callsOf("updateService")).toEqual([]);
      });
    }
  }
});
