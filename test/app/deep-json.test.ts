/**
 * A body nested past any real payload's depth is refused before it is parsed,
 * on the webhooks and on the API alike, in the envelope, writing nothing.
 */
import { describe, expect, it } from "vitest";
import { assertJsonDepth, maxJsonDepth } from "../../server/http/read-json.js";
import { api } from "../helpers/api-client.js";
import { countRows, createTestServer } from "../helpers/test-server.js";

/** About 1 MB of `[[[…]]]`: the shape that held the event loop for over a second. */
const deep = "[".repeat(500_000) + "]".repeat(500_000);
const nested = (levels: number) => "[".repeat(levels) + "]".repeat(levels);

describe("JSON nesting depth", () => {
  it(`takes ${maxJsonDepth} levels and refuses one more; brackets inside strings do not count`, () => {
    expect(() => assertJsonDepth(nested(maxJsonDepth))).not.toThrow();
    expect(() => assertJsonDepth(nested(maxJsonDepth + 1))).toThrow(/nests deeper than 32 levels/);
    expect(() => assertJsonDepth(JSON.stringify({ s: "[".repeat(1000), t: 'a\\"[[[[' }))).not.toThrow();
    expect(() => assertJsonDepth(JSON.stringify(["\\", nested(40)]))).not.toThrow();
  });

  it("refuses a deeply nested webhook body with 400 in the envelope and records nothing", async () => {
    const server = createTestServer();
    const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
    const res = await server.request("/hooks/registry", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: deep,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/nests deeper/) });
    expect(countRows(server, "triggers")).toBe(0);
  });

  it("refuses a deeply nested API body with 400 in the envelope and deploys nothing", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live" });
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:write"] });
    for (const action of ["deploy", "rollback"]) {
      const res = await server.request(`/api/services/web/${action}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: deep,
      });
      expect(res.status, action).toBe(400);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/nests deeper/) });
    }
    expect(countRows(server, "deployments")).toBe(0);
    // A body of ordinary depth still reaches the route.
    const ok = await api(server, "POST", "/api/services/web/deploy", { json: { tag: "live" } });
    expect(ok.status, ok.text).toBe(202);
  });
});
