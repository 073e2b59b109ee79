import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { SourceKind } from "../../server/domain/source.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { countRows, createTestServer, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const FIXTURES = new URL("../fixtures/webhooks/", import.meta.url);
// Fixtures are edited freely below, so they are untyped.
const fixture = (name: string): any => JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8"));
const hmac = (secret: string, body: string) => createHmac("sha256", secret).update(body).digest("hex");

function addSource(server: TestServer, kind: SourceKind, repos: string[], extra: { services?: string[]; header?: string } = {}) {
  const { source, secret } = server.sourceOperations.add({ kind, repos, ...extra });
  return { id: source.id, secret: secret! };
}

async function post(server: TestServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const res = await server.request(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: text });
  const answer = await res.text();
  return { status: res.status, text: answer, json: answer ? JSON.parse(answer) : undefined };
}

/** A ghcr push of `ghcr.io/acme/web:<tag>`, as GitHub sends it for a tagged version. */
function ghcrPush(tag: string, digest = sha(1)) {
  const body = fixture("ghcr-package-published.json");
  body.package.package_version.container_metadata.tag = { name: tag, digest };
  body.package.package_version.package_url = `ghcr.io/Acme/Web:${tag}`;
  return JSON.stringify(body);
}

function github(server: TestServer, id: string, secret: string, body: string, opts: { delivery?: string; event?: string; signature?: string } = {}) {
  return post(server, `/hooks/github/${id}`, body, {
    "x-github-event": opts.event ?? "package",
    "x-github-delivery": opts.delivery ?? crypto.randomUUID(),
    "x-hub-signature-256": opts.signature ?? `sha256=${hmac(secret, body)}`,
  });
}

describe("POST /hooks/github/:sourceId", () => {
  it("deploys a signed ghcr push to the service running that tag", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:v1" });
    server.registry.push({ registry: "ghcr.io", repository: "acme/web", tag: "v1" }, sha(2));
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/*"]);

    const res = await github(server, id, secret, ghcrPush("v1", sha(2)));

    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments).toHaveLength(1);
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect(done.status, done.message ?? "").toBe("succeeded");
    expect(done).toMatchObject({ trigger: "github", requestedBy: `source:${id}`, digest: sha(2) });
  });

  it("respects a hold like any registry webhook: the held service's push ends skipped", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:v1" });
    server.registry.push({ registry: "ghcr.io", repository: "acme/web", tag: "v1" }, sha(2));
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/*"]);
    const first = await github(server, id, secret, ghcrPush("v1", sha(2)));
    await waitForFinal(server, first.json.deployments[0].id);
    server.holds.hold("web", first.json.deployments[0].id, "rolled back by hand", "ops");
    server.registry.push({ registry: "ghcr.io", repository: "acme/web", tag: "v1" }, sha(3));
    const held = await github(server, id, secret, ghcrPush("v1", sha(3)));
    const done = await waitForFinal(server, held.json.deployments[0].id);
    expect(done.status, done.message ?? "").toBe("skipped");
    expect(server.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("answers GitHub's ping with 202 once the signature checks out", async () => {
    const server = createTestServer();
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/*"]);
    const ping = JSON.stringify({ zen: "Design for failure.", hook_id: 1 });
    const res = await github(server, id, secret, ping, { event: "ping" });
    expect(res.status, res.text).toBe(202);
    expect(res.json).toEqual({ deployments: [], ignored: [{ reason: "ping" }] });
    expect((await github(server, id, "wrong", ping, { event: "ping" })).status).toBe(401);
  });

  it("refuses bad, foreign-body and missing signatures with 401 and writes nothing", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:v1" });
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/*"]);
    const body = ghcrPush("v1");
    const cases = [
      { signature: `sha256=${"0".repeat(64)}` },
      { signature: `sha256=${hmac(secret, ghcrPush("v2"))}` },
      { signature: `sha256=${hmac("another-secret", body)}` },
      { signature: hmac(secret, body) }, // no sha256= prefix
    ];
    for (const opts of cases) {
      const res = await github(server, id, secret, body, opts);
      expect(res.status, res.text).toBe(401);
      expect(res.json.error).toMatchObject({ code: "UNAUTHORIZED", requestId: expect.any(String) });
    }
    const missing = await post(server, `/hooks/github/${id}`, body, { "x-github-event": "package" });
    expect(missing.status, missing.text).toBe(401);
    expect(missing.json.error.message).toContain("X-Hub-Signature-256");
    expect(countRows(server, "triggers")).toBe(0);
    expect(countRows(server, "deployments")).toBe(0);
  });

  it("verifies the raw bytes: the same JSON re-serialized does not pass", async () => {
    const server = createTestServer();
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/*"]);
    const body = ghcrPush("v1");
    const spaced = JSON.stringify(JSON.parse(body), null, 2);
    const res = await github(server, id, secret, spaced, { signature: `sha256=${hmac(secret, body)}` });
    expect(res.status, res.text).toBe(401);
    expect((await github(server, id, secret, spaced)).status).toBe(202);
  });

  it("makes a redelivery with the same X-GitHub-Delivery a no-op", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "ghcr.io/acme/web:v1" });
    server.registry.push({ registry: "ghcr.io", repository: "acme/web", tag: "v1" }, sha(2));
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/*"]);
    const body = ghcrPush("v1", sha(2));
    const first = await github(server, id, secret, body, { delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958" });
    const again = await github(server, id, secret, body, { delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958" });
    expect(first.json.deployments, first.text).toHaveLength(1);
    expect(again.status, again.text).toBe(202);
    expect(again.json.deployments).toEqual([]);
    expect(again.json.ignored[0].reason).toBe("duplicate");
    expect(countRows(server, "deployments")).toBe(1);
  });

  it("answers 415 to a signed form-encoded delivery, 403 to a repository the source does not cover", async () => {
    const server = createTestServer();
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/api"]);
    const body = ghcrPush("v1");
    const form = await post(server, `/hooks/github/${id}`, `payload=${encodeURIComponent(body)}`, {
      "content-type": "application/x-www-form-urlencoded",
      "x-github-event": "package",
      "x-hub-signature-256": `sha256=${hmac(secret, `payload=${encodeURIComponent(body)}`)}`,
    });
    expect(form.status, form.text).toBe(415);
    const forbidden = await github(server, id, secret, body);
    expect(forbidden.status, forbidden.text).toBe(403);
    expect(forbidden.json.error.message).toContain("ghcr.io/acme/web");
    expect(countRows(server, "triggers")).toBe(0);
  });

  it("answers 401 for an unknown id, an id of another kind, and a revoked source", async () => {
    const server = createTestServer();
    const harbor = addSource(server, "harbor", ["hub.harbor.com/test-webhook/*"]);
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/*"]);
    const body = ghcrPush("v1");
    expect((await github(server, "src_00000000000000000000000000", secret, body)).status).toBe(401);
    expect((await github(server, "../../etc", secret, body)).status).toBe(404);
    expect((await github(server, harbor.id, harbor.secret, body)).status).toBe(401);
    server.sourceOperations.remove(id);
    const revoked = await github(server, id, secret, body);
    expect(revoked.status, revoked.text).toBe(401);
    expect(revoked.json.error.message).toContain("revoked");
    expect(countRows(server, "triggers")).toBe(0);
  });

  it("accepts the old secret during the rotation's grace and refuses it after", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1), { autoAdvanceUpToMs: 50 });
    const server = createTestServer({}, { clock });
    const { id, secret: old } = addSource(server, "github", ["ghcr.io/acme/*"]);
    const { secret: fresh } = server.sourceOperations.rotate(id, 60 * 60 * 1000);
    expect((await github(server, id, old, ghcrPush("v1"))).status).toBe(202);
    expect((await github(server, id, fresh, ghcrPush("v1"))).status).toBe(202);
    clock.advance(60 * 60 * 1000);
    const late = await github(server, id, old, ghcrPush("v1"));
    expect(late.status, late.text).toBe(401);
    expect((await github(server, id, fresh, ghcrPush("v1"))).status).toBe(202);
  });

  it("counts refusals per source and reason in metrics and in the source's summary", async () => {
    const server = createTestServer();
    const { id, secret } = addSource(server, "github", ["ghcr.io/acme/api"]);
    await github(server, id, secret, ghcrPush("v1"), { signature: "sha256=00" });
    await github(server, id, secret, ghcrPush("v1"));
    await github(server, "src_00000000000000000000000000", secret, ghcrPush("v1"));
    const metrics = await (await server.request("/metrics")).text();
    expect(metrics).toContain(`deployer_source_rejections_total{source="${id}",kind="github",reason="bad_proof"} 1`);
    expect(metrics).toContain(`deployer_source_rejections_total{source="${id}",kind="github",reason="forbidden"} 1`);
    expect(metrics).toContain(`deployer_source_rejections_total{source="unknown",kind="github",reason="unknown_source"} 1`);
    const summary = server.rejections.summaryOf(id);
    expect(summary.counts).toEqual({ bad_proof: 1, forbidden: 1 });
    expect(summary.recent.map((r) => r.reason)).toEqual(["forbidden", "bad_proof"]);
    expect(server.logLines.join("")).not.toContain(secret);
  });
});

describe("POST /hooks/gitea/:sourceId", () => {
  const body = JSON.stringify(fixture("gitea-package-created.json"));

  it.each(["x-gitea-signature", "x-forgejo-signature", "x-hub-signature-256"])("accepts the signature in %s", async (header) => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "gitea.example.com/acme/web:v1.2.0" });
    const { id, secret } = addSource(server, "gitea", ["gitea.example.com/acme/*"]);
    const signature = header === "x-hub-signature-256" ? `sha256=${hmac(secret, body)}` : hmac(secret, body);
    const res = await post(server, `/hooks/gitea/${id}`, body, {
      [header]: signature,
      "x-gitea-event": "package",
      "x-gitea-delivery": crypto.randomUUID(),
    });
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments).toHaveLength(1);
  });

  it("refuses a bad signature and makes a redelivered X-Gitea-Delivery a no-op", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "gitea.example.com/acme/web:v1.2.0" });
    const { id, secret } = addSource(server, "gitea", ["gitea.example.com/acme/*"]);
    const bad = await post(server, `/hooks/gitea/${id}`, body, { "x-gitea-signature": hmac("nope", body) });
    expect(bad.status, bad.text).toBe(401);
    const headers = { "x-gitea-signature": hmac(secret, body), "x-gitea-delivery": "d-1" };
    expect((await post(server, `/hooks/gitea/${id}`, body, headers)).json.deployments).toHaveLength(1);
    expect((await post(server, `/hooks/gitea/${id}`, body, headers)).json.ignored[0].reason).toBe("duplicate");
    expect(countRows(server, "deployments")).toBe(1);
  });
});

describe("POST /hooks/harbor/:sourceId and /hooks/acr/:sourceId", () => {
  it("accepts Harbor's auth header verbatim (or after Bearer) and makes a redelivered body a no-op", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "debian", image: "hub.harbor.com/test-webhook/debian:latest" });
    const { id, secret } = addSource(server, "harbor", ["hub.harbor.com/test-webhook/*"]);
    const body = readFileSync(new URL("harbor-push.json", FIXTURES), "utf8");
    const first = await post(server, `/hooks/harbor/${id}`, body, { authorization: secret });
    expect(first.status, first.text).toBe(202);
    expect(first.json.deployments).toHaveLength(1);
    const again = await post(server, `/hooks/harbor/${id}`, body, { authorization: `Bearer ${secret}` });
    expect(again.json.ignored[0].reason, again.text).toBe("duplicate");
    expect((await post(server, `/hooks/harbor/${id}`, body, { authorization: `${secret}x` })).status).toBe(401);
    expect((await post(server, `/hooks/harbor/${id}`, body)).status).toBe(401);
    expect((await post(server, `/hooks/harbor/${id}`, body, { authorization: secret, "content-type": "text/plain" })).status).toBe(415);
  });

  it("takes CloudEvents under application/cloudevents+json and refuses a project-wide push outside the source's repositories", async () => {
    const server = createTestServer();
    const { id, secret } = addSource(server, "harbor", ["harbor.dev/library/nginx"]);
    const event = fixture("harbor-pull-cloudevents-source-comment.json");
    event.type = "harbor.artifact.pushed";
    event.data.resources[0].tag = "1.36";
    event.data.resources[0].resource_url = "harbor.dev/library/busybox:1.36";
    const res = await post(server, `/hooks/harbor/${id}`, event, { authorization: secret, "content-type": "application/cloudevents+json" });
    expect(res.status, res.text).toBe(403);
    event.data.repository.repo_full_name = "library/nginx";
    const ok = await post(server, `/hooks/harbor/${id}`, event, { authorization: secret, "content-type": "application/cloudevents+json" });
    expect(ok.status, ok.text).toBe(202);
  });

  it("accepts ACR's custom Authorization header and dedupes on the event id", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "hello", image: "myregistry.azurecr.io/hello-world:v1" });
    const { id, secret } = addSource(server, "acr", ["myregistry.azurecr.io/hello-world"]);
    const body = fixture("acr-push.json");
    const first = await post(server, `/hooks/acr/${id}`, body, { authorization: secret });
    expect(first.json.deployments, first.text).toHaveLength(1);
    expect((await post(server, `/hooks/acr/${id}`, body, { authorization: secret })).json.ignored[0].reason).toBe("duplicate");
    expect((await post(server, `/hooks/acr/${id}`, body, { authorization: "guess" })).status).toBe(401);
  });
});

describe("POST /hooks/ecr/:sourceId", () => {
  it("takes the key from the source's header and dedupes EventBridge retries on the event id", async () => {
    const server = createTestServer();
    const registry = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
    server.swarm.addService({ name: "app", image: `${registry}/my-repository-name:latest` });
    const { id, secret } = addSource(server, "ecr", [`${registry}/*`], { header: "X-Deployer-Key" });
    const body = fixture("ecr-image-push.json");
    expect((await post(server, `/hooks/ecr/${id}`, body, { "x-api-key": secret })).status).toBe(401);
    const first = await post(server, `/hooks/ecr/${id}`, body, { "x-deployer-key": secret });
    expect(first.json.deployments, first.text).toHaveLength(1);
    const retry = await post(server, `/hooks/ecr/${id}`, body, { "x-deployer-key": secret });
    expect(retry.json.ignored[0].reason).toBe("duplicate");
    const failed = await post(
      server,
      `/hooks/ecr/${id}`,
      { ...body, id: "other", detail: { ...body.detail, result: "FAILURE" } },
      { "x-deployer-key": secret },
    );
    expect(failed.json).toMatchObject({ deployments: [], ignored: [{ reason: "not_a_push" }] });
    expect(countRows(server, "deployments")).toBe(1);
  });
});

describe("POST /hooks/quay/:sourceId/:secret", () => {
  it("takes the secret from the path, deploys each updated tag and refuses a wrong or missing secret", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "test", image: "quay.io/dgangaia/test:latest" });
    const { id, secret } = addSource(server, "quay", ["quay.io/dgangaia/*"]);
    const body = fixture("quay-repo-push.json");
    const res = await post(server, `/hooks/quay/${id}/${secret}`, body);
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments).toHaveLength(1);
    expect((await post(server, `/hooks/quay/${id}/${secret.slice(1)}`, body)).status).toBe(401);
    expect((await post(server, `/hooks/quay/${id}`, body)).status).toBe(401);
    const notFound = await server.request(`/hooks/quay/${id}/${secret}`);
    expect(await notFound.text()).not.toContain(secret);
  });
});
