import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { countRows, createTestServer, sha, testSecret, waitForFinal, type TestServer } from "../helpers/test-server.js";

async function post(server: TestServer, body: unknown, token: string | undefined, headers: Record<string, string> = {}) {
  const res = await server.request("/hooks/ci", {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
}

const token = (server: TestServer, repos = ["ghcr.io/acme/*"]) => server.tokens.signWebhookToken({ sub: "ci-job", repos });

describe("POST /hooks/ci", () => {
  it("deploys the image a job names, with the digest as a hint, as trigger ci", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    server.registry.push({ registry: "ghcr.io", repository: "acme/web", tag: "main" }, sha(4));
    const res = await post(server, { image: "ghcr.io/acme/web:main", digest: sha(4) }, await token(server));
    expect(res.status, res.text).toBe(202);
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect(done).toMatchObject({ status: "succeeded", trigger: "ci", requestedBy: "ci-job", digest: sha(4) });
  });

  it("makes a retried call with the same Idempotency-Key a no-op", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    const t = await token(server);
    const first = await post(server, { image: "ghcr.io/acme/web:main" }, t, { "idempotency-key": "run-42" });
    const again = await post(server, { image: "ghcr.io/acme/web:main" }, t, { "idempotency-key": "run-42" });
    // A retry that minted a new token for the same job (its subject) is the same call too.
    const reminted = await post(server, { image: "ghcr.io/acme/web:main" }, await token(server), { "idempotency-key": "run-42" });
    expect(first.json.deployments, first.text).toHaveLength(1);
    expect(again.json.ignored[0].reason, again.text).toBe("duplicate");
    expect(reminted.json.ignored[0].reason, reminted.text).toBe("duplicate");
    expect(countRows(server, "deployments")).toBe(1);
  });

  it("keeps one caller's Idempotency-Key to that caller and that image: another job's same key, or the same key on another image, deploys", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    server.swarm.addService({ name: "api", image: "ghcr.io/acme/api:main" });
    const web = await server.tokens.signWebhookToken({ sub: "web-pipeline", repos: ["ghcr.io/acme/*"] });
    const other = await server.tokens.signWebhookToken({ sub: "api-pipeline", repos: ["ghcr.io/acme/*"] });
    const first = await post(server, { image: "ghcr.io/acme/web:main" }, web, { "idempotency-key": "run-42" });
    const otherCaller = await post(server, { image: "ghcr.io/acme/web:main" }, other, { "idempotency-key": "run-42" });
    const otherImage = await post(server, { image: "ghcr.io/acme/api:main" }, web, { "idempotency-key": "run-42" });
    expect(first.json.deployments, first.text).toHaveLength(1);
    expect(
      otherCaller.json.deployments.map((d: { service: string }) => d.service),
      otherCaller.text,
    ).toEqual(["web"]);
    expect(
      otherImage.json.deployments.map((d: { service: string }) => d.service),
      otherImage.text,
    ).toEqual(["api"]);
    expect(countRows(server, "triggers")).toBe(3);
  });

  it("takes a webhook token that carries an iss claim (minted by other tooling with the shared secret) as a webhook token", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:main" });
    const minted = await new SignJWT({ sub: "ci-job", repos: ["ghcr.io/acme/*"] })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer("https://ci.example.test")
      .setAudience("deployer:webhook")
      .setIssuedAt()
      .sign(new TextEncoder().encode(testSecret));
    const res = await post(server, { image: "ghcr.io/acme/web:main" }, minted);
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments).toHaveLength(1);
  });

  it("refuses no token (401), another repository (403), a pinned image or a bad digest (400), writing nothing", async () => {
    const server = createTestServer();
    const t = await token(server);
    expect((await post(server, { image: "ghcr.io/acme/web:main" }, undefined)).status).toBe(401);
    const forbidden = await post(server, { image: "ghcr.io/other/web:main" }, t);
    expect(forbidden.status, forbidden.text).toBe(403);
    const pinned = await post(server, { image: `ghcr.io/acme/web:main@${sha(1)}` }, t);
    expect(pinned.status, pinned.text).toBe(400);
    expect(pinned.json.error.message).toMatch(/^image: /);
    const digest = await post(server, { image: "ghcr.io/acme/web:main", digest: "sha256:nope" }, t);
    expect(digest.json.error.message, digest.text).toMatch(/^digest: /);
    expect((await post(server, { image: "ghcr.io/acme/web:main", extra: 1 }, t)).status).toBe(400);
    expect((await post(server, "image=x", t, { "content-type": "text/plain" })).status).toBe(415);
    expect(countRows(server, "triggers")).toBe(0);
  });
});
