import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { countRows, createTestServer, testSecret } from "../helpers/test-server.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dataDir = mkdtempSync(path.join(tmpdir(), "source-cli-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI against `db` with the test server's key and nothing else of the developer's environment. */
function run(args: string[], db: string, env: Record<string, string> = {}): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DEPLOYER_")));
  return new Promise((resolve) => {
    execFile(
      "npx",
      ["tsx", "server/cli/source.ts", ...args],
      { cwd: ROOT, env: { ...inherited, DEPLOYER_DB: db, DEPLOYER_SECRET: testSecret, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const show = (r: Run) => JSON.stringify(r, null, 1);

// Every case spawns tsx (about a second each), so the timeout is generous for loaded CI machines.
describe("npm run source", { timeout: 60_000 }, () => {
  it("adds a github source whose printed secret and URL the running server accepts", async () => {
    const db = path.join(dataDir, "add", "deployer.db");
    const added = await run(["add", "--kind", "github", "--repo", "ghcr.io/acme/*", "--service", "web", "--json"], db, {
      DEPLOYER_URL: "https://deployer.example.com/",
    });
    expect(added.code, show(added)).toBe(0);
    const { source, secret, url } = JSON.parse(added.stdout);
    expect(url).toBe(`https://deployer.example.com/hooks/github/${source.id}`);
    expect(source).toMatchObject({ kind: "github", repos: ["ghcr.io/acme/*"], services: ["web"], status: "active" });

    const server = createTestServer({}, { dbPath: db });
    const body = JSON.stringify({ zen: "Approachable is better than simple." });
    const ping = await server.request(`/hooks/github/${source.id}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "ping",
        "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`,
      },
      body,
    });
    expect(ping.status, await ping.text()).toBe(202);
  });

  it("prints the id, the secret once and the URL as text; lists, rotates with a grace and removes", async () => {
    const db = path.join(dataDir, "cycle", "deployer.db");
    const added = await run(["add", "--kind", "quay", "--repo", "quay.io/acme/web"], db);
    expect(added.code, show(added)).toBe(0);
    const id = /^id\s+(src_\w+)$/m.exec(added.stdout)?.[1];
    const secret = /^secret\s+(\S+)$/m.exec(added.stdout)?.[1];
    expect(id, added.stdout).toBeDefined();
    expect(added.stdout).toContain(`url     http://localhost:8080/hooks/quay/${id}/${secret}`);

    const list = await run(["list"], db);
    expect(list.stdout, show(list)).toContain(`${id}  quay  active  repos=quay.io/acme/web`);
    expect(list.stdout).not.toContain(secret);

    const rotated = await run(["rotate", id!, "--grace", "1h", "--json"], db);
    expect(rotated.code, show(rotated)).toBe(0);
    const after = JSON.parse(rotated.stdout);
    expect(after.secret).not.toBe(secret);
    expect(Date.parse(after.source.previousSecretValidUntil) - Date.now()).toBeGreaterThan(59 * 60 * 1000);

    const removed = await run(["remove", id!], db);
    expect(removed.stdout, show(removed)).toBe(`revoked ${id}\n`);
    expect(JSON.parse((await run(["list", "--json"], db)).stdout).items[0]).toMatchObject({ id, status: "revoked" });
  });

  it("adds an oidc source with claim rules and no secret, lists its rules, and refuses to rotate it", async () => {
    const db = path.join(dataDir, "oidc", "deployer.db");
    const args = ["add", "--kind", "oidc", "--repo", "ghcr.io/acme/*", "--audience", "deployer", "--claim", "repository=acme/*"];
    const added = await run([...args, "--claim", "ref=refs/heads/main", "--claim", "ref=refs/tags/*", "--json"], db);
    expect(added.code, show(added)).toBe(0);
    const { source, secret, url } = JSON.parse(added.stdout);
    expect(secret).toBeNull();
    expect(url).toBe("http://localhost:8080/hooks/ci");
    expect(source).toMatchObject({ kind: "oidc", audience: "deployer", claims: { repository: ["acme/*"], ref: ["refs/heads/main", "refs/tags/*"] } });
    const text = await run(["list"], db);
    expect(text.stdout).toContain(
      "issuer=https://token.actions.githubusercontent.com audience=deployer repository=acme/* ref=refs/heads/main|refs/tags/*",
    );
    const rotate = await run(["rotate", source.id], db);
    expect(rotate.code, show(rotate)).toBe(2);
    expect(rotate.stderr).toContain("no secret to rotate");
    const bad = await run(["add", "--kind", "oidc", "--repo", "ghcr.io/acme/*", "--audience", "deployer", "--claim", "repository"], db);
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr).toContain("NAME=PATTERN");
  });

  it("refuses bad input with exit 2 and writes nothing, and an unknown id with exit 1", async () => {
    const db = path.join(dataDir, "bad", "deployer.db");
    for (const args of [
      ["add", "--kind", "svn", "--repo", "acme/web"],
      ["add", "--kind", "github"],
      ["add", "--kind", "github", "--repo", "acme/web:latest"],
      ["rotate"],
      ["frobnicate"],
    ]) {
      const r = await run(args, db);
      expect(r.code, show(r)).toBe(2);
      expect(r.stdout, show(r)).toBe("");
    }
    const unknown = await run(["remove", "src_00000000000000000000000000"], db);
    expect(unknown.code, show(unknown)).toBe(1);
    const server = createTestServer({}, { dbPath: db });
    expect(countRows(server, "sources")).toBe(0);
  });
});
