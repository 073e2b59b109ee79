import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/api-client.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { countRows, createTestServer } from "../helpers/test-server.js";

const admin = { scopes: ["sources:admin" as const] };

describe("/api/sources", () => {
  it("adds a source, shows its secret once, and lists it without any secret", async () => {
    const server = createTestServer();
    const added = await api(server, "POST", "/api/sources", {
      ...admin,
      json: { kind: "github", repos: ["ghcr.io/acme/*"], services: ["web"] },
    });
    expect(added.status, added.text).toBe(201);
    const { source, secret, url } = added.body;
    expect(source).toMatchObject({
      kind: "github",
      repos: ["ghcr.io/acme/*"],
      services: ["web"],
      status: "active",
      path: `/hooks/github/${source.id}`,
    });
    expect(secret).toMatch(/^[\w-]{43}$/);
    expect(url).toBe(`http://localhost/hooks/github/${source.id}`);

    const list = await api(server, "GET", "/api/sources", admin);
    expect(list.body.items).toHaveLength(1);
    expect(list.text).not.toContain(secret);
    const row = server.database.sqlite.prepare("select secret from sources").get() as { secret: string };
    expect(row.secret).not.toContain(secret);
  });

  it("stores a presented secret as its hash and an HMAC secret sealed, never as given", async () => {
    const server = createTestServer();
    const quay = server.sourceOperations.add({ kind: "quay", repos: ["quay.io/acme/*"] });
    const github = server.sourceOperations.add({ kind: "github", repos: ["ghcr.io/acme/*"] });
    const stored = (id: string) => (server.database.sqlite.prepare("select secret from sources where id = ?").get(id) as { secret: string }).secret;
    expect(stored(quay.source.id)).toBe(`sha256:${createHash("sha256").update(quay.secret!).digest("hex")}`);
    expect(stored(github.source.id)).toMatch(/^aes256gcm:[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(stored(github.source.id)).not.toContain(github.secret!);
  });

  it("rotates with a grace: the answer says until when the old secret is valid, and a revoked source cannot rotate", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const server = createTestServer({}, { clock });
    const { source } = server.sourceOperations.add({ kind: "harbor", repos: ["harbor.example.com/app/*"] });
    const rotated = await api(server, "POST", `/api/sources/${source.id}/rotate`, { ...admin, json: { grace: "2h" } });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.source.previousSecretValidUntil).toBe("2026-01-01T02:00:00.000Z");
    const noBody = await api(server, "POST", `/api/sources/${source.id}/rotate`, admin);
    expect(noBody.body.source.previousSecretValidUntil, noBody.text).toBe("2026-01-02T00:00:00.000Z");
    const removed = await api(server, "DELETE", `/api/sources/${source.id}`, admin);
    expect(removed.body.source).toMatchObject({ status: "revoked", previousSecretValidUntil: null });
    const again = await api(server, "POST", `/api/sources/${source.id}/rotate`, { ...admin, json: {} });
    expect(again.status, again.text).toBe(409);
    expect(again.body.error.code).toBe("CONFLICT");
  });

  it("shows the summary of refused deliveries on GET /api/sources/:id", async () => {
    const server = createTestServer();
    const { source } = server.sourceOperations.add({ kind: "harbor", repos: ["harbor.example.com/app/*"] });
    await server.request(`/hooks/harbor/${source.id}`, { method: "POST", headers: { authorization: "guess" }, json: {} });
    const detail = await api(server, "GET", `/api/sources/${source.id}`, admin);
    expect(detail.status, detail.text).toBe(200);
    expect(detail.body.rejections).toEqual({
      counts: { bad_proof: 1 },
      recent: [{ at: expect.any(String), reason: "bad_proof", message: expect.stringContaining("does not match") }],
    });
  });

  it.each([
    [{ kind: "svn", repos: ["acme/web"] }, "kind"],
    [{ kind: "github", repos: [] }, "repos"],
    [{ kind: "github", repos: ["acme/web:latest"] }, "repos"],
    [{ kind: "github", repos: ["ACME/*/x@y"] }, "repos"],
    [{ kind: "github", repos: ["acme/web"], services: ["bad name"] }, "services"],
    [{ kind: "github", repos: ["acme/web"], header: "x-key" }, "header"],
    [{ kind: "ecr", repos: ["acme/web"], header: "bad header" }, "header"],
    [{ kind: "github", repos: ["acme/web"], secret: "mine" }, "body"],
  ])("refuses %j naming %s, and writes nothing", async (json, field) => {
    const server = createTestServer();
    const res = await api(server, "POST", "/api/sources", { ...admin, json });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error).toMatchObject({ code: "VALIDATION_FAILED", requestId: expect.any(String) });
    if (field !== "body") expect(res.body.error.message, res.text).toMatch(new RegExp(`^${field}`));
    expect(countRows(server, "sources")).toBe(0);
  });

  it("refuses a bad grace, an unknown id and a malformed id in the envelope", async () => {
    const server = createTestServer();
    const { source } = server.sourceOperations.add({ kind: "quay", repos: ["quay.io/acme/*"] });
    const grace = await api(server, "POST", `/api/sources/${source.id}/rotate`, { ...admin, json: { grace: "forever" } });
    expect(grace.status, grace.text).toBe(400);
    expect(grace.body.error.message).toMatch(/^grace/);
    expect((await api(server, "GET", "/api/sources/src_00000000000000000000000000", admin)).status).toBe(404);
    expect((await api(server, "GET", "/api/sources/nope", admin)).status).toBe(400);
    expect(server.sourceOperations.get(source.id).rotatedAt).toBeNull();
  });

  it("needs sources:admin: a deployments token is refused, and a sources token cannot read deployments", async () => {
    const server = createTestServer();
    const deployments = await api(server, "GET", "/api/sources", { scopes: ["deployments:read", "deployments:write"] });
    expect(deployments.status, deployments.text).toBe(403);
    expect(deployments.body.error.message).toContain("sources:admin");
    expect((await api(server, "GET", "/api/deployments", admin)).status).toBe(403);
  });

  it("adds gar and oidc sources with their issuer, audience, email or claims and no secret; rotate does not apply to them", async () => {
    const server = createTestServer();
    const gar = await api(server, "POST", "/api/sources", {
      ...admin,
      json: { kind: "gar", repos: ["us-east1-docker.pkg.dev/p/r/*"], audience: "deployer", email: "pusher@p.iam.gserviceaccount.com" },
    });
    expect(gar.status, gar.text).toBe(201);
    expect(gar.body).toMatchObject({
      secret: null,
      source: {
        kind: "gar",
        issuer: "https://accounts.google.com",
        jwksUrl: "https://www.googleapis.com/oauth2/v3/certs",
        audience: "deployer",
        email: "pusher@p.iam.gserviceaccount.com",
        claims: null,
        path: `/hooks/gar/${gar.body.source.id}`,
      },
    });
    const oidc = await api(server, "POST", "/api/sources", {
      ...admin,
      json: {
        kind: "oidc",
        repos: ["ghcr.io/acme/*"],
        audience: "https://deployer.example.com",
        claims: { repository: "acme/*", ref: ["refs/heads/main"] },
      },
    });
    expect(oidc.status, oidc.text).toBe(201);
    expect(oidc.body).toMatchObject({
      secret: null,
      url: "http://localhost/hooks/ci",
      source: {
        issuer: "https://token.actions.githubusercontent.com",
        jwksUrl: "https://token.actions.githubusercontent.com/.well-known/jwks",
        claims: { repository: ["acme/*"], ref: ["refs/heads/main"] },
        path: "/hooks/ci",
      },
    });
    const rotate = await api(server, "POST", `/api/sources/${oidc.body.source.id}/rotate`, { ...admin, json: {} });
    expect(rotate.status, rotate.text).toBe(409);
    expect(rotate.body.error.message).toContain("no secret to rotate");
    expect((await api(server, "GET", "/api/sources", admin)).body.items).toHaveLength(2);
    const rows = server.database.sqlite.prepare("select secret from sources").all() as Array<{ secret: string | null }>;
    expect(rows).toEqual([{ secret: null }, { secret: null }]);
    const removed = await api(server, "DELETE", `/api/sources/${gar.body.source.id}`, admin);
    expect(removed.body.source.status).toBe("revoked");
  });

  it.each([
    [{ kind: "gar", repos: ["a.dev/p/*"], email: "x@p.iam.gserviceaccount.com" }, "audience"],
    [{ kind: "gar", repos: ["a.dev/p/*"], audience: "d" }, "email"],
    [{ kind: "gar", repos: ["a.dev/p/*"], audience: "d", email: "x@y.z", claims: { sub: "1" } }, "claims"],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d" }, "claims"],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { ref: "refs/heads/main" } }, "claims"],
    [{ kind: "gar", repos: ["a.dev/p/*"], audience: "d", email: "x\u001b]0;owned\u0007@y.z" }, "email"],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { repository: "acme/web\u202e" } }, "claims.repository"],
    // Any project on gitlab.com can get a token for any audience, as any repository on GitHub can.
    [{ kind: "oidc", repos: ["registry.gitlab.com/acme/*"], audience: "d", issuer: "https://gitlab.com", claims: { ref: "main" } }, "claims"],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { repository: "*" } }, "claims.repository"],
    // A rule on an identity claim that any account would match is no rule.
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { sub: "repo:*" } }, "claims.sub\\[0\\]"],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { repository: "*/web" } }, "claims.repository\\[0\\]"],
    [
      { kind: "oidc", repos: ["registry.gitlab.com/acme/*"], audience: "d", issuer: "https://gitlab.com", claims: { project_path: "*/app" } },
      "claims.project_path",
    ],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { repository: "acme/*" }, email: "x@y.z" }, "email"],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { repository: "acme/*" }, jwksUrl: "http://10.0.0.1/jwks" }, "jwksUrl"],
    [{ kind: "oidc", repos: ["ghcr.io/acme/*"], audience: "d", claims: { repository: "acme/*" }, issuer: "token.actions.example.com" }, "issuer"],
    [{ kind: "github", repos: ["ghcr.io/acme/*"], audience: "d" }, "audience"],
  ])("refuses the OIDC source %j naming %s", async (json, field) => {
    const server = createTestServer();
    const res = await api(server, "POST", "/api/sources", { ...admin, json });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message, res.text).toMatch(new RegExp(`^${field}`));
    expect(countRows(server, "sources")).toBe(0);
  });
});
