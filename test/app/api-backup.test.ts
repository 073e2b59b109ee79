import Database from "better-sqlite3";
import { readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { deployThroughWebhook } from "../helpers/api-client.js";
import { tempDir } from "../helpers/temp-dir.js";
import { countRows, createTestServer, sha } from "../helpers/test-server.js";

describe("GET /api/backup", () => {
  it("sends a consistent copy of the database, taken while the server runs, and keeps no temporary file", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live" });
    await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["database:backup"] });
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith("deployer-backup-")).length;
    const res = await server.request("/api/backup", { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.sqlite3");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="deployer-.*\.db"$/);
    const file = join(tempDir(), "copy.db");
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));

    const copy = new Database(file, { readonly: true });
    try {
      expect(copy.pragma("integrity_check", { simple: true })).toBe("ok");
      const n = (table: string) => (copy.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
      expect(n("deployments")).toBe(countRows(server, "deployments"));
      expect(n("deployment_events")).toBe(countRows(server, "deployment_events"));
    } finally {
      copy.close();
    }
    await expect.poll(() => readdirSync(tmpdir()).filter((f) => f.startsWith("deployer-backup-")).length).toBeLessThanOrEqual(before);
  });

  it("answers HEAD without taking a copy of the database", async () => {
    const server = createTestServer();
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["database:backup"] });
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith("deployer-backup-")).length;
    for (let i = 0; i < 3; i++) {
      const res = await server.request("/api/backup", { method: "HEAD", headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/vnd.sqlite3");
      expect(res.body).toBeNull();
    }
    // A copy would have been left behind (nothing reads it to its end); none is made.
    await new Promise((r) => setImmediate(r));
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith("deployer-backup-")).length).toBeLessThanOrEqual(before);
  });

  it("needs the database:backup scope: a read and write token is refused with 403 naming it", async () => {
    const server = createTestServer();
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read", "deployments:write", "sources:admin"] });
    const res = await server.request("/api/backup", { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect((await res.json()).error).toMatchObject({ code: "FORBIDDEN", message: expect.stringContaining("database:backup") });
  });
});
