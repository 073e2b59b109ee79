/**
 * The dashboard in-process: the real app over real SQLite, real JWTs, the
 * fake swarm and registry. The sign-in and its cookie, the Origin and CSRF
 * rules of every action, the read-only view, the cookie on the event routes,
 * and that no token text reaches a page or a log line.
 */
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createTokenService, type Scope } from "../../server/auth/tokens.js";
import { deployThroughWebhook } from "../helpers/api-client.js";
import { sseReader } from "../helpers/sse.js";
import { countRows, createTestServer, sha, testSecret, waitForFinal, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const origin = "http://localhost";

/** Everything the test's browser was sent, to look for token text in afterwards. */
type Seen = string[];

async function serviceWithHistory(server: TestServer, labels: Record<string, string> = {}) {
  server.swarm.addService({ name: "web", image: `${repo}:live`, replicas: 2, labels });
  const ids: string[] = [];
  for (const n of [1, 2]) {
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(n) });
    ids.push(dep!.id);
  }
  return ids;
}

async function signIn(server: TestServer, token: string, seen: Seen, headers: Record<string, string> = { origin }) {
  const res = await server.request("/sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ token }).toString(),
  });
  const text = await res.text();
  seen.push(text, JSON.stringify([...res.headers]));
  const cookie = /deployer_session=([^;]*)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
  return { res, text, cookie: cookie ? `deployer_session=${cookie}` : undefined, setCookie: res.headers.get("set-cookie") ?? "" };
}

async function token(server: TestServer, scopes: Scope[] = ["deployments:read", "deployments:write"], sub = "ops-alice") {
  return server.tokens.signApiToken({ sub, scopes });
}

async function get(server: TestServer, path: string, cookie: string | undefined, seen: Seen) {
  const res = await server.request(path, { headers: cookie ? { cookie } : {} });
  const text = await res.text();
  seen.push(text);
  return { res, text };
}

async function post(
  server: TestServer,
  path: string,
  cookie: string,
  form: Record<string, string>,
  seen: Seen,
  headers: Record<string, string> = { origin },
) {
  const res = await server.request(path, {
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  seen.push(text);
  return { res, text };
}

const csrfOf = (page: string) => /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";

/** Reads a streamed body until `until` appears in it (or it ends), then lets it go. */
async function readStream(res: Response, until: string): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes(until)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

function expectNoTokenText(tokens: string[], seen: Seen, server: TestServer) {
  for (const t of tokens) {
    // A JWT's signature is the part nobody else could have made up; none of its three parts may show.
    for (const part of t.split(".")) {
      for (const text of [...seen, ...server.logLines]) expect(text.includes(part), `token text in: ${text.slice(0, 300)}`).toBe(false);
    }
  }
}

describe("the dashboard's sign-in", () => {
  it("sets an HttpOnly, SameSite=Strict session cookie for a good token and shows the services page with its facts and actions", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const [, v2] = await serviceWithHistory(server);
    server.holds.quarantine("web", sha(9), v2!, "rolled back");
    const write = await token(server);
    const { res, cookie, setCookie } = await signIn(server, write, seen);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/");
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\//);

    const page = await get(server, "/", cookie, seen);
    expect(page.res.status, page.text).toBe(200);
    expect(page.res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(page.res.headers.get("cache-control")).toBe("no-store");
    expect(page.text).toMatch(/^<!doctype html>/);
    expect(page.text).toContain(`${repo}:live`);
    expect(page.text).toContain(sha(2).slice(0, 19));
    expect(page.text).toContain("2/2");
    expect(page.text).toContain(`href="/deployments/${v2}"`);
    expect(page.text).toContain("quarantined");
    expect(page.text).toContain(sha(9).slice(0, 19));
    expect(page.text).toContain("Roll back…");
    expect(page.text).toContain("Deploy…");
    expect(page.text).toContain("ops-alice");
    expect(page.text).not.toMatch(/<script>|<script [^>]*>[^<]/);
    expectNoTokenText([write], seen, server);
  });

  it("refuses a bad, an expired, a revoked (signed with a retired key), a webhook and a scope-less token, setting no cookie and echoing none of it", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const past = createTokenService({ secret: testSecret, dockerHubRegistry: "docker.io", now: () => server.clock.now() - 2 * 86_400_000 });
    const retired = createTokenService({ secret: "a-retired-secret-that-was-long-enough-for-hs256", dockerHubRegistry: "docker.io" });
    const tokens = {
      bad: "not-a-jwt-zq81xk.qq7vvw.zz93kp",
      expired: await past.signApiToken({ sub: "ops", scopes: ["deployments:read"], expiresIn: "1h" }),
      revoked: await retired.signApiToken({ sub: "ops", scopes: ["deployments:read", "deployments:write"] }),
      webhook: await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] }),
      noRead: await server.tokens.signApiToken({ sub: "ops", scopes: ["sources:admin"] }),
      // Signed by this server, but its scope claim is no list of scopes: a bad token (401, as the API says), not a missing scope.
      badScope: await new SignJWT({ sub: "ops", scope: 42 })
        .setProtectedHeader({ alg: "HS256" })
        .setAudience("deployer:api")
        .sign(new TextEncoder().encode(testSecret)),
    };
    const expected = { bad: 401, expired: 401, revoked: 401, webhook: 401, noRead: 403, badScope: 401 };
    for (const [kind, t] of Object.entries(tokens)) {
      const { res, text, cookie } = await signIn(server, t, seen);
      expect(res.status, `${kind}: ${text}`).toBe(expected[kind as keyof typeof expected]);
      expect(cookie, kind).toBeUndefined();
      expect(text).toContain("Not signed in");
    }
    expect((await get(server, "/", undefined, seen)).res.status).toBe(303);
    // Not one of them took a place among the sessions (which a flood of refused sign-ins would fill).
    expect(countRows(server, "dashboard_sessions")).toBe(0);
    expectNoTokenText(Object.values(tokens), seen, server);
  });

  it("marks the cookie Secure behind https: the request's own, a proxy's X-Forwarded-Proto, or an https DEPLOYER_PUBLIC_URL", async () => {
    const seen: Seen = [];
    const plain = createTestServer();
    expect((await signIn(plain, await token(plain), seen)).setCookie).not.toMatch(/Secure/i);
    expect((await signIn(plain, await token(plain), seen, { origin, "x-forwarded-proto": "https" })).setCookie).toMatch(/; Secure/i);
    // A TLS proxy that says nothing of it: the public URL does.
    const behindTls = createTestServer({ DEPLOYER_PUBLIC_URL: "https://deploy.example.com" });
    const signedIn = await signIn(behindTls, await token(behindTls), seen);
    expect(signedIn.setCookie).toMatch(/; Secure/i);
    const page = await get(behindTls, "/history", signedIn.cookie, seen);
    const out = await post(behindTls, "/sign-out", signedIn.cookie!, { csrf: csrfOf(page.text) }, seen);
    expect(out.res.headers.get("set-cookie")).toMatch(/Max-Age=0.*; Secure/i);
  });

  it("answers 429 to a sign-in when every session there may be is open, ending none", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const insert = server.database.sqlite.prepare(
      "insert into dashboard_sessions (id_hash, sealed, created_at, expires_at, owner) values (?, 'x', ?, ?, ?)",
    );
    const now = server.clock.now();
    server.database.sqlite.transaction(() => {
      for (let i = 0; i < 10_000; i++) insert.run(`h${i}`, now, now + 3_600_000, `o${i}`);
    })();
    const { res, text, cookie } = await signIn(server, await token(server), seen);
    expect(res.status).toBe(429);
    expect(text).toContain("dashboard sessions are open");
    expect(cookie).toBeUndefined();
    expect(countRows(server, "dashboard_sessions")).toBe(10_000);
  });

  it("refuses a form larger than 16 KiB with 413 without reading it to its end, declared or streamed", async () => {
    const server = createTestServer();
    const declared = await server.request("/sign-in", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin, "content-length": String(64 * 1024 * 1024) },
      body: "token=x",
    });
    expect(declared.status).toBe(413);
    let sent = 0;
    // A body that never ends: only a reader that stops counting at the limit answers at all.
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 4096;
        controller.enqueue(new TextEncoder().encode("token=".padEnd(4096, "a")));
      },
    });
    const streamed = await server.request("/sign-in", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin },
      body: endless,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await streamed.text()).toContain("16384 bytes");
    expect(sent).toBeLessThan(64 * 1024);
    expect(countRows(server, "dashboard_sessions")).toBe(0);
  });

  it("refuses a sign-in posted from another origin, or with no Origin at all", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const t = await token(server);
    for (const headers of [{ origin: "https://evil.example" }, {}, { origin: "null" }] as Array<Record<string, string>>) {
      const { res, cookie } = await signIn(server, t, seen, headers);
      expect(res.status).toBe(403);
      expect(cookie).toBeUndefined();
    }
  });

  it("signs out: the cookie is cleared, and a copy of it opens neither a page nor an event stream", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const { cookie } = await signIn(server, await token(server), seen);
    const page = await get(server, "/history", cookie, seen);
    const out = await post(server, "/sign-out", cookie!, { csrf: csrfOf(page.text) }, seen);
    expect(out.res.status).toBe(303);
    expect(out.res.headers.get("set-cookie")).toMatch(/deployer_session=;.*Max-Age=0/i);
    expect((await get(server, "/history", cookie, seen)).res.status).toBe(303);
    const stream = await server.request("/api/events", { headers: { cookie: cookie! } });
    expect(stream.status).toBe(401);
  });

  it("ends the browser's earlier session when it signs in again, so signing out leaves no copy of either cookie good", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const write = await token(server);
    const elsewhere = await signIn(server, write, seen);
    const first = await signIn(server, write, seen);
    const second = await signIn(server, write, seen, { origin, cookie: first.cookie! });
    expect(second.cookie).toBeDefined();
    expect(second.cookie).not.toBe(first.cookie);
    expect(countRows(server, "dashboard_sessions")).toBe(2);
    expect((await get(server, "/history", first.cookie, seen)).res.status, "the first cookie").toBe(303);
    const page = await get(server, "/history", second.cookie, seen);
    expect(page.res.status).toBe(200);
    await post(server, "/sign-out", second.cookie!, { csrf: csrfOf(page.text) }, seen);
    for (const cookie of [first.cookie, second.cookie]) expect((await get(server, "/history", cookie, seen)).res.status).toBe(303);
    // Another browser of the same token keeps its session through all of it.
    expect((await get(server, "/history", elsewhere.cookie, seen)).res.status).toBe(200);
  });

  it("ends an event stream opened before the sign-out: it sends nothing more of what happens after", async () => {
    const server = createTestServer({}, { events: { heartbeatMs: 20 } });
    server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live" });
    const seen: Seen = [];
    const { cookie } = await signIn(server, await token(server), seen);
    const page = await get(server, "/history", cookie, seen);
    const res = await server.request("/api/events", { headers: { cookie: cookie! } });
    expect(res.status).toBe(200);
    const events = sseReader(res);
    await events.comment(1);
    expect((await post(server, "/sign-out", cookie!, { csrf: csrfOf(page.text) }, seen)).res.status).toBe(303);
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(7) });
    await waitForFinal(server, dep!.id);
    expect(await events.rest(), "the stream ended, and nothing of the deployment came").toEqual([]);
    expect(events.ended).toBe(true);
    expect(events.text).not.toContain(dep!.id);
  });

  it("keeps a session across a restart, with neither the cookie nor the token in the database; signing out there ends it", async () => {
    const before = createTestServer();
    const seen: Seen = [];
    const write = await token(before);
    const { cookie } = await signIn(before, write, seen);
    const csrf = csrfOf((await get(before, "/history", cookie, seen)).text);

    // A new process over the same database and key: what a restart (or the server updating itself) is.
    const after = createTestServer({}, { dbPath: before.dbPath });
    const page = await get(after, "/history", cookie, seen);
    expect(page.res.status, page.text).toBe(200);
    expect(page.text).toContain("ops-alice");
    expect(csrfOf(page.text), "the forms' CSRF token is the session's").toBe(csrf);
    const stream = await after.request("/api/events", { headers: { cookie: cookie! } });
    expect(stream.status).toBe(200);
    await stream.body?.cancel();

    const rows = after.database.sqlite.prepare("select * from dashboard_sessions").all() as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(1);
    const stored = JSON.stringify(rows);
    expect(stored.includes(cookie!.split("=")[1]!), "the cookie's id").toBe(false);
    for (const part of write.split(".")) expect(stored.includes(part), "the token").toBe(false);
    expect(stored.includes(csrf), "the CSRF token").toBe(false);

    expect((await post(after, "/sign-out", cookie!, { csrf }, seen)).res.status).toBe(303);
    expect((await get(before, "/history", cookie, seen)).res.status, "signed out for every process").toBe(303);
    expect(countRows(after, "dashboard_sessions")).toBe(0);
  });

  it("refuses to sign out without the CSRF token (a forged sign-out keeps the session)", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const { cookie } = await signIn(server, await token(server), seen);
    expect((await post(server, "/sign-out", cookie!, {}, seen)).res.status).toBe(403);
    expect((await get(server, "/history", cookie, seen)).res.status).toBe(200);
  });
});

describe("the dashboard's files", () => {
  it("serves its script, style and icon to anyone, and answers a missing one with the error envelope", async () => {
    const server = createTestServer();
    for (const [file, type] of [
      ["dashboard.js", "text/javascript"],
      ["dashboard.css", "text/css"],
      ["favicon.svg", "image/svg+xml"],
    ]) {
      const res = await server.request(`/assets/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type")).toContain(type);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    for (const missing of ["/assets/nope.js", "/assets/..%2Fassets.ts", "/assets/%00"]) {
      const res = await server.request(missing);
      expect(res.status, missing).toBe(404);
      expect(res.headers.get("content-type"), missing).toContain("application/json");
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("NOT_FOUND");
    }
    expect((await (await server.request("/assets/nope.js")).json()).error.message).toBe("no dashboard file nope.js");
  });
});

describe("the dashboard's actions", () => {
  it("a forged POST is refused without the CSRF token, with a wrong one, from another origin or with none; the real form rolls back", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const [v1] = await serviceWithHistory(server);
    const { cookie } = await signIn(server, await token(server), seen);
    const confirm = await get(server, `/services/web/rollback?to=${v1}`, cookie, seen);
    expect(confirm.res.status, confirm.text).toBe(200);
    expect(confirm.text).toContain(sha(1).slice(0, 19));
    expect(confirm.text).toContain("held");
    const csrf = csrfOf(confirm.text);
    const before = countRows(server, "deployments");
    const path = `/services/web/rollback?to=${v1}`;
    const forged = [
      await post(server, path, cookie!, {}, seen),
      await post(server, path, cookie!, { csrf: `${csrf.slice(0, -2)}xx` }, seen),
      await post(server, path, cookie!, { csrf }, seen, { origin: "https://evil.example" }),
      await post(server, path, cookie!, { csrf }, seen, {}),
    ];
    for (const f of forged) expect(f.res.status, f.text).toBe(403);
    expect(countRows(server, "deployments")).toBe(before);
    expect(server.holds.find("web")).toBeUndefined();

    const done = await post(server, path, cookie!, { csrf }, seen);
    expect(done.res.status, done.text).toBe(303);
    const id = /\/deployments\/(dep_[0-9a-z]{26})$/.exec(done.res.headers.get("location") ?? "")?.[1];
    const dep = await waitForFinal(server, id!);
    expect(dep).toMatchObject({ trigger: "rollback", digest: sha(1), requestedBy: "ops-alice", status: "succeeded" });
    expect(server.holds.find("web")).toBeDefined();
    const shown = await get(server, `/deployments/${id}`, cookie, seen);
    expect(shown.text).toContain(`${repo}:live@${sha(2)}`);
    expect(shown.text).toContain("ops-alice");
    expect(shown.text).toContain("succeeded");
  });

  it("deploys a tag and resumes through confirmation pages that say what will happen", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const [v1] = await serviceWithHistory(server);
    server.holds.hold("web", v1!, "rolled back by hand", "ops");
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v3" }, sha(3));
    const { cookie } = await signIn(server, await token(server), seen);
    const confirm = await get(server, "/services/web/deploy?tag=v3", cookie, seen);
    expect(confirm.text).toContain(`Deploy ${repo}:v3 to web?`);
    expect(confirm.text).toContain("lifts the hold");
    const done = await post(server, "/services/web/deploy?tag=v3", cookie!, { csrf: csrfOf(confirm.text) }, seen);
    expect(done.res.status, done.text).toBe(303);
    const dep = await waitForFinal(server, done.res.headers.get("location")!.split("/").at(-1)!);
    expect(dep).toMatchObject({ trigger: "manual", digest: sha(3), status: "succeeded" });

    server.holds.hold("web", v1!, "rolled back by hand", "ops");
    const resume = await get(server, "/services/web/resume", cookie, seen);
    expect(resume.text).toContain("Resuming lifts the hold: nothing is deployed now");
    expect((await post(server, "/services/web/resume", cookie!, { csrf: csrfOf(resume.text) }, seen)).res.status).toBe(303);
    expect(server.holds.find("web")).toBeUndefined();

    const badTag = await get(server, "/services/web/deploy?tag=no%20spaces", cookie, seen);
    expect(badTag.res.status).toBe(400);
    const unknown = await get(server, "/services/nope/deploy?tag=v1", cookie, seen);
    expect(unknown.res.status).toBe(404);
  });

  it("shows a deployment awaiting approval with approve and reject, and approving it deploys", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    server.swarm.addService({ name: "web", image: `${repo}:live`, replicas: 1, labels: { "deployer.approve": "required" } });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "live" }, sha(5));
    const hook = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
    const { registryPush } = await import("../helpers/test-server.js");
    const res = await server.request("/hooks/registry", {
      method: "POST",
      headers: { authorization: `Bearer ${hook}` },
      json: registryPush({ repository: "acme/web", tag: "live", digest: sha(5) }),
    });
    const id = ((await res.json()) as { deployments: Array<{ id: string }> }).deployments[0]!.id;
    await expect.poll(() => server.store.getDeployment(id).status).toBe("awaiting_approval");

    const { cookie } = await signIn(server, await token(server), seen);
    const waiting = await get(server, `/deployments/${id}`, cookie, seen);
    expect(waiting.text).toContain("Waits until");
    // Rolling back to it is offered only once it has succeeded (the script reveals the link then).
    expect(waiting.text).toMatch(/<a [^>]*data-rollback-link[^>]* hidden[^>]*>|<a [^>]*hidden[^>]*data-rollback-link/);
    const services = await get(server, "/", cookie, seen);
    expect(services.text).toContain(`href="/deployments/${id}/approve"`);
    expect(services.text).toContain("awaiting approval");
    const confirm = await get(server, `/deployments/${id}/approve`, cookie, seen);
    expect(confirm.text).toContain("Approving queues it");
    const done = await post(server, `/deployments/${id}/approve`, cookie!, { csrf: csrfOf(confirm.text) }, seen);
    expect(done.res.status, done.text).toBe(303);
    expect((await waitForFinal(server, id)).status).toBe("succeeded");
    expect(server.store.getDeployment(id).approvedBy).toBe("ops-alice");
    expect((await get(server, `/deployments/${id}/reject`, cookie, seen)).res.status).toBe(409);
  });

  it("a read-only token sees the pages without one action, and its POSTs and confirmation pages are refused", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const [v1] = await serviceWithHistory(server);
    const read = await token(server, ["deployments:read"], "viewer");
    const { cookie } = await signIn(server, read, seen);
    for (const path of ["/", "/history", `/deployments/${v1}`]) {
      const page = await get(server, path, cookie, seen);
      expect(page.res.status, page.text).toBe(200);
      expect(page.text).toContain("read only");
      for (const action of ["Roll back", "Deploy…", "Resume…", "Approve…", 'action="/services']) expect(page.text, path).not.toContain(action);
    }
    expect((await get(server, `/services/web/rollback?to=${v1}`, cookie, seen)).res.status).toBe(403);
    const csrf = csrfOf((await get(server, "/", cookie, seen)).text);
    const before = countRows(server, "deployments");
    const refused = await post(server, `/services/web/rollback?to=${v1}`, cookie!, { csrf }, seen);
    expect(refused.res.status).toBe(403);
    expect(refused.text).toContain("deployments:write");
    expect(countRows(server, "deployments")).toBe(before);
    expectNoTokenText([read], seen, server);
  });
});

describe("the dashboard's history", () => {
  it("filters by service, status and trigger and pages by keyset; bad filters are a 400 page", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    server.swarm.addService({ name: "web", image: `${repo}:live`, replicas: 1 });
    for (let n = 1; n <= 55; n++) await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(n) });
    const { cookie } = await signIn(server, await token(server), seen);
    const first = await get(server, "/history?service=web&status=succeeded&trigger=registry", cookie, seen);
    expect(first.res.status, first.text).toBe(200);
    expect(first.text.match(/<tr data-id=/g)).toHaveLength(50);
    expect(first.text).toContain('data-first-page="true"');
    const older = /href="(\/history\?[^"]*cursor=[^"]+)" rel="next"/.exec(first.text)?.[1]?.replaceAll("&amp;", "&");
    const second = await get(server, older!, cookie, seen);
    expect(second.text.match(/<tr data-id=/g)).toHaveLength(5);
    expect(second.text).toContain('data-first-page="false"');
    expect(second.text).not.toContain('rel="next"');
    const none = await get(server, "/history?trigger=manual", cookie, seen);
    expect(none.text).toContain("No deployments match.");
    for (const bad of ["/history?status=done", "/history?trigger=cron", "/history?cursor=nope", "/history?service=a%20b"]) {
      const page = await get(server, bad, cookie, seen);
      expect(page.res.status, bad).toBe(400);
      expect(page.text).toContain("Bad request");
    }
  });
});

describe("the event routes with the session cookie", () => {
  it("streams /api/events and one deployment's events to a signed-in browser (read-only too); the cookie opens no other API route", async () => {
    const server = createTestServer();
    const seen: Seen = [];
    const [, v2] = await serviceWithHistory(server);
    const { cookie } = await signIn(server, await token(server, ["deployments:read"]), seen);
    const all = await server.request("/api/events?lastEventId=0", { headers: { cookie: cookie! } });
    expect(all.status).toBe(200);
    expect(all.headers.get("content-type")).toContain("text/event-stream");
    expect(await readStream(all, `"deploymentId":"${v2}"`)).toContain("event: deployment");
    const one = await server.request(`/api/deployments/${v2}/events`, { headers: { cookie: cookie! } });
    const text = await readStream(one, "event: final");
    expect(text).toContain("event: final");
    expect(text).toContain('"status":"succeeded"');

    expect((await server.request("/api/services", { headers: { cookie: cookie! } })).status).toBe(401);
    expect((await server.request(`/api/deployments/${v2}`, { headers: { cookie: cookie! } })).status).toBe(401);
    const writeCookie = (await signIn(server, await token(server), seen)).cookie!;
    const forged = await server.request("/api/services/web/resume", { method: "POST", headers: { cookie: writeCookie, origin } });
    expect(forged.status).toBe(401);
    expect((await server.request("/api/events", { headers: { cookie: "deployer_session=made-up" } })).status).toBe(401);
  });
});
