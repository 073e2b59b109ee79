import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { countRows, createTestServer, registryPush, sha, testSecret, waitForFinal, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";

async function webhookToken(server: TestServer, claims: { repos?: string[]; services?: string[] } = {}) {
  return server.tokens.signWebhookToken({ sub: "ci-pipeline", repos: claims.repos ?? ["127.0.0.1:5000/acme/*"], services: claims.services });
}

async function post(
  server: TestServer,
  body: unknown,
  token: string | undefined,
  contentType = "application/vnd.docker.distribution.events.v1+json",
) {
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
}

describe("POST /hooks/registry", () => {
  it("deploys a tagged push to the matching service pinned to the resolved digest", async () => {
    const server = createTestServer();
    const service = server.swarm.addService({ name: "web", image: `${repo}:v1`, replicas: 2 });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(2));

    const res = await post(server, registryPush({ repository: "acme/web", tag: "v1", digest: sha(2) }), await webhookToken(server));

    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments).toHaveLength(1);
    expect(res.json.deployments[0]).toMatchObject({
      service: "web",
      status: expect.stringMatching(/^(queued|running)$/),
      url: `/api/deployments/${res.json.deployments[0].id}`,
    });
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect(done.status, done.message ?? "").toBe("succeeded");
    expect(done.digest).toBe(sha(2));
    expect(done.previousImage).toBe(`${repo}:v1`);
    const now = await server.swarm.findService(service.id);
    expect(now?.image).toBe(`${repo}:v1@${sha(2)}`);
    expect(server.registry.lookups).toEqual(["127.0.0.1:5000/acme/web:v1"]);
  });

  it("accepts registry 3.x's v2 media type and plain application/json alike", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(3));
    const token = await webhookToken(server);
    for (const type of ["application/vnd.docker.distribution.events.v2+json", "application/json; charset=utf-8"]) {
      const res = await post(server, registryPush({ repository: "acme/web", tag: "v1", digest: sha(3) }), token, type);
      expect(res.status, res.text).toBe(202);
    }
  });

  it("looks at the tag again when it does not name the payload's digest yet, and deploys the payload's once it does", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    const tag = { registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" };
    // A registry that announces the push before it moves the tag: the first look still finds the old digest.
    server.registry.push(tag, sha(7));
    const resolve = server.registry.resolveDigest.bind(server.registry);
    let looks = 0;
    server.registry.resolveDigest = async (ref) => {
      const answer = await resolve(ref);
      if (++looks === 1) server.registry.push(tag, sha(8));
      return answer;
    };
    const res = await post(server, registryPush({ repository: "acme/web", tag: "v1", digest: sha(8) }), await webhookToken(server));
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect([done.status, done.digest]).toEqual(["succeeded", sha(8)]);
    expect(looks).toBe(2);
  });

  it("deploys the tag's digest when the tag keeps naming another than the payload's", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(9));
    const res = await post(server, registryPush({ repository: "acme/web", tag: "v1", digest: sha(8) }), await webhookToken(server));
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect(done.digest).toBe(sha(9));
    const events = server.store
      .listEvents(done.id)
      .map((e) => e.message)
      .join("\n");
    expect(events).toContain(`the payload named ${sha(8)}, which the tag does not point to, so the tag's digest wins`);
    expect(server.registry.lookups).toHaveLength(8);
  });

  it("acknowledges blob, pull and untagged events without deploying", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    const token = await webhookToken(server);
    const blob = registryPush({ repository: "acme/web", tag: "v1", digest: sha(1), mediaType: "application/octet-stream" });
    const pull = registryPush({ repository: "acme/web", tag: "v1", digest: sha(1), action: "pull" });
    const untagged = registryPush({ repository: "acme/web", digest: sha(1) });
    const res = await post(server, { events: [...blob.events, ...pull.events, ...untagged.events] }, token);
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments).toEqual([]);
    expect(res.json.ignored.map((i: { reason: string }) => i.reason).sort()).toEqual(["not_a_manifest", "not_a_push", "untagged"]);
    expect(countRows(server, "deployments")).toBe(0);
  });

  it("treats a redelivered event id as a no-op", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(4));
    const token = await webhookToken(server);
    const body = registryPush({ id: "event-1", repository: "acme/web", tag: "v1", digest: sha(4) });
    const first = await post(server, body, token);
    await waitForFinal(server, first.json.deployments[0].id);
    const again = await post(server, body, token);
    expect(again.status, again.text).toBe(202);
    expect(again.json.deployments).toEqual([]);
    expect(again.json.ignored).toEqual([expect.objectContaining({ reason: "duplicate" })]);
    expect(countRows(server, "deployments")).toBe(1);
    expect(countRows(server, "triggers")).toBe(1);
  });

  it("answers 202 with the reason when no service runs the pushed image", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "other", image: `${repo}:v2` });
    const res = await post(server, registryPush({ repository: "acme/web", tag: "v1", digest: sha(1) }), await webhookToken(server));
    expect(res.status, res.text).toBe(202);
    expect(res.json).toEqual({ deployments: [], ignored: [{ reason: "no_matching_service", image: `${repo}:v1` }] });
    expect(countRows(server, "deployments")).toBe(0);
  });

  it("leaves services alone that are labelled deployer.enable=false, jobs, ignorelisted, filtered out or outside the token", async () => {
    const server = createTestServer({ IGNORELIST_SERVICES: "ignored", FILTER_SERVICES: "label=team=web" });
    const labels = { team: "web" };
    server.swarm.addService({ name: "disabled", image: `${repo}:v1`, labels: { ...labels, "deployer.enable": "false" } });
    server.swarm.addService({ name: "migrate", image: `${repo}:v1`, labels, job: true });
    server.swarm.addService({ name: "ignored", image: `${repo}:v1`, labels });
    server.swarm.addService({ name: "unlabelled", image: `${repo}:v1` });
    server.swarm.addService({ name: "elsewhere", image: `${repo}:v1`, labels });
    server.swarm.addService({ name: "deployed", image: `${repo}:v1`, labels });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(5));
    const token = await webhookToken(server, { services: ["deployed", "disabled", "migrate", "ignored", "unlabelled"] });
    const res = await post(server, registryPush({ repository: "acme/web", tag: "v1", digest: sha(5) }), token);
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments.map((d: { service: string }) => d.service)).toEqual(["deployed"]);
    const reasons = Object.fromEntries(res.json.ignored.map((i: { service?: string; reason: string }) => [i.service ?? "-", i.reason]));
    expect(reasons).toEqual({
      disabled: "label_disabled",
      migrate: "job_service",
      ignored: "ignorelisted",
      unlabelled: "filtered_out",
      "-": "not_in_token",
    });
  });

  it("tells a token nothing of the services outside it but how many there are", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "staging", image: `${repo}:v1` });
    server.swarm.addService({ name: "prod-secret-name", image: `${repo}:v1`, labels: { "deployer.enable": "false" } });
    server.swarm.addService({ name: "prod-other", image: `${repo}:v1`, labels: { "deployer.window": "nonsense" } });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(6));
    const res = await post(
      server,
      registryPush({ repository: "acme/web", tag: "v1", digest: sha(6) }),
      await webhookToken(server, { services: ["staging"] }),
    );
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments.map((d: { service: string }) => d.service)).toEqual(["staging"]);
    expect(res.json.ignored).toEqual([{ reason: "not_in_token", image: `${repo}:v1`, services: 2 }]);
    expect(res.text).not.toMatch(/prod-|deployer\.window/);
  });

  it("keeps redeliveries apart per token: an event id another token sent first does not stop this token's push", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(7));
    const body = registryPush({ id: "evt-shared", repository: "acme/web", tag: "v1", digest: sha(7) });
    // A token that may deploy no service running the image claims the event id first.
    const early = await post(server, body, await webhookToken(server, { services: ["staging"] }));
    expect(early.json.deployments).toEqual([]);
    const token = await webhookToken(server);
    const real = await post(server, body, token);
    expect(real.json.deployments.map((d: { service: string }) => d.service)).toEqual(["web"]);
    const again = await post(server, body, token);
    expect(again.json).toEqual({ deployments: [], ignored: [expect.objectContaining({ reason: "duplicate", eventKey: "registry:evt-shared" })] });
  });

  it("matches services by the normalized image, with or without a pinned digest", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "hub", image: "nginx" });
    server.swarm.addService({ name: "hub-pinned", image: `docker.io/library/nginx:latest@${sha(1)}` });
    server.swarm.addService({ name: "other-tag", image: "nginx:1.27" });
    server.registry.push({ registry: "docker.io", repository: "library/nginx", tag: "latest" }, sha(6));
    const token = await server.tokens.signWebhookToken({ sub: "hub", repos: ["registry.local:5000/*", "nginx"] });
    const body = registryPush({ host: "index.docker.io", repository: "library/nginx", tag: "latest", digest: sha(6) });
    const res = await post(server, body, token);
    expect(res.status, res.text).toBe(202);
    expect(res.json.deployments.map((d: { service: string }) => d.service).sort()).toEqual(["hub", "hub-pinned"]);
  });
});

describe("POST /hooks/registry rejects bad requests and writes nothing", () => {
  const cases: Array<[string, (s: TestServer) => Promise<{ token?: string; body?: unknown; type?: string }>, number, string]> = [
    ["no token", async () => ({}), 401, "UNAUTHORIZED"],
    ["a malformed token", async () => ({ token: "not.a.jwt" }), 401, "UNAUTHORIZED"],
    ["an API token", async (s) => ({ token: await s.tokens.signApiToken({ sub: "x", scopes: ["deployments:write"] }) }), 401, "UNAUTHORIZED"],
    [
      "a token signed with another key",
      async () => ({
        token: await new SignJWT({ repos: ["127.0.0.1:5000/*"] })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("x")
          .setAudience("deployer:webhook")
          .sign(new TextEncoder().encode("another-secret-another-secret-another-secret")),
      }),
      401,
      "UNAUTHORIZED",
    ],
    [
      "an expired token",
      async (s) => ({
        token: await new SignJWT({ repos: ["127.0.0.1:5000/*"] })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("x")
          .setAudience("deployer:webhook")
          // On the server's clock, which is fake.
          .setExpirationTime(Math.floor(s.clock.now() / 1000) - 3600)
          .sign(new TextEncoder().encode(testSecret)),
      }),
      401,
      "UNAUTHORIZED",
    ],
    ["a body that is not JSON", async (s) => ({ token: await webhookToken(s), body: "{nope" }), 400, "BAD_REQUEST"],
    ["an envelope without events", async (s) => ({ token: await webhookToken(s), body: { hello: 1 } }), 400, "VALIDATION_FAILED"],
    [
      "a form-encoded body",
      async (s) => ({ token: await webhookToken(s), body: "a=b", type: "application/x-www-form-urlencoded" }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    ],
    [
      "a body over 1 MiB",
      async (s) => ({ token: await webhookToken(s), body: JSON.stringify({ events: [], pad: "x".repeat(1024 * 1024) }) }),
      413,
      "PAYLOAD_TOO_LARGE",
    ],
    [
      "a push of a repository outside the token",
      async (s) => ({
        token: await webhookToken(s, { repos: ["127.0.0.1:5000/other/*"] }),
        body: registryPush({ repository: "acme/web", tag: "v1", digest: sha(1) }),
      }),
      403,
      "FORBIDDEN",
    ],
  ];

  for (const [what, make, status, code] of cases) {
    it(`answers ${status} ${code} to ${what}`, async () => {
      const server = createTestServer();
      server.swarm.addService({ name: "web", image: `${repo}:v1` });
      const { token, body, type } = await make(server);
      const res = await post(server, body ?? registryPush({ repository: "acme/web", tag: "v1", digest: sha(1) }), token, type);
      expect(res.status, res.text).toBe(status);
      expect(res.json, res.text).toEqual({ error: { code, message: expect.any(String), requestId: expect.any(String) } });
      expect(countRows(server, "deployments")).toBe(0);
      expect(countRows(server, "triggers")).toBe(0);
      expect(server.swarm.callsOf("updateService")).toEqual([]);
    });
  }

  it("names the failing field of an invalid envelope", async () => {
    const server = createTestServer();
    const body = registryPush({ repository: "acme/web", tag: "v1", digest: sha(1) });
    (body.events[0]!.target as Record<string, unknown>).repository = 42;
    const res = await post(server, body, await webhookToken(server));
    expect(res.status, res.text).toBe(400);
    expect(res.json.error.message).toContain("events[0].target.repository");
  });

  it("refuses a delivery of more than 100 pushes with 400, writing none of them; 100 are taken", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:t0` });
    const pushes = (n: number, from = 0) =>
      Array.from({ length: n }, (_, i) => registryPush({ repository: "acme/web", tag: `t${from + i}`, digest: sha(1) }).events[0]!);
    const token = await webhookToken(server);
    const tooMany = await post(server, { events: pushes(101) }, token);
    expect(tooMany.status, tooMany.text).toBe(400);
    expect(tooMany.json.error).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining("at most 100") });
    expect(countRows(server, "triggers")).toBe(0);
    expect(countRows(server, "deployments")).toBe(0);
    const enough = await post(server, { events: pushes(100, 200) }, token);
    expect(enough.status, enough.text).toBe(202);
    expect(countRows(server, "triggers")).toBe(100);
  });

  it("never writes the token into the log", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(7));
    const token = await webhookToken(server);
    const res = await post(server, registryPush({ repository: "acme/web", tag: "v1", digest: sha(7) }), token);
    await waitForFinal(server, res.json.deployments[0].id);
    await post(server, "{nope", token);
    const log = server.logLines.join("");
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain(token);
    expect(log).not.toContain(testSecret);
  });
});
