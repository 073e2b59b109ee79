import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Scope } from "../../server/auth/tokens.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import { RegistryError } from "../../server/registry/registry-port.js";
import {
  countRows,
  createTestServer,
  ROLLOUT_POLL_MS,
  registryPush,
  sha,
  waitForFinal,
  type TestServer,
  pushAcmeWeb,
} from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const ref = (tag: string) => ({ registry: "127.0.0.1:5000", repository: "acme/web", tag });
/** Wednesday 2026-12-02, 06:00 UTC. */
const WED_0600 = Date.UTC(2026, 11, 2, 6, 0);
const MINUTE = 60_000;

function server(labels: Record<string, string>, opts: { start?: number; env?: Record<string, string>; dbPath?: string; swarm?: FakeSwarm } = {}) {
  const clock = new FakeClock(opts.start ?? WED_0600, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
  const swarm = opts.swarm ?? new FakeSwarm({ clock, stepMs: ROLLOUT_POLL_MS });
  const s = createTestServer(opts.env ?? {}, { clock, swarm, dbPath: opts.dbPath });
  if (!opts.swarm) s.swarm.addService({ name: "web", image: `${repo}:v1`, labels });
  return s;
}

async function untilStatus(s: TestServer, id: string, status: string) {
  for (let i = 0; i < 500 && s.store.getDeployment(id).status !== status; i++) await new Promise((r) => setTimeout(r, 2));
  expect(s.store.getDeployment(id).status, timeline(s, id).join("\n")).toBe(status);
  return s.store.getDeployment(id);
}

const timeline = (s: TestServer, id: string) => s.store.listEvents(id).map((e) => `${e.status}: ${e.message}`);

async function api(s: TestServer, method: string, path: string, scopes: Scope[] = ["deployments:write", "deployments:read"]) {
  const token = await s.tokens.signApiToken({ sub: "alice", scopes });
  const res = await s.request(path, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function pushed(s: TestServer, tag: string, n: number) {
  s.registry.push(ref(tag), sha(n));
  const answer = await push(s, tag, sha(n));
  return answer.deployments[0]!.id;
}

const push = pushAcmeWeb;

async function services(server: TestServer) {
  const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] });
  const res = await server.request("/api/services", { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Array<Record<string, unknown>> }).items;
}

describe("policy labels on a service", () => {
  it("shows each service's policy in /api/services", async () => {
    const server = createTestServer();
    server.swarm.addService({
      name: "web",
      image: `${repo}:v1`,
      labels: { "deployer.approve": "required", "deployer.window": "Mon-Fri 09:00-17:00 Europe/Berlin", "deployer.min-age": "30m" },
    });
    server.swarm.addService({ name: "plain", image: `${repo}:v1` });
    const [plain, web] = await services(server);
    expect(web).toMatchObject({
      name: "web",
      policy: { follow: null, approve: true, windows: ["Mon-Fri 09:00-17:00 Europe/Berlin"], minAgeSeconds: 1800, mode: "deploy" },
      policyErrors: [],
    });
    expect(plain).toMatchObject({ policy: { approve: false, windows: [], minAgeSeconds: 0, mode: "deploy" }, policyErrors: [] });
  });

  it("leaves a service whose labels cannot be read alone, and says why on the service and in the answer", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1`, labels: { "deployer.window": "Someday 09:00-17:00" } });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(1));
    const answer = await push(server, "v1", sha(1));
    expect(answer.deployments).toEqual([]);
    expect(answer.ignored).toEqual([
      { reason: "invalid_policy", service: "web", image: `${repo}:v1`, message: 'deployer.window: not days such as Mon-Fri or Sat,Sun: "Someday"' },
    ]);
    expect(countRows(server, "deployments")).toBe(0);
    const [web] = await services(server);
    expect(web).toMatchObject({ policy: null, policyErrors: ['deployer.window: not days such as Mon-Fri or Sat,Sun: "Someday"'] });
    expect(server.swarm.callsOf("updateService")).toEqual([]);
  });

  it("answers a redelivery of that push as a duplicate alone, and warns of the labels once", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1`, labels: { "deployer.window": "Someday 09:00-17:00" } });
    const token = await server.tokens.signWebhookToken({ sub: "ci", repos: [repo] });
    const json = registryPush({ id: "event-unreadable", repository: "acme/web", tag: "v1", digest: sha(1) });
    const send = () => server.request("/hooks/registry", { method: "POST", headers: { authorization: `Bearer ${token}` }, json });
    const first = await send();
    expect(first.status).toBe(202);
    expect((await first.json()).ignored).toEqual([expect.objectContaining({ reason: "invalid_policy", service: "web" })]);
    // Without the service index a webhook lists the engine; a redelivery is answered from the record first.
    const lists = server.swarm.callsOf("listServices").length;
    const again = await send();
    expect(again.status).toBe(202);
    expect(server.swarm.callsOf("listServices"), "no list for a redelivery").toHaveLength(lists);
    expect(await again.json()).toEqual({
      deployments: [],
      ignored: [{ reason: "duplicate", eventKey: "registry:event-unreadable", image: `${repo}:v1` }],
    });
    expect(countRows(server, "triggers")).toBe(1);
    expect(server.logLines.filter((l) => l.includes("policy labels cannot be read"))).toHaveLength(1);
  });
});

describe("approval (deployer.approve=required)", () => {
  it("waits for someone with deployments:write, then deploys once approved, and only once", async () => {
    const s = server({ "deployer.approve": "required" });
    const id = await pushed(s, "v1", 1);
    const waiting = await untilStatus(s, id, "awaiting_approval");
    expect(waiting.digest).toBe(sha(1));
    expect(timeline(s, id).at(-1)).toBe(
      "awaiting_approval: waiting for approval (deployer.approve=required) until 2026-12-03T06:00:00Z; approve or reject it with deployments:write",
    );
    expect(s.swarm.callsOf("updateService")).toEqual([]);
    expect((await api(s, "POST", `/api/deployments/${id}/approve`, ["deployments:read"])).status).toBe(403);
    const approved = await api(s, "POST", `/api/deployments/${id}/approve`);
    expect(approved.status).toBe(200);
    expect(approved.body.deployment).toMatchObject({ status: "queued", approvedBy: "alice" });
    const again = await api(s, "POST", `/api/deployments/${id}/approve`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("CONFLICT");
    const done = await waitForFinal(s, id);
    expect(done.status, timeline(s, id).join("\n")).toBe("succeeded");
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(1)}`);
    expect(s.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("ends rejected when someone rejects it, or when nobody answers in DEPLOYER_APPROVAL_TTL", async () => {
    const s = server({ "deployer.approve": "required" }, { env: { DEPLOYER_APPROVAL_TTL: "2h" } });
    const first = await pushed(s, "v1", 1);
    await untilStatus(s, first, "awaiting_approval");
    const rejected = await api(s, "POST", `/api/deployments/${first}/reject`);
    expect(rejected.body.deployment).toMatchObject({ status: "rejected", message: "rejected by alice" });
    const second = await pushed(s, "v1", 2);
    await untilStatus(s, second, "awaiting_approval");
    s.clock.advance(2 * 60 * MINUTE);
    const expired = await untilStatus(s, second, "rejected");
    expect(expired.message).toBe("nobody approved it by 2026-12-02T08:00:00.000Z: the request expired");
    expect((await api(s, "POST", `/api/deployments/${second}/approve`)).status).toBe(409);
    expect(s.swarm.callsOf("updateService")).toEqual([]);
  });

  it("lets a newer push supersede the waiting one, and coalesces a retry of the waiting push into it", async () => {
    const s = server({ "deployer.approve": "required" });
    const first = await pushed(s, "v1", 1);
    await untilStatus(s, first, "awaiting_approval");
    const retry = await push(s, "v1", sha(1));
    expect(retry.ignored).toMatchObject([{ reason: "coalesced", deployment: first }]);
    const second = await pushed(s, "v1", 2);
    expect(s.store.getDeployment(first)).toMatchObject({
      status: "superseded",
      message: `superseded by ${second}, a newer request for this service`,
    });
    await untilStatus(s, second, "awaiting_approval");
    expect((await api(s, "POST", `/api/deployments/${second}/approve`)).status).toBe(200);
    expect((await waitForFinal(s, second)).status).toBe("succeeded");
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(2)}`);
  });
});

/** A CI job's announcement of a tag, without a digest (as Docker Hub's webhooks come too): the tag is resolved to learn it. */
async function announced(s: TestServer, tag: string) {
  const token = await s.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
  const res = await s.request("/hooks/ci", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ image: `${repo}:${tag}` }),
  });
  const body = (await res.json()) as { deployments: Array<{ id: string }>; ignored: unknown[] };
  expect(res.status, JSON.stringify(body)).toBe(202);
  return body;
}

describe("a waiting move and a newer request that deploys nothing", () => {
  const release = { "deployer.follow": "glob:release-*", "deployer.approve": "required" };

  /**
   * A service on release-4 (digest 4) that follows release-* with approvals, and a push of release-5 waiting for
   * approval there: the move. The registry's release-4 names `running4` (4 unless a test says otherwise).
   */
  async function moveWaits(running4 = 4) {
    const s = server(release);
    s.swarm.removeService("web");
    s.swarm.addService({ name: "web", image: `${repo}:release-4@${sha(4)}`, labels: release });
    s.registry.push(ref("release-4"), sha(running4));
    const move = await pushed(s, "release-5", 5);
    await untilStatus(s, move, "awaiting_approval");
    return { s, move };
  }

  it("keeps a move to another tag waiting when the running tag's own digest is pushed again", async () => {
    const { s, move } = await moveWaits();
    // A pipeline run again: the running image, announced anew. It deploys nothing, so it replaces nothing.
    const again = await push(s, "release-4", sha(4));
    expect(again.deployments).toMatchObject([{ status: "skipped" }]);
    expect(s.store.getDeployment(again.deployments[0]!.id).message).toBe(`the service already runs ${sha(4)}`);
    expect(s.store.getDeployment(move).status).toBe("awaiting_approval");
    expect((await api(s, "POST", `/api/deployments/${move}/approve`)).status).toBe(200);
    expect((await waitForFinal(s, move)).status, timeline(s, move).join("\n")).toBe("succeeded");
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:release-5@${sha(5)}`);
  });

  it("asks for the move again when a request that superseded it (its digest unknown until resolved) deploys nothing", async () => {
    const { s, move } = await moveWaits();
    const again = (await announced(s, "release-4")).deployments[0]!.id;
    expect((await waitForFinal(s, again)).message).toBe(`the service already runs ${sha(4)}`);
    expect(s.store.getDeployment(move)).toMatchObject({ status: "superseded", supersededBy: again });
    const asked = s.store.latestOf("web")!;
    expect(asked).toMatchObject({ imageKey: `${repo}:release-5`, trigger: "registry", triggerId: s.store.getDeployment(move).triggerId });
    expect(timeline(s, asked.id)[0]).toBe(
      `queued: asked again: ${again}, which superseded ${move} (a move to ${repo}:release-5), deployed nothing (the service already runs ${sha(4)})`,
    );
    await untilStatus(s, asked.id, "awaiting_approval");
    expect((await api(s, "POST", `/api/deployments/${asked.id}/approve`)).status).toBe(200);
    expect((await waitForFinal(s, asked.id)).status).toBe("succeeded");
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:release-5@${sha(5)}`);
  });

  it("passes the move's place to a newer request queued behind the one that deployed nothing, which asks for it again in turn", async () => {
    const { s, move } = await moveWaits();
    s.registry.push(ref("release-6"), sha(6));
    s.holds.quarantine("web", sha(6), move, "rolled back");
    // The first look at release-4 is held, so that a newer push queues behind it.
    let release4!: () => void;
    const held = new Promise<void>((r) => (release4 = r));
    const resolve = s.registry.resolveDigest.bind(s.registry);
    s.registry.resolveDigest = async (r) => {
      if (r.tag === "release-4") await held;
      return resolve(r);
    };
    const first = (await announced(s, "release-4")).deployments[0]!.id;
    const second = (await push(s, "release-6", sha(6))).deployments[0]!.id;
    expect(s.store.getDeployment(second).status).toBe("queued");
    release4();
    expect((await waitForFinal(s, first)).message).toBe(`the service already runs ${sha(4)}`);
    expect((await waitForFinal(s, second)).message).toMatch(/is quarantined on this service/);
    expect(s.store.getDeployment(move)).toMatchObject({ status: "superseded", supersededBy: second });
    expect(timeline(s, move).at(-1)).toBe(`superseded: ${first} deployed nothing; ${second}, a newer request behind it, takes its place`);
    const asked = s.store.latestOf("web")!;
    expect(asked.imageKey).toBe(`${repo}:release-5`);
    expect(timeline(s, asked.id)[0]).toMatch(new RegExp(`^queued: asked again: ${second}, which superseded ${move} `));
    await untilStatus(s, asked.id, "awaiting_approval");
  });

  it("does not ask for the move again when the request that superseded it took its turn (its update met someone else's change)", async () => {
    const { s } = await moveWaits(44);
    const newer = (await announced(s, "release-4")).deployments[0]!.id;
    await untilStatus(s, newer, "awaiting_approval");
    // An operator's `docker service update --image` lands just before the approved update goes out.
    const real = s.swarm.updateService.bind(s.swarm);
    s.swarm.updateService = async (id, version, update) => {
      const current = (await s.swarm.findService(id))!;
      await real(id, current.version, { image: "127.0.0.1:5000/other/thing:v9" });
      s.swarm.updateService = real;
      return real(id, version, update);
    };
    expect((await api(s, "POST", `/api/deployments/${newer}/approve`)).status).toBe(200);
    expect((await waitForFinal(s, newer)).message).toMatch(/^the service changed while its update was on its way/);
    expect(s.store.latestOf("web")!.id, "the move is not asked again").toBe(newer);
    expect((await s.swarm.findService("web"))?.image).toBe("127.0.0.1:5000/other/thing:v9");
  });

  it("does not ask again for an older push of the same tag: the newer one's look at the tag stands", async () => {
    const s = server({ "deployer.approve": "required" });
    const first = await pushed(s, "v1", 1);
    await untilStatus(s, first, "awaiting_approval");
    // Someone else puts the tag's newest digest on the service; the next announcement of the tag finds it there.
    s.registry.push(ref("v1"), sha(2));
    await s.swarm.updateService((await s.swarm.findService("web"))!.id, (await s.swarm.findService("web"))!.version, {
      image: `${repo}:v1@${sha(2)}`,
    });
    const second = (await announced(s, "v1")).deployments[0]!.id;
    expect((await waitForFinal(s, second)).message).toBe(`the service already runs ${sha(2)}`);
    expect(s.store.getDeployment(first).status).toBe("superseded");
    expect(s.store.latestOf("web")!.id).toBe(second);
  });

  it("carries an approval over to a newer request of the same digest: it is not asked for twice", async () => {
    const s = server({ "deployer.approve": "required", "deployer.window": "Mon-Fri 09:00-17:00 UTC" });
    const first = await pushed(s, "v1", 1);
    await untilStatus(s, first, "scheduled");
    s.clock.advance(3 * 60 * MINUTE); // 09:00: the window opens, and approval is asked
    await untilStatus(s, first, "awaiting_approval");
    s.clock.advance(9 * 60 * MINUTE); // approved at 18:00, after the window closed: scheduled for tomorrow
    expect((await api(s, "POST", `/api/deployments/${first}/approve`)).status).toBe(200);
    await untilStatus(s, first, "scheduled");
    // The same image announced again, without its digest: a newer request, of the digest that was approved.
    const second = (await announced(s, "v1")).deployments[0]!.id;
    const waiting = await untilStatus(s, second, "scheduled");
    expect(waiting).toMatchObject({ digest: sha(1), approvedBy: "alice" });
    expect(timeline(s, second)).toContain(`running: the approval of ${first} by alice carries over: the same digest ${sha(1)}`);
    s.clock.advance(15 * 60 * MINUTE); // Thursday 09:00
    expect((await waitForFinal(s, second)).status, timeline(s, second).join("\n")).toBe("succeeded");
    expect(timeline(s, second).some((e) => e.startsWith("awaiting_approval"))).toBe(false);
  });
});

describe("approval and the poller", () => {
  it("leaves a request that waits for approval alone, and does not ask again for a digest that was rejected", async () => {
    const s = server({ "deployer.approve": "required" });
    const waiting = await pushed(s, "v1", 2);
    await untilStatus(s, waiting, "awaiting_approval");
    // The tag still names the digest the request waits with: nothing new for the poller, cycle after cycle.
    for (let cycle = 0; cycle < 2; cycle++) expect((await s.poller.runOnce()).deployments).toEqual([]);
    expect(s.store.getDeployment(waiting).status, timeline(s, waiting).join("\n")).toBe("awaiting_approval");
    expect((await api(s, "POST", `/api/deployments/${waiting}/reject`)).status).toBe(200);
    for (let cycle = 0; cycle < 2; cycle++) expect((await s.poller.runOnce()).deployments).toEqual([]);
    expect(countRows(s, "deployments")).toBe(1);
    // A newer digest is a new question.
    s.registry.push(ref("v1"), sha(3));
    const [asked] = (await s.poller.runOnce()).deployments;
    expect(await untilStatus(s, asked!, "awaiting_approval")).toMatchObject({ trigger: "poll", digest: sha(3) });
    expect(s.swarm.callsOf("updateService")).toEqual([]);
  });

  it("still supersedes a scheduled deployment of an older digest with the tag's newer one", async () => {
    const s = server({ "deployer.window": "Sat 09:00-10:00" });
    const waiting = await pushed(s, "v1", 2);
    await untilStatus(s, waiting, "scheduled");
    expect((await s.poller.runOnce()).deployments).toEqual([]);
    s.registry.push(ref("v1"), sha(3));
    const [newer] = (await s.poller.runOnce()).deployments;
    expect(s.store.getDeployment(waiting)).toMatchObject({ status: "superseded" });
    expect(await untilStatus(s, newer!, "scheduled")).toMatchObject({ digest: sha(3) });
  });
});

describe("deploy window (deployer.window)", () => {
  it("schedules a push outside the window and deploys it when the window opens", async () => {
    const s = server({ "deployer.window": "Mon-Fri 09:00-17:00 UTC" });
    const id = await pushed(s, "v1", 1);
    const scheduled = await untilStatus(s, id, "scheduled");
    expect(scheduled.waitUntil).toBe(Date.UTC(2026, 11, 2, 9, 0));
    expect(timeline(s, id).at(-1)).toBe(
      "scheduled: scheduled for 2026-12-02T09:00:00Z, when the deploy window opens (deployer.window=Mon-Fri 09:00-17:00 UTC)",
    );
    s.clock.advance(2 * 60 * MINUTE);
    expect(s.store.getDeployment(id).status).toBe("scheduled");
    s.clock.advance(60 * MINUTE);
    expect((await waitForFinal(s, id)).status).toBe("succeeded");
    expect(timeline(s, id)).toContain("queued: the deploy window opened; queued");
  });

  it("replaces a scheduled push with a newer one, and deploys at once inside the window", async () => {
    const s = server({ "deployer.window": "Mon-Fri 09:00-17:00 UTC" });
    const first = await pushed(s, "v1", 1);
    await untilStatus(s, first, "scheduled");
    const second = await pushed(s, "v1", 2);
    await untilStatus(s, second, "scheduled");
    expect(s.store.getDeployment(first).status).toBe("superseded");
    s.clock.advance(3 * 60 * MINUTE);
    expect((await waitForFinal(s, second)).status).toBe("succeeded");
    const third = await pushed(s, "v1", 3);
    expect((await waitForFinal(s, third)).status).toBe("succeeded");
    expect(s.swarm.callsOf("updateService")).toHaveLength(2);
  });

  it("deploys a scheduled push on time after a restart", async () => {
    // The swarm outlives the server and moves only when settled; the first server's clock stands still.
    const swarm = new FakeSwarm();
    const first = createTestServer({}, { clock: new FakeClock(WED_0600, { autoAdvanceUpToMs: ROLLOUT_POLL_MS }), swarm });
    swarm.addService({ name: "web", image: `${repo}:v1`, labels: { "deployer.window": "daily 09:00-10:00 UTC" } });
    const id = await pushed(first, "v1", 1);
    await untilStatus(first, id, "scheduled");
    first.deployer.stop();
    // Restarted before the window opens: it waits again, to the minute, and deploys then.
    const later = new FakeClock(Date.UTC(2026, 11, 2, 8, 0), { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
    const second = createTestServer({}, { clock: later, swarm, dbPath: first.dbPath });
    expect(second.deployer.reconcile()).toBe(1);
    expect(later.sleeps).toEqual([60 * MINUTE]);
    expect(second.store.getDeployment(id).status).toBe("scheduled");
    later.advance(60 * MINUTE);
    await untilStatus(second, id, "running");
    for (let i = 0; i < 50 && second.store.getDeployment(id).status === "running"; i++) await swarm.settle();
    expect((await waitForFinal(second, id)).status, timeline(second, id).join("\n")).toBe("succeeded");
  });
});

describe("cool-down (deployer.min-age)", () => {
  it("deploys an image only once it is old enough, and a newer push restarts the wait", async () => {
    const s = server({ "deployer.min-age": "30m" });
    const first = await pushed(s, "v1", 1);
    const cooling = await untilStatus(s, first, "cooling_down");
    expect(cooling.waitUntil).toBe(WED_0600 + 30 * MINUTE);
    s.clock.advance(20 * MINUTE);
    const second = await pushed(s, "v1", 2);
    await untilStatus(s, second, "cooling_down");
    expect(s.store.getDeployment(first).status).toBe("superseded");
    expect(s.store.getDeployment(second).waitUntil).toBe(WED_0600 + 50 * MINUTE);
    s.clock.advance(10 * MINUTE);
    expect(s.store.getDeployment(second).status).toBe("cooling_down");
    s.clock.advance(20 * MINUTE);
    expect((await waitForFinal(s, second)).status).toBe("succeeded");
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(2)}`);
  });

  it("counts from the digest's first push, so a retry of the same push does not restart it", async () => {
    const s = server({ "deployer.min-age": "30m" });
    const first = await pushed(s, "v1", 1);
    await untilStatus(s, first, "cooling_down");
    s.clock.advance(20 * MINUTE);
    // A CI job's announcement naming no digest: a deployment of its own, which supersedes and resolves the same digest.
    const token = await s.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
    const ci = await s.request("/hooks/ci", { method: "POST", headers: { authorization: `Bearer ${token}` }, json: { image: `${repo}:v1` } });
    const again = ((await ci.json()) as { deployments: Array<{ id: string }> }).deployments[0]!.id;
    const cooling = await untilStatus(s, again, "cooling_down");
    expect(cooling.waitUntil).toBe(WED_0600 + 30 * MINUTE);
  });
});

describe("cool-down from the image's creation time", () => {
  it("counts from when the registry says the image was built, when that is before its push", async () => {
    const s = server({ "deployer.min-age": "30m" });
    s.registry.push(ref("v1"), sha(1), { createdAt: WED_0600 - 20 * MINUTE });
    const answer = await push(s, "v1", sha(1));
    const cooling = await untilStatus(s, answer.deployments[0]!.id, "cooling_down");
    expect(cooling.waitUntil).toBe(WED_0600 + 10 * MINUTE);
    expect(cooling.message).toBe(`cooling down until 2026-12-02T06:10:00Z: deployer.min-age=30m and ${sha(1)} was built at 2026-12-02T05:40:00Z`);
    s.clock.advance(10 * MINUTE);
    expect((await waitForFinal(s, cooling.id)).status).toBe("succeeded");
    expect(s.registry.createdLookups, "asked once, not again when the wait ended").toEqual(["127.0.0.1:5000/acme/web"]);
  });

  it("deploys at once an image built longer ago than the cool-down, and never asks for an image not cooling", async () => {
    const s = server({ "deployer.min-age": "30m" });
    s.registry.push(ref("v1"), sha(1), { createdAt: WED_0600 - 2 * 60 * MINUTE });
    const first = (await push(s, "v1", sha(1))).deployments[0]!.id;
    expect((await waitForFinal(s, first)).status).toBe("succeeded");
    const plain = server({});
    plain.registry.push(ref("v1"), sha(2), { createdAt: WED_0600 - 2 * 60 * MINUTE });
    expect((await waitForFinal(plain, (await push(plain, "v1", sha(2))).deployments[0]!.id)).status).toBe("succeeded");
    expect(plain.registry.createdLookups).toEqual([]);
  });

  it("counts from the push when the image's creation time is later, unknown or cannot be read, saying why", async () => {
    const later = server({ "deployer.min-age": "30m" });
    later.registry.push(ref("v1"), sha(1), { createdAt: WED_0600 + MINUTE });
    const a = await untilStatus(later, (await push(later, "v1", sha(1))).deployments[0]!.id, "cooling_down");
    expect([a.waitUntil, a.message]).toEqual([WED_0600 + 30 * MINUTE, expect.stringContaining("was first recorded at 2026-12-02T06:00:00Z")]);

    const broken = server({ "deployer.min-age": "30m" });
    broken.registry.push(ref("v1"), sha(2));
    broken.registry.imageCreatedAt = async () => {
      throw new RegistryError("unauthorized", "registry 127.0.0.1:5000 refused anonymous access to acme/web (HTTP 401)");
    };
    const b = await untilStatus(broken, (await push(broken, "v1", sha(2))).deployments[0]!.id, "cooling_down");
    expect(b.waitUntil).toBe(WED_0600 + 30 * MINUTE);
    expect(timeline(broken, b.id)).toContainEqual(
      `running: could not read when ${sha(2)} was built (registry 127.0.0.1:5000 refused anonymous access to acme/web (HTTP 401)); the cool-down counts from the push`,
    );
  });
});

describe("watch only (deployer.mode=notify)", () => {
  it("records what would deploy and never updates the service", async () => {
    const s = server({ "deployer.mode": "notify" });
    const id = await pushed(s, "v1", 1);
    const done = await waitForFinal(s, id);
    expect([done.status, done.digest, done.message]).toEqual([
      "skipped",
      sha(1),
      `deployer.mode=notify: ${sha(1)} would be deployed; recorded and announced, the service is not updated`,
    ]);
    expect(s.swarm.callsOf("updateService")).toEqual([]);
  });
});

/** A receiver for Apprise and the JSON webhook: every request's path, headers and raw body. */
async function receiver() {
  const got: Array<{ path: string; headers: Record<string, string | string[] | undefined>; body: string }> = [];
  const http = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ path: req.url ?? "", headers: req.headers, body });
      // A receiver that sends the server elsewhere (an instance's metadata, say).
      if (req.url === "/moved") res.writeHead(307, { location: `${url}/elsewhere` }).end();
      else res.writeHead(200).end("{}");
    });
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  onTestFinished(() => new Promise<void>((r) => http.close(() => r())));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const waitFor = async (n: number) => {
    for (let i = 0; i < 500 && got.length < n; i++) await new Promise((r) => setTimeout(r, 5));
    expect(got.length).toBeGreaterThanOrEqual(n);
  };
  return { url, got, waitFor };
}

describe("notifications of waits", () => {
  it("tells Apprise and the signed JSON webhook that a deployment waits for approval, and what a watched service would deploy", async () => {
    const sink = await receiver();
    const secret = "webhook-secret-0123456789";
    const s = server(
      { "deployer.approve": "required" },
      {
        env: { APPRISE_SIDECAR_URL: `${sink.url}/apprise`, DEPLOYER_NOTIFY_WEBHOOK_URL: `${sink.url}/hook`, DEPLOYER_NOTIFY_WEBHOOK_SECRET: secret },
      },
    );
    s.swarm.addService({ name: "watched", image: `${repo}:v1`, labels: { "deployer.mode": "notify" } });
    const answer = await (async () => {
      s.registry.push(ref("v1"), sha(1));
      return push(s, "v1", sha(1));
    })();
    const of = (name: string) => answer.deployments.find((d) => s.store.getDeployment(d.id).service === name);
    const [web, watched] = [of("web"), of("watched")];
    await untilStatus(s, watched!.id, "skipped");
    await untilStatus(s, web!.id, "awaiting_approval");
    await sink.waitFor(4);
    const apprise = sink.got
      .filter((g) => g.path === "/apprise")
      .map((g) => JSON.parse(g.body) as { title: string; body: string; notify_type: string });
    expect(apprise.map((m) => [m.notify_type, m.title]).sort()).toEqual([
      ["info", expect.stringMatching(/^\[deployer\] Service watched has a new image on /)],
      ["warning", expect.stringMatching(/^\[deployer\] Service web waits for approval on /)],
    ]);
    expect(apprise.find((m) => m.notify_type === "warning")!.body).toContain(`${repo}:v1@${sha(1)} waits for approval (deployment ${web!.id})`);
    const hooks = sink.got.filter((g) => g.path === "/hook");
    for (const h of hooks) {
      expect(h.headers["x-deployer-signature"]).toBe(`sha256=${createHmac("sha256", secret).update(h.body).digest("hex")}`);
    }
    const events = hooks.map((h) => JSON.parse(h.body) as { event: string; deployment: { id: string; status: string } });
    expect(events.map((e) => [e.event, e.deployment.id, e.deployment.status]).sort()).toEqual(
      [
        ["deployment.finished", watched!.id, "skipped"],
        ["deployment.waiting", web!.id, "awaiting_approval"],
      ].sort(),
    );
  });

  it("sends a login in the URL as Basic auth, never logs it, and follows no redirect", async () => {
    const sink = await receiver();
    const secret = "webhook-secret-0123456789";
    const withLogin = sink.url.replace("http://", "http://admin:hunter2%21pw@");
    const s = server(
      { "deployer.approve": "required" },
      {
        env: {
          APPRISE_SIDECAR_URL: `${withLogin}/apprise`,
          DEPLOYER_NOTIFY_WEBHOOK_URL: `${sink.url}/moved`,
          DEPLOYER_NOTIFY_WEBHOOK_SECRET: secret,
        },
      },
    );
    const id = await pushed(s, "v1", 1);
    await untilStatus(s, id, "awaiting_approval");
    await sink.waitFor(2);
    const apprise = sink.got.find((g) => g.path === "/apprise")!;
    expect(apprise.headers.authorization).toBe(`Basic ${Buffer.from("admin:hunter2!pw").toString("base64")}`);
    expect(sink.got.map((g) => g.path).sort()).toEqual(["/apprise", "/moved"]);
    const logs = s.logLines.join("\n");
    expect(logs).not.toContain("hunter2");
    expect(logs).toContain("webhook notification failed (a redirect, not followed)");
    expect(sink.got.some((g) => g.path === "/elsewhere")).toBe(false);
  });

  it("refuses a notification webhook without a secret to sign it with", () => {
    expect(() => createTestServer({ DEPLOYER_NOTIFY_WEBHOOK_URL: "http://127.0.0.1:9/hook" })).toThrow(/DEPLOYER_NOTIFY_WEBHOOK_SECRET/);
  });
});
