import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createTokenService } from "../../server/auth/tokens.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SECRET = "cli-test-secret-cli-test-secret-cli-test-secret";
const dataDir = mkdtempSync(path.join(tmpdir(), "token-cli-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with a clean deployer environment: only what the test passes, never the developer's own secret. */
function run(
  args: string[],
  env: Record<string, string> = { DEPLOYER_SECRET: SECRET },
  command = ["npx", "tsx", "server/cli/token.ts"],
): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DEPLOYER_")));
  return new Promise((resolve) => {
    execFile(
      command[0]!,
      [...command.slice(1), ...args],
      { cwd: ROOT, env: { ...inherited, DEPLOYER_DB: path.join(dataDir, "default", "deployer.db"), ...env }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const show = (r: Run) => JSON.stringify(r, null, 1);
const verifier = (secret = SECRET) => createTokenService({ secret, dockerHubRegistry: "docker.io" });
const TOKEN_LINE = /^[\w-]+\.[\w-]+\.[\w-]+\n$/;

// Every case spawns tsx (about a second each), so the timeout is generous for loaded CI machines.
describe("npm run token", { timeout: 60_000 }, () => {
  it("prints only a webhook token that verifies and carries the repos, services, sub and expiry", async () => {
    const r = await run([
      "webhook",
      "--repo",
      "acme/web",
      "--repo",
      "127.0.0.1:5000/acme/*",
      "--service",
      "web",
      "--service",
      "worker",
      "--sub",
      "ci",
      "--expires",
      "90d",
    ]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout, show(r)).toMatch(TOKEN_LINE);
    const claims = await verifier().verifyWebhookToken(r.stdout.trim());
    expect(claims, show(r)).toMatchObject({ sub: "ci", repos: ["acme/web", "127.0.0.1:5000/acme/*"], services: ["web", "worker"] });
    const days = ((claims.exp ?? 0) - Date.now() / 1000) / 86_400;
    expect(days, show(r)).toBeGreaterThan(89.9);
    expect(days, show(r)).toBeLessThanOrEqual(90);
  });

  it("prints an api token with the requested scopes and no expiry by default", async () => {
    const r = await run(["api", "--scope", "deployments:read deployments:write"]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout, show(r)).toMatch(TOKEN_LINE);
    const claims = await verifier().verifyApiToken(r.stdout.trim());
    expect(claims, show(r)).toMatchObject({ sub: "api", scopes: ["deployments:read", "deployments:write"] });
    expect(claims.exp, show(r)).toBeUndefined();
  });

  it("prints the token and what it carries as one JSON line with --json, for either kind", async () => {
    const webhook = await run(["webhook", "--repo", "acme/web", "--service", "web", "--sub", "ci", "--expires", "1h", "--json"]);
    expect(webhook.code, show(webhook)).toBe(0);
    expect(webhook.stdout.endsWith("}\n") && webhook.stdout.split("\n").length === 2, show(webhook)).toBe(true);
    const w = JSON.parse(webhook.stdout) as Record<string, unknown>;
    expect(w).toMatchObject({ kind: "webhook", sub: "ci", repos: ["acme/web"], services: ["web"] });
    const claims = await verifier().verifyWebhookToken(w.token as string);
    expect(w.expiresAt).toBe(new Date(claims.exp! * 1000).toISOString());
    const api = await run(["api", "--scope", "deployments:read", "--json"], { DEPLOYER_SECRET: SECRET }, ["node", "bin/deployer.mjs", "token"]);
    expect(api.code, show(api)).toBe(0);
    expect(JSON.parse(api.stdout)).toEqual({
      token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
      kind: "api",
      sub: "api",
      expiresAt: null,
      scopes: ["deployments:read"],
    });
    await expect(verifier().verifyApiToken(JSON.parse(api.stdout).token)).resolves.toMatchObject({ scopes: ["deployments:read"] });
  });

  it("generates the key beside DEPLOYER_DB when none is configured, where the server will read it", async () => {
    const db = path.join(dataDir, "generated", "deployer.db");
    const r = await run(["api", "--scope", "deployments:read"], { DEPLOYER_DB: db });
    expect(r.code, show(r)).toBe(0);
    const secret = readFileSync(path.join(dataDir, "generated", "secret"), "utf8").trim();
    await expect(verifier(secret).verifyApiToken(r.stdout.trim())).resolves.toMatchObject({ scopes: ["deployments:read"] });
    expect(r.stderr, show(r)).toMatch(/generated a new signing key/);
  });

  it.each([
    [[], /webhook or api/],
    [["refresh"], /unknown token kind "refresh"/],
    [["webhook"], /--repo/],
    [["webhook", "--repo", "Acme/Web"], /Acme\/Web/],
    [["webhook", "--repo", "acme/web", "--expires", "soon"], /expires/],
    [["webhook", "--repo", "acme/web", "--service", "bad name"], /services/],
    [["webhook", "--repo", "acme/web", "--colour", "red"], /Unknown option '--colour'/],
    [["api"], /--scope/],
    [["api", "--scope", "deployments:admin"], /unknown scope "deployments:admin"/],
    [["api", "--scope", "deployments:read", "extra"], /unexpected argument "extra"/],
  ])("exits 2 with usage and an empty stdout for %j", async (args, message) => {
    const db = path.join(dataDir, "usage", "deployer.db");
    const r = await run(args, { DEPLOYER_DB: db });
    expect(r.code, show(r)).toBe(2);
    expect(r.stdout, show(r)).toBe("");
    expect(r.stderr, show(r)).toMatch(message);
    expect(r.stderr, show(r)).toMatch(/usage:/);
    expect(existsSync(path.join(dataDir, "usage", "secret")), "a usage error must not generate a key").toBe(false);
  });

  it("exits 2 naming the variable when the configuration is bad", async () => {
    const r = await run(["api", "--scope", "deployments:read"], { DEPLOYER_SECRET: "too-short" });
    expect(r.code, show(r)).toBe(2);
    expect(r.stdout, show(r)).toBe("");
    expect(r.stderr, show(r)).toMatch(/DEPLOYER_SECRET: must be at least 32 bytes/);
  });

  it("prints only the token through npm run -s, the form the README documents", async () => {
    const r = await run(["-s", "token", "--", "api", "--scope", "deployments:read"], { DEPLOYER_SECRET: SECRET }, ["npm", "run"]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout, show(r)).toMatch(TOKEN_LINE);
  });
});
