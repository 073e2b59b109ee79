import { readFileSync } from "node:fs";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { newKey, OidcIssuer, unsignedToken } from "../helpers/oidc-issuer.js";
import { countRows, createTestServer, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const FIXTURE: any = JSON.parse(readFileSync(new URL("../fixtures/webhooks/gar-pubsub-insert.json", import.meta.url), "utf8"));
const HOST = "us-east1-docker.pkg.dev";
const IMAGE = { registry: HOST, repository: "my-project/my-repo/hello-world", tag: "1.1" };
const AUDIENCE = "https://deployer.example.com/hooks/gar";
const EMAIL = "pusher@my-project.iam.gserviceaccount.com";

function addGar(server: TestServer, issuer: OidcIssuer, extra: { issuer?: string } = {}) {
  const { source } = server.sourceOperations.add({
    kind: "gar",
    repos: [`${HOST}/my-project/my-repo/*`],
    audience: AUDIENCE,
    email: EMAIL,
    issuer: extra.issuer ?? issuer.url,
    jwksUrl: issuer.jwksUrl,
  });
  return source.id;
}

/** The push subscription's token: Google's claims for a service account. */
const googleToken = (issuer: OidcIssuer, server: TestServer, claims: Record<string, unknown> = {}, opts: Parameters<OidcIssuer["sign"]>[2] = {}) =>
  issuer.sign(
    { aud: AUDIENCE, email: EMAIL, email_verified: true, sub: "104857600000000000000", azp: "104857600000000000000", ...claims },
    server.clock.now(),
    opts,
  );

function envelope(data: unknown, messageId = String(Math.floor(Math.random() * 1e15))) {
  const encoded = typeof data === "string" ? data : Buffer.from(JSON.stringify(data)).toString("base64");
  return { ...FIXTURE, message: { ...FIXTURE.message, data: encoded, messageId, message_id: messageId } };
}

async function push(server: TestServer, id: string, token: string | undefined, body: unknown = FIXTURE) {
  const res = await server.request(`/hooks/gar/${id}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
}

describe("POST /hooks/gar/:sourceId", () => {
  it("deploys the INSERT of a tagged image to the pushed digest, and a redelivered messageId is a no-op", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "hello", image: `${HOST}/my-project/my-repo/hello-world:1.1` });
    server.registry.push(IMAGE, sha(7));
    const id = addGar(server, issuer);

    const res = await push(server, id, await googleToken(issuer, server));
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments).toHaveLength(1);
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect(done).toMatchObject({ status: "succeeded", trigger: "gar", requestedBy: `source:${id}`, digest: sha(7) });
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);

    const again = await push(server, id, await googleToken(issuer, server));
    expect(again.status, again.text).toBe(202);
    expect(again.json).toMatchObject({ deployments: [], ignored: [{ reason: "duplicate" }] });
    expect(countRows(server, "deployments")).toBe(1);
  });

  it("accepts both ways Google writes its issuer, and no other", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    const id = addGar(server, issuer, { issuer: "https://accounts.google.com" });
    for (const iss of ["https://accounts.google.com", "accounts.google.com"]) {
      const res = await push(
        server,
        id,
        await googleToken(issuer, server, { iss }),
        envelope(JSON.parse(Buffer.from(FIXTURE.message.data, "base64").toString())),
      );
      expect(res.status, `${iss}: ${res.text}`).toBe(202);
    }
    expect((await push(server, id, await googleToken(issuer, server, { iss: "https://accounts.google.com/" }))).status).toBe(401);
  });

  it("acknowledges a DELETE and an untagged INSERT without deploying, so Pub/Sub does not retry them", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "hello", image: `${HOST}/my-project/my-repo/hello-world:1.1` });
    const id = addGar(server, issuer);
    const token = await googleToken(issuer, server);
    const deleted = await push(server, id, token, envelope({ action: "DELETE", tag: `${HOST}/my-project/my-repo/hello-world:1.1` }));
    expect(deleted.status, deleted.text).toBe(202);
    expect(deleted.json).toEqual({ deployments: [], ignored: [{ reason: "not_a_push", action: "DELETE" }] });
    const untagged = await push(server, id, token, envelope({ action: "INSERT", digest: `${HOST}/my-project/my-repo/hello-world@${sha(3)}` }));
    expect(untagged.json, untagged.text).toEqual({
      deployments: [],
      ignored: [{ reason: "untagged", repository: "my-project/my-repo/hello-world" }],
    });
    expect(countRows(server, "triggers")).toBe(0);
  });

  it("answers 400 to data that is not base64 JSON, and 403 to an image outside the source's repositories", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    const id = addGar(server, issuer);
    const token = await googleToken(issuer, server);
    for (const data of ["%%%not base64%%%", Buffer.from("not json").toString("base64"), Buffer.from("[1]").toString("base64")]) {
      const res = await push(server, id, token, envelope(data));
      expect(res.status, res.text).toBe(400);
      expect(res.json.error.message).toMatch(/^message\.data/);
    }
    const other = await push(server, id, token, envelope({ action: "INSERT", tag: `${HOST}/other-project/repo/app:1` }));
    expect(other.status, other.text).toBe(403);
    expect(countRows(server, "triggers")).toBe(0);
    expect(server.rejections.summaryOf(id).counts).toEqual({ invalid_payload: 3, forbidden: 1 });
  });

  it("refuses every token that is not the subscription's with 401, writing nothing, counted by reason", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    server.swarm.addService({ name: "hello", image: `${HOST}/my-project/my-repo/hello-world:1.1` });
    const id = addGar(server, issuer);
    const now = server.clock.now();
    const stranger = await newKey("key-1"); // the issuer's kid, another key
    const unknown = await newKey("key-x");
    const hs256 = await new SignJWT({ iss: issuer.url, aud: AUDIENCE, email: EMAIL, email_verified: true })
      .setProtectedHeader({ alg: "HS256", kid: "key-1" })
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("a-shared-secret-nobody-should-accept-here"));
    const cases: Array<[string, string, string]> = [
      ["wrong audience", await googleToken(issuer, server, { aud: "https://elsewhere.example.com" }), "bad_proof"],
      ["wrong issuer", await googleToken(issuer, server, { iss: "https://issuer.example.com" }), "bad_proof"],
      ["expired", await googleToken(issuer, server, { iat: Math.floor(now / 1000) - 7200, exp: Math.floor(now / 1000) - 3600 }), "bad_proof"],
      ["not yet valid", await googleToken(issuer, server, { nbf: Math.floor(now / 1000) + 600 }), "bad_proof"],
      ["another key, same kid", await googleToken(issuer, server, {}, { key: stranger }), "bad_proof"],
      ["another key, unknown kid", await googleToken(issuer, server, {}, { key: unknown }), "bad_proof"],
      [
        "alg none",
        unsignedToken({ iss: issuer.url, aud: AUDIENCE, email: EMAIL, email_verified: true, exp: now / 1000 + 600, iat: now / 1000 }),
        "bad_proof",
      ],
      ["HS256", hs256, "bad_proof"],
      ["not a JWT", "abc.def", "bad_proof"],
      ["another service account", await googleToken(issuer, server, { email: "intruder@evil.iam.gserviceaccount.com" }), "claims_mismatch"],
      ["email not verified", await googleToken(issuer, server, { email_verified: false }), "claims_mismatch"],
      ["email_verified as a string", await googleToken(issuer, server, { email_verified: "true" }), "claims_mismatch"],
    ];
    for (const [name, token, reason] of cases) {
      const res = await push(server, id, token);
      expect(res.status, `${name}: ${res.text}`).toBe(401);
      expect(res.json.error, name).toMatchObject({ code: "UNAUTHORIZED", requestId: expect.any(String) });
      expect(server.rejections.summaryOf(id).recent[0]!.reason, name).toBe(reason);
    }
    const missing = await push(server, id, undefined);
    expect(missing.status, missing.text).toBe(401);
    expect(missing.json.error.message).toContain("Bearer");
    expect(countRows(server, "triggers")).toBe(0);
    expect(server.rejections.summaryOf(id).counts).toEqual({ bad_proof: 9, claims_mismatch: 3, missing_proof: 1 });
    const metrics = await (await server.request("/metrics")).text();
    expect(metrics).toContain(`deployer_source_rejections_total{source="${id}",kind="gar",reason="bad_proof"} 9`);
    expect(metrics).toContain(`deployer_source_rejections_total{source="${id}",kind="gar",reason="claims_mismatch"} 3`);
    expect(server.logLines.join("")).not.toContain(hs256);
  });

  it("answers 401 for an unknown or revoked source, before any key is fetched", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer();
    const id = addGar(server, issuer);
    const token = await googleToken(issuer, server);
    expect((await push(server, "src_00000000000000000000000000", token)).status).toBe(401);
    server.sourceOperations.remove(id);
    const revoked = await push(server, id, token);
    expect(revoked.status, revoked.text).toBe(401);
    expect(revoked.json.error.message).toContain("revoked");
    expect(issuer.fetches).toBe(0);
  });

  it("answers 503 in the envelope when the issuer's keys cannot be fetched (down, or hanging past the timeout)", async () => {
    const issuer = await OidcIssuer.start();
    const server = createTestServer({ DEPLOYER_OIDC_JWKS_TIMEOUT: "0.3s" });
    const id = addGar(server, issuer);
    issuer.hang();
    const started = Date.now();
    const hung = await push(server, id, await googleToken(issuer, server));
    expect(hung.status, hung.text).toBe(503);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(hung.json.error).toMatchObject({ code: "UNAVAILABLE", requestId: expect.any(String) });
    await issuer.stop();
    const down = await push(server, id, await googleToken(issuer, server));
    expect(down.status, down.text).toBe(503);
    expect(down.json.error.message).toContain("JWKS");
    expect(server.rejections.summaryOf(id).counts).toEqual({ issuer_unavailable: 2 });
    expect(countRows(server, "triggers")).toBe(0);
  });
});
