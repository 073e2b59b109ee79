import { describe, expect, it } from "vitest";
import { newKey, OidcIssuer, unsignedToken } from "../helpers/oidc-issuer.js";
import { countRows, createTestServer, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const AUDIENCE = "https://deployer.example.com";

function addOidc(
  server: TestServer,
  issuer: OidcIssuer,
  extra: { repos?: string[]; services?: string[]; claims?: Record<string, string | string[]> } = {},
) {
  const { source } = server.sourceOperations.add({
    kind: "oidc",
    repos: extra.repos ?? ["ghcr.io/acme/*"],
    ...(extra.services ? { services: extra.services } : {}),
    issuer: issuer.url,
    audience: AUDIENCE,
    claims: extra.claims ?? { repository: "acme/*", ref: "refs/heads/main" },
  });
  return source.id;
}

/** A GitHub Actions job's token, as `core.getIDToken(AUDIENCE)` returns it. */
function actionsToken(issuer: OidcIssuer, server: TestServer, claims: Record<string, unknown> = {}, opts: Parameters<OidcIssuer["sign"]>[2] = {}) {
  const repository = (claims.repository as string | undefined) ?? "acme/web";
  const ref = (claims.ref as string | undefined) ?? "refs/heads/main";
  return issuer.sign(
    {
      aud: AUDIENCE,
      sub: `repo:${repository}:ref:${ref}`,
      repository,
      repository_owner: repository.split("/")[0],
      ref,
      workflow: "ship",
      job_workflow_ref: `${repository}/.github/workflows/ship.yml@${ref}`,
      event_name: "push",
      ...claims,
    },
    server.clock.now(),
    opts,
  );
}

async function post(server: TestServer, token: string, body: unknown = { image: "ghcr.io/acme/web:main" }, headers: Record<string, string> = {}) {
  const res = await server.request("/hooks/ci", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
}

/** A service "web" on ghcr.io/acme/web:main and an oidc source of a fresh issuer for it, on a server with `env`. */
async function webTrustingIssuer(env: Record<string, string>) {
  const issuer = await OidcIssuer.start();
  const server = createTestServer(env);
  server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
  addOidc(server, issuer);
  return { issuer, server };
}

describe("POST /hooks/ci with a GitHub Actions OIDC token", () => {
  it("deploys the announced image to the pushed digest, says who asked, and a retried Idempotency-Key is a no-op", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    server.registry.push({ registry: "ghcr.io", repository: "acme/web", tag: "main" }, sha(9));
    const id = addOidc(server, issuer);
    const token = await actionsToken(issuer, server);

    const res = await post(server, token, { image: "ghcr.io/acme/web:main", digest: sha(9) }, { "idempotency-key": "run-7" });
    expect(res.status, res.text).toBe(202);
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect(done).toMatchObject({ status: "succeeded", trigger: "ci", requestedBy: `oidc:${id}:acme/web@refs/heads/main`, digest: sha(9) });
    const again = await post(server, token, { image: "ghcr.io/acme/web:main", digest: sha(9) }, { "idempotency-key": "run-7" });
    expect(again.json.ignored[0].reason, again.text).toBe("duplicate");
    expect(countRows(server, "deployments")).toBe(1);
  });

  it("keeps an Idempotency-Key to the job's own subject: another repository's job with the same key deploys", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    addOidc(server, issuer);
    const web = await actionsToken(issuer, server, { repository: "acme/web" });
    const api = await actionsToken(issuer, server, { repository: "acme/api" });
    const first = await post(server, web, { image: "ghcr.io/acme/web:main" }, { "idempotency-key": "run-7" });
    const other = await post(server, api, { image: "ghcr.io/acme/web:main" }, { "idempotency-key": "run-7" });
    expect(first.json.deployments, first.text).toHaveLength(1);
    expect(other.json.deployments, other.text).toHaveLength(1);
    expect(countRows(server, "triggers")).toBe(2);
  });

  it("still takes a webhook JWT beside the oidc sources", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    addOidc(server, issuer);
    const res = await post(server, await server.tokens.signWebhookToken({ sub: "ci-job", repos: ["ghcr.io/acme/*"] }));
    expect(res.status, res.text).toBe(202);
    expect(issuer.fetches).toBe(0);
  });

  it("refuses tokens whose claims the rules do not allow, or that are not the issuer's, with 401 and nothing written", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    const id = addOidc(server, issuer, { claims: { repository: "acme/*", ref: "refs/heads/main", workflow: ["ship", "release"] } });
    const now = Math.floor(server.clock.now() / 1000);
    const cases: Array<[string, string, string]> = [
      ["another owner's repository", await actionsToken(issuer, server, { repository: "evil/web" }), "claims_mismatch"],
      ["a feature branch", await actionsToken(issuer, server, { ref: "refs/heads/feature" }), "claims_mismatch"],
      ["a pull request ref", await actionsToken(issuer, server, { ref: "refs/pull/1/merge" }), "claims_mismatch"],
      ["another workflow", await actionsToken(issuer, server, { workflow: "lint" }), "claims_mismatch"],
      ["no workflow claim", await actionsToken(issuer, server, { workflow: 7 }), "claims_mismatch"],
      ["the default audience", await actionsToken(issuer, server, { aud: "https://github.com/acme" }), "bad_proof"],
      ["expired", await actionsToken(issuer, server, { iat: now - 900, exp: now - 600 }), "bad_proof"],
      ["expired a few seconds ago", await actionsToken(issuer, server, { iat: now - 300, exp: now - 5 }), "bad_proof"],
      ["another key", await actionsToken(issuer, server, {}, { key: await newKey("key-1") }), "bad_proof"],
      [
        "alg none",
        unsignedToken({ iss: issuer.url, aud: AUDIENCE, repository: "acme/web", ref: "refs/heads/main", exp: now + 600, iat: now }),
        "bad_proof",
      ],
    ];
    for (const [name, token, reason] of cases) {
      const res = await post(server, token);
      expect(res.status, `${name}: ${res.text}`).toBe(401);
      expect(res.json.error.code, name).toBe("UNAUTHORIZED");
      expect(server.rejections.summaryOf(id).recent[0]!.reason, name).toBe(reason);
    }
    // Newest first: the first case is the last of the list.
    expect(server.rejections.summaryOf(id).recent[cases.length - 1]!.message).toContain('repository "evil/web"');
    expect(countRows(server, "triggers")).toBe(0);
    const metrics = await (await server.request("/metrics")).text();
    expect(metrics).toContain(`deployer_source_rejections_total{source="${id}",kind="oidc",reason="claims_mismatch"} 5`);
  });

  it("takes no token through a GitHub source stored with rules any account matches (before they were checked), and says so at start", async () => {
    const issuer = await OidcIssuer.start();
    const github = "https://token.actions.githubusercontent.com";
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    const { source } = server.sourceOperations.add({
      kind: "oidc",
      repos: ["ghcr.io/acme/*"],
      issuer: github,
      jwksUrl: issuer.jwksUrl,
      audience: AUDIENCE,
      claims: { sub: "repo:acme/*" },
    });
    const ok = await post(server, await actionsToken(issuer, server, { iss: github }));
    expect(ok.status, ok.text).toBe(202);
    // As a source written before the rule's owner was checked holds it.
    server.database.sqlite.prepare("update sources set claims = ? where id = ?").run(JSON.stringify({ sub: ["repo:*"] }), source.id);
    for (const repository of ["evil/web", "acme/web"]) {
      const res = await post(server, await actionsToken(issuer, server, { iss: github, repository }));
      expect(res.status, res.text).toBe(401);
      expect(res.json.error.message).toContain("would accept any GitHub Actions account's token");
    }
    expect(server.rejections.summaryOf(source.id).recent[0]).toMatchObject({ reason: "claims_mismatch" });
    expect(countRows(server, "triggers")).toBe(1);
    const restarted = createTestServer({}, { dbPath: server.dbPath });
    const warning = restarted.logLines.map((l) => JSON.parse(l)).find((l) => l.source === source.id);
    expect(warning?.msg).toMatch(/^oidc source accepts no token: .*claims\.sub\[0\]: "repo:\*"/);
  });

  it("answers 401 for an issuer no source trusts and for a revoked source, 403 for an image outside the source's repositories", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    const id = addOidc(server, issuer, { repos: ["ghcr.io/acme/web"] });
    const stranger = await actionsToken(issuer, server, { iss: "https://token.actions.example.com" });
    const unknown = await post(server, stranger);
    expect(unknown.status, unknown.text).toBe(401);
    expect(unknown.json.error.message).toContain("no oidc source");
    const other = await post(server, await actionsToken(issuer, server), { image: "ghcr.io/acme/api:main" });
    expect(other.status, other.text).toBe(403);
    expect(other.json.error.message).toContain("ghcr.io/acme/api");
    server.sourceOperations.remove(id);
    const revoked = await post(server, await actionsToken(issuer, server));
    expect(revoked.status, revoked.text).toBe(401);
    expect(revoked.json.error.message).toContain("revoked");
    expect(server.rejections.summaryOf(id).counts).toEqual({ forbidden: 1, revoked: 1 });
    const metrics = await (await server.request("/metrics")).text();
    expect(metrics).toContain(`deployer_source_rejections_total{source="unknown",kind="oidc",reason="unknown_source"} 1`);
    expect(countRows(server, "triggers")).toBe(0);
  });

  it("picks, among the sources of one issuer, the one whose rules and repositories fit, verifying the token once", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "api", image: "ghcr.io/acme/api:main" });
    server.swarm.addService({ name: "api_worker", image: "ghcr.io/acme/api:main" });
    const web = addOidc(server, issuer, { repos: ["ghcr.io/acme/web"], claims: { repository: "acme/web" } });
    const api = addOidc(server, issuer, { repos: ["ghcr.io/acme/api"], services: ["api"], claims: { repository: "acme/api" } });
    const res = await post(server, await actionsToken(issuer, server, { repository: "acme/api" }), { image: "ghcr.io/acme/api:main" });
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments.map((d: { service: string }) => d.service)).toEqual(["api"]);
    expect(res.json.ignored).toContainEqual({ reason: "not_in_token", image: "ghcr.io/acme/api:main", services: 1 });
    expect(server.store.getDeployment(res.json.deployments[0].id).requestedBy).toBe(`oidc:${api}:acme/api@refs/heads/main`);
    expect(issuer.fetches).toBe(1);
    expect(server.rejections.summaryOf(web).counts).toEqual({});
  });

  it("picks up a key rotated at the issuer after one refetch, refuses the removed key, and refetches at most once per cooldown", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer({ DEPLOYER_OIDC_JWKS_COOLDOWN: "1s" });
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    addOidc(server, issuer);
    const old = issuer.key;
    const stranger = await newKey("made-up");
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(202);
    expect(issuer.fetches).toBe(1);

    await issuer.rotate("key-2");
    // Within the cooldown neither the new key id nor a flood of made-up ones costs a fetch.
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(401);
    for (let i = 0; i < 10; i++) {
      const res = await post(server, await actionsToken(issuer, server, {}, { key: stranger, kid: `made-up-${i}` }));
      expect(res.status, res.text).toBe(401);
    }
    expect(issuer.fetches).toBe(1);

    server.clock.advance(1100);
    const rotated = await post(server, await actionsToken(issuer, server));
    expect(rotated.status, rotated.text).toBe(202);
    expect(issuer.fetches).toBe(2);
    const removed = await post(server, await actionsToken(issuer, server, {}, { key: old }));
    expect(removed.status, removed.text).toBe(401);
    expect(removed.json.error.message).toContain("key id");
    expect(issuer.fetches).toBe(2);
  });

  it("keeps the issuer's keys for DEPLOYER_OIDC_JWKS_MAX_AGE on the server's clock, then fetches them again", async () => {
    const { issuer, server } = await webTrustingIssuer({ DEPLOYER_OIDC_JWKS_MAX_AGE: "10m" });
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(202);
    server.clock.advance(9 * 60_000);
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(202);
    expect(issuer.fetches, "still within the age").toBe(1);
    server.clock.advance(2 * 60_000);
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(202);
    expect(issuer.fetches, "older than 10m: fetched again").toBe(2);
  });

  it("asks an issuer whose keys could not be fetched again at most once per DEPLOYER_OIDC_JWKS_COOLDOWN, however many tokens come", async () => {
    const { issuer, server } = await webTrustingIssuer({ DEPLOYER_OIDC_JWKS_COOLDOWN: "30s" });
    issuer.failing = true;
    for (let i = 0; i < 5; i++) expect((await post(server, await actionsToken(issuer, server))).status).toBe(503);
    expect(issuer.failedFetches, "one fetch for five tokens").toBe(1);
    server.clock.advance(31_000);
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(503);
    expect(issuer.failedFetches).toBe(2);
    issuer.failing = false;
    expect((await post(server, await actionsToken(issuer, server))).status, "still cooling down").toBe(503);
    server.clock.advance(31_000);
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(202);
  });

  it("goes on verifying with the keys it holds when fetching them again past their age fails", async () => {
    const { issuer, server } = await webTrustingIssuer({ DEPLOYER_OIDC_JWKS_MAX_AGE: "10m" });
    expect((await post(server, await actionsToken(issuer, server))).status).toBe(202);
    server.clock.advance(11 * 60_000);
    issuer.failing = true;
    const res = await post(server, await actionsToken(issuer, server));
    expect(res.status, res.text).toBe(202);
    expect(issuer.failedFetches).toBe(1);
  });

  it("answers 503 UNAVAILABLE when the issuer's keys cannot be fetched", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    const id = addOidc(server, issuer);
    const token = await actionsToken(issuer, server);
    await issuer.stop();
    const res = await post(server, token);
    expect(res.status, res.text).toBe(503);
    expect(res.json.error).toMatchObject({ code: "UNAVAILABLE", requestId: expect.any(String) });
    expect(server.rejections.summaryOf(id).counts).toEqual({ issuer_unavailable: 1 });
    expect(countRows(server, "triggers")).toBe(0);
  });
});
