import type { EventSourceMessage } from "eventsource-parser";
import { describe, expect, it } from "vitest";
import type { Scope } from "../../server/auth/tokens.js";
import { deployThroughWebhook } from "../helpers/api-client.js";
import { sseReader } from "../helpers/sse.js";
import { createTestServer, dockerHubPush, registryPush, sha, testSecret, waitForFinal, type TestServer } from "../helpers/test-server.js";

async function stream(server: TestServer, path: string, opts: { scopes?: Scope[]; lastEventId?: string } = {}) {
  const token = await server.tokens.signApiToken({ sub: "ops-alice", scopes: opts.scopes ?? ["deployments:read"] });
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (opts.lastEventId) headers["last-event-id"] = opts.lastEventId;
  return server.request(path, { headers });
}

const data = (m: EventSourceMessage) =>
  JSON.parse(m.data) as {
    deploymentId: string;
    service: string;
    status: string;
    entry: { message: string };
    progress?: unknown;
    pinnedImage?: string;
  };

/** The timeline as the record has it, as (kind, deployment, message). */
function recorded(server: TestServer) {
  return server.store.feed
    .readAfter(0, { limit: 10_000 })
    .map((e) => ({ id: String(e.id), kind: e.kind, deploymentId: e.deploymentId, message: e.message }));
}
const seen = (ms: EventSourceMessage[]) =>
  ms.map((m) => ({ id: m.id, kind: m.event, deploymentId: data(m).deploymentId, message: data(m).entry.message }));

function webService(server: TestServer, failureAction?: "rollback") {
  server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live", replicas: 2, failureAction });
}

describe("GET /api/events", () => {
  it("streams a rollout in the order it was recorded: the deployment, its timeline, its final status", async () => {
    const server = createTestServer();
    webService(server);
    const res = await stream(server, "/api/events");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = sseReader(res);
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    const got = await events.until((m) => m.event === "final");
    await events.cancel();

    expect(got[0]!.event).toBe("deployment");
    expect(JSON.parse(got[0]!.data)).toMatchObject({
      deploymentId: dep!.id,
      service: "web",
      status: "queued",
      deployment: { id: dep!.id, image: "127.0.0.1:5000/acme/web:live", trigger: "registry", requestedBy: "ci" },
    });
    expect(got.at(-1)!.event).toBe("final");
    expect(data(got.at(-1)!).status).toBe("succeeded");
    expect(data(got.at(-1)!).pinnedImage, "what the service runs now").toBe(`127.0.0.1:5000/acme/web:live@${sha(1)}`);
    expect(got.slice(0, -1).every((m) => data(m).pinnedImage === undefined)).toBe(true);
    expect(got.slice(1, -1).every((m) => m.event === "timeline")).toBe(true);
    expect(got.map((m) => data(m).progress).filter(Boolean)).toContainEqual({ running: 2, desired: 2 });
    // Exactly the record's rows, each once, ids rising.
    expect(seen(got)).toEqual(recorded(server).filter((r) => Number(r.id) <= Number(got.at(-1)!.id)));
  });

  it("resumes after a reconnect from Last-Event-ID: nothing missed, nothing twice", async () => {
    const server = createTestServer();
    webService(server);
    const first = sseReader(await stream(server, "/api/events"));
    await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    const before = await first.until((m) => m.event === "timeline");
    await first.cancel();
    // While nobody listens: the rest of that rollout and a whole second one.
    await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(2) });

    const lastId = before.at(-1)!.id!;
    const second = sseReader(await stream(server, "/api/events", { lastEventId: lastId }));
    const total = recorded(server).length;
    const after = await second.until((m) => m.id === String(recorded(server).at(-1)!.id));
    await second.cancel();
    expect(seen([...before, ...after])).toEqual(recorded(server));
    expect(before.length + after.length).toBe(total);

    // ?lastEventId= for clients that cannot set the header: the same replay.
    const token = await server.tokens.signApiToken({ sub: "x", scopes: ["deployments:read"] });
    const third = sseReader(await server.request(`/api/events?lastEventId=${lastId}`, { headers: { authorization: `Bearer ${token}` } }));
    expect((await third.next())!.id).toBe(after[0]!.id);
    await third.cancel();
  });

  it("sends a heartbeat comment when nothing happens", async () => {
    const server = createTestServer({}, { events: { heartbeatMs: 20 } });
    const events = sseReader(await stream(server, "/api/events"));
    await events.comment(2);
    expect(events.text).toMatch(/^retry: \d+\n\n: heartbeat\n\n: heartbeat\n\n/);
    await events.cancel();
  });

  it("ends a stream once its token expires, sending nothing after", async () => {
    const server = createTestServer({}, { events: { heartbeatMs: 20 } });
    webService(server);
    const token = await server.tokens.signApiToken({ sub: "ops-alice", scopes: ["deployments:read"], expiresIn: "1h" });
    const events = sseReader(await server.request("/api/events", { headers: { authorization: `Bearer ${token}` } }));
    await events.comment(1);
    server.clock.advance(3_600_000);
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(8) });
    await waitForFinal(server, dep!.id);
    expect(await events.rest()).toEqual([]);
    expect(events.ended).toBe(true);
    expect(events.text).not.toContain(dep!.id);
  });

  it("drops a client that does not read once its buffer is full, and it misses nothing by reconnecting", async () => {
    const server = createTestServer({}, { events: { bufferEvents: 5 } });
    webService(server);
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    const slow = sseReader(await stream(server, "/api/events"));
    // Subscribed: the stream hears everything committed from now on.
    await expect.poll(() => server.hub.live).toBe(1);
    const cursor = server.store.feed.latestId();
    for (let i = 0; i < 50; i++) server.store.addEvent(dep!.id, `note ${i}`);
    // Dropped: the stream ends after what had reached the client, and its place is free again.
    await expect.poll(() => server.hub.open).toBe(0);
    const got = await slow.rest();
    expect(slow.ended).toBe(true);
    expect(got.length).toBeLessThan(50);
    expect(server.logLines.join("")).toContain("dropped an event stream whose client did not keep up");

    const again = sseReader(await stream(server, "/api/events", { lastEventId: String(got.at(-1)?.id ?? cursor) }));
    const rest = await again.until((m) => data(m).entry.message === "note 49");
    await again.cancel();
    expect([...got, ...rest].map((m) => data(m).entry.message)).toEqual(Array.from({ length: 50 }, (_, i) => `note ${i}`));
  });

  it("answers 503 past the cap on open streams, and frees a place when one closes", async () => {
    const server = createTestServer({}, { events: { maxStreams: 1 } });
    const one = sseReader(await stream(server, "/api/events"));
    const refused = await stream(server, "/api/events");
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({
      error: { code: "UNAVAILABLE", message: expect.stringContaining("too many event streams"), requestId: expect.any(String) },
    });
    await one.cancel();
    await expect.poll(() => server.hub.open).toBe(0);
    const two = await stream(server, "/api/events");
    expect(two.status).toBe(200);
    await two.body!.cancel();
  });

  it("holds a token to its own cap on open streams (429), so that one reader cannot take every place", async () => {
    const server = createTestServer({}, { events: { maxStreams: 10, maxStreamsPerToken: 2 } });
    const token = await server.tokens.signApiToken({ sub: "ops-alice", scopes: ["deployments:read"] });
    const open = () => server.request("/api/events", { headers: { authorization: `Bearer ${token}` } });
    const [one, two, three] = [await open(), await open(), await open()];
    expect([one.status, two.status]).toEqual([200, 200]);
    expect(three.status).toBe(429);
    expect((await three.json()).error).toMatchObject({ code: "RATE_LIMITED", message: expect.stringContaining("at most 2") });
    // Another token of the same person is another reader.
    const other = await stream(server, "/api/events");
    expect(other.status).toBe(200);
    await Promise.all([one, two, other].map((r) => r.body!.cancel()));
    await expect.poll(() => server.hub.open).toBe(0);
    const again = await open();
    expect(again.status).toBe(200);
    await again.body!.cancel();
  });

  it("ends a stream whose client stopped reading, freeing its place, even in the middle of its replay", async () => {
    const server = createTestServer({}, { events: { maxStreams: 1, writeDeadlineMs: 50 } });
    webService(server);
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    await waitForFinal(server, dep!.id);
    server.store.atomically(() => {
      for (let i = 0; i < 3000; i++) server.store.addEvent(dep!.id, `note ${i} ${"x".repeat(100)}`);
    });
    const stalled = await stream(server, "/api/events", { lastEventId: "0" });
    expect(stalled.status).toBe(200);
    expect(server.hub.open).toBe(1);
    // Nothing reads it: its replay's writes wait on the client, which never takes them.
    await expect.poll(() => server.hub.open, { timeout: 5000 }).toBe(0);
    expect(server.logLines.join("\n")).toContain("dropped an event stream whose client stopped reading");
    const next = await stream(server, "/api/events");
    expect(next.status).toBe(200);
    await next.body!.cancel();
  });

  it("refuses a Last-Event-ID past the newest event it has recorded (a database restored from an older backup)", async () => {
    const server = createTestServer();
    webService(server);
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    const latest = server.store.feed.latestId();
    for (const path of ["/api/events", `/api/deployments/${dep!.id}/events`]) {
      const ahead = await stream(server, path, { lastEventId: String(latest + 1000) });
      expect(ahead.status, path).toBe(400);
      expect((await ahead.json()).error).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining("past this server's newest") });
      const current = await stream(server, path, { lastEventId: String(latest) });
      expect(current.status).toBe(200);
      await current.body!.cancel();
    }
    await expect.poll(() => server.hub.open).toBe(0);
  });

  it("answers HEAD with the stream's headers and no stream: HEAD requests past the cap take no place", async () => {
    const server = createTestServer({}, { events: { maxStreams: 2 } });
    server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:live" });
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(1) });
    const deploymentId = dep!.id;
    const token = await server.tokens.signApiToken({ sub: "ops-alice", scopes: ["deployments:read"] });
    for (const path of ["/api/events", `/api/deployments/${deploymentId}/events`, "/api/events", `/api/deployments/${deploymentId}/events`]) {
      const res = await server.request(path, { method: "HEAD", headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      expect(res.body).toBeNull();
    }
    await expect.poll(() => server.hub.open).toBe(0);
    const one = await stream(server, "/api/events");
    const two = await stream(server, "/api/events");
    expect([one.status, two.status]).toEqual([200, 200]);
    await one.body!.cancel();
    await two.body!.cancel();
  });

  it("refuses a token without deployments:read (403) or none (401), and a bad Last-Event-ID (400), with the envelope", async () => {
    const server = createTestServer();
    const noScope = await stream(server, "/api/events", { scopes: ["deployments:write"] });
    expect(noScope.status).toBe(403);
    expect((await noScope.json()).error).toMatchObject({ code: "FORBIDDEN", message: expect.stringContaining("deployments:read") });
    const none = await server.request("/api/events");
    expect(none.status).toBe(401);
    expect((await none.json()).error.code).toBe("UNAUTHORIZED");
    const bad = await stream(server, "/api/events", { lastEventId: "12abc" });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining("ast-event-id") });
    expect(server.hub.open).toBe(0);
  });

  it("carries no token or secret", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "hub", image: "acme/hub:latest" });
    server.registry.push({ registry: "docker.io", repository: "acme/hub", tag: "latest" }, sha(7));
    const events = sseReader(await stream(server, "/api/events"));
    const webhookToken = await server.tokens.signWebhookToken({ sub: "hub", repos: ["acme/hub"] });
    const res = await server.request(`/hooks/dockerhub/${webhookToken}`, {
      method: "POST",
      json: dockerHubPush({
        repoName: "acme/hub",
        tag: "latest",
        callbackUrl: "https://registry.hub.docker.com/u/acme/hub/hook/secret-callback-path/",
      }),
    });
    expect(res.status).toBe(202);
    const id = ((await res.json()) as { deployments: Array<{ id: string }> }).deployments[0]!.id;
    await waitForFinal(server, id);
    await events.until((m) => m.event === "final");
    await events.cancel();
    expect(events.text).toContain(id);
    for (const secret of [webhookToken, testSecret, "secret-callback-path"]) expect(events.text).not.toContain(secret);
  });
});

describe("GET /api/deployments/:id/events", () => {
  it("replays one deployment's timeline from its first entry, follows it live and ends after its final event", async () => {
    const server = createTestServer();
    webService(server);
    server.swarm.addService({ name: "other", image: "127.0.0.1:5000/acme/web:other" });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "live" }, sha(3));
    const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
    const res = await server.request("/hooks/registry", {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      json: registryPush({ repository: "acme/web", tag: "live", digest: sha(3) }),
    });
    const id = ((await res.json()) as { deployments: Array<{ id: string }> }).deployments[0]!.id;
    const events = sseReader(await stream(server, `/api/deployments/${id}/events`));
    const got = await events.rest();
    expect(events.ended).toBe(true);
    expect(got[0]!.event).toBe("deployment");
    expect(got.at(-1)!.event).toBe("final");
    expect(got.every((m) => data(m).deploymentId === id)).toBe(true);
    const mine = recorded(server).filter((r) => r.deploymentId === id);
    expect(seen(got)).toEqual(mine.slice(0, mine.findIndex((r) => r.kind === "final") + 1));

    // Reconnecting after the final event: nothing more, the stream ends at once.
    const after = sseReader(await stream(server, `/api/deployments/${id}/events`, { lastEventId: got.at(-1)!.id }));
    expect(await after.rest()).toEqual([]);
    expect(after.ended).toBe(true);
  });

  it("ends with a rolled-back rollout's final event", async () => {
    const server = createTestServer();
    webService(server, "rollback");
    server.swarm.failImage("127.0.0.1:5000/acme/web:live@" + sha(9));
    const [dep] = await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(9) });
    expect(dep!.status).toBe("rolled_back");
    const got = await sseReader(await stream(server, `/api/deployments/${dep!.id}/events`)).rest();
    expect(got.at(-1)!.event).toBe("final");
    expect(data(got.at(-1)!).status).toBe("rolled_back");
  });

  it("answers 404 with the envelope for an unknown deployment", async () => {
    const server = createTestServer();
    const res = await stream(server, "/api/deployments/dep_00000000000000000000000000/events");
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("NOT_FOUND");
    expect(server.hub.open).toBe(0);
  });
});
