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

  it("makes one copy at a time until it is sent, and lets go of a reader that went away or took nothing for a minute", async () => {
    const server = createTestServer();
    // A database larger than what the response buffers, so that a reader that takes nothing holds the copy.
    const insert = server.database.sqlite.prepare(
      "insert into dashboard_sessions (id_hash, sealed, created_at, expires_at) values (?, ?, 0, 9999999999999)",
    );
    server.database.sqlite.transaction(() => {
      for (let i = 0; i < 4000; i++) insert.run(`h${i}`, "x".repeat(1000));
    })();
    const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["database:backup"] });
    const backup = () => server.request("/api/backup", { headers: { authorization: `Bearer ${token}` } });
    const copies = () => readdirSync(tmpdir()).filter((f) => f.startsWith("deployer-backup-")).length;
    const before = copies();

    const gone = await backup();
    expect(gone.status).toBe(200);
    const meanwhile = await backup();
    expect(meanwhile.status, "one copy at a time, until it is sent").toBe(409);
    expect((await meanwhile.json()).error.code).toBe("CONFLICT");
    expect(copies()).toBe(before + 1);
    await gone.body!.cancel();
    await expect.poll(copies).toBe(before);

    const stalled = await backup();
    expect(stalled.status).toBe(200);
    expect((await backup()).status).toBe(409);
    server.clock.advance(59_000);
    await new Promise((r) => setImmediate(r));
    expect(copies(), "a reader that took nothing for 59 s keeps it").toBe(before + 1);
    server.clock.advance(1_000);
    await expect.poll(copies).toBe(before);

    const read = await backup();
    expect(read.status).toBe(200);
    expect((await read.arrayBuffer()).byteLength).toBe(Number(read.headers.get("content-length")));
    await expect.poll(copies).toBe(before);
    const next = await backup();
    expect(next.status, "sent: the next one is made").toBe(200);
    await next.body!.cancel();
    await expect.poll(copies).toBe(before);
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
