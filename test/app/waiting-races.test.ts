/**
 * The deployer's lanes and the waiting room of policy gates, where requests
 * cross: a newer push that comes while an older one runs its gates, and
 * writes the database refuses (a full or read-only disk) in the middle of
 * admitting, waking, approving or rejecting. What the record says and what
 * the deployer holds in memory must not drift apart, and an older push must
 * never deploy over a newer one.
 */
import { describe, expect, it } from "vitest";
import { deploymentsFor } from "../../server/operations/ingest-push.js";
import { requestDeploymentsGrouped } from "../../server/operations/request-deployment.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { FakeSwarm } from "../helpers/fake-swarm.js";
import type { SwarmService } from "../../server/engine/swarm-port.js";
import { failCommits, fillDatabase, refuseTransitions } from "../helpers/storage-faults.js";
import { createTestServer, pushAcmeWeb, registryPush, ROLLOUT_POLL_MS, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const ref = (tag: string) => ({ registry: "127.0.0.1:5000", repository: "acme/web", tag });
const WED_0600 = Date.UTC(2026, 11, 2, 6, 0);
const MINUTE = 60_000;
const turn = () => new Promise<void>((r) => setImmediate(r));

async function until(what: string, ok: () => boolean) {
  for (let i = 0; i < 2000 && !ok(); i++) await turn();
  expect(ok(), what).toBe(true);
}

const untilStatus = (s: TestServer, id: string, status: string) => until(`${id} is ${status}`, () => s.store.getDeployment(id).status === status);

function serverWith(labels: Record<string, string>) {
  const clock = new FakeClock(WED_0600, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
  const s = createTestServer({}, { clock, swarm: new FakeSwarm({ clock, stepMs: ROLLOUT_POLL_MS }) });
  s.swarm.addService({ name: "web", image: `${repo}:v1`, labels });
  return s;
}

async function post(s: TestServer, n: number) {
  s.registry.push(ref("v1"), sha(n));
  const token = await s.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
  const res = await s.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    json: registryPush({ repository: "acme/web", tag: "v1", digest: sha(n) }),
  });
  return { status: res.status, body: (await res.json()) as { deployments?: Array<{ id: string }> } };
}

/** A deployer whose admission of the first "api" deployment throws, as one statement of one write of a batch can fail alone. */
function poisonedDeployer(s: TestServer) {
  const realAdmit = s.deployer.admit;
  let poisoned = false;
  return {
    ...s.deployer,
    admit: (id: string) => {
      if (!poisoned && s.store.getDeployment(id).service === "api") {
        poisoned = true;
        throw new Error("a statement of this write failed");
      }
      return realAdmit(id);
    },
  };
}

function grouped(s: TestServer, deployer: ReturnType<typeof poisonedDeployer>, n: number, selected: SwarmService[]) {
  return requestDeploymentsGrouped(
    { store: s.store, deployer },
    { kind: "registry", eventKey: `evt-${n}`, imageKey: `${repo}:v1`, digestHint: sha(n), requestedBy: "ci" },
    deploymentsFor(selected, { kind: "registry", requestedBy: "ci", imageKey: `${repo}:v1`, image: `${repo}:v1`, digestHint: sha(n) }, "queued"),
    { coalesce: true },
  );
}

/** Holds the registry's answer to when `digest` was built: a run of it waits at its cool-down gate until released. */
function holdBuildTime(s: TestServer, digest: string) {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const real = s.registry.imageCreatedAt.bind(s.registry);
  let asked = 0;
  s.registry.imageCreatedAt = async (r, d) => {
    asked++;
    if (d === digest) await held;
    return real(r, d);
  };
  return { release, asked: () => asked };
}

describe("a newer request while an older one runs its gates", () => {
  it("supersedes the older one when it stops at a gate, instead of letting it wait and deploy over the newer one later", async () => {
    const s = serverWith({ "deployer.min-age": "30m" });
    // The older push's build-time lookup is held: its run sits at the cool-down gate.
    const gate = holdBuildTime(s, sha(1));
    s.registry.push(ref("v1"), sha(1));
    const older = (await pushAcmeWeb(s, "v1", sha(1))).deployments[0]!.id;
    await until("the older push is at its gate", () => gate.asked() === 1);
    // The tag moves on to an image built hours ago: no cool-down for it.
    s.registry.push(ref("v1"), sha(2), { createdAt: WED_0600 - 120 * MINUTE });
    const newer = (await pushAcmeWeb(s, "v1", sha(2))).deployments[0]!.id;
    expect(s.store.getDeployment(newer).status).toBe("queued");
    gate.release();
    expect((await waitForFinal(s, newer)).status).toBe("succeeded");
    const end = s.store.getDeployment(older);
    expect(end.status).toBe("superseded");
    expect(end.message).toBe(`superseded by ${newer}, a newer request for this service`);
    // Its timeline says it reached its gate first.
    expect(s.store.listEvents(older).at(-2)).toMatchObject({ status: "cooling_down" });
    s.clock.advance(31 * MINUTE);
    await s.deployer.idle();
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(2)}`);
    expect(s.swarm.callsOf("updateService")).toHaveLength(1);
  });
});

describe("writes the database refuses around the waiting room", () => {
  it("a refused superseding at the gate retries the run whole: the older one ends superseded, not failed", async () => {
    const s = serverWith({ "deployer.min-age": "30m" });
    const gate = holdBuildTime(s, sha(1));
    const disk = refuseTransitions(s, (patch) => patch.status === "superseded", 1);
    s.registry.push(ref("v1"), sha(1));
    const older = (await pushAcmeWeb(s, "v1", sha(1))).deployments[0]!.id;
    await until("the older push is at its gate", () => gate.asked() === 1);
    s.registry.push(ref("v1"), sha(2), { createdAt: WED_0600 - 120 * MINUTE });
    const newer = (await pushAcmeWeb(s, "v1", sha(2))).deployments[0]!.id;
    gate.release();
    await until("the superseding refused", () => disk.refused() === 1);
    await until("the deployer waiting for space", () => s.clock.sleeps.includes(1000));
    expect(s.store.getDeployment(older).status, "nothing of the wait was kept").toBe("running");
    s.clock.advance(1000);
    expect((await waitForFinal(s, newer)).status).toBe("succeeded");
    expect(s.store.getDeployment(older).status).toBe("superseded");
    expect(s.swarm.callsOf("updateService")).toHaveLength(1);
  });

  it("a push whose admission is refused at superseding the waiting one leaves it waiting, the deployer idle, and it wakes", async () => {
    const s = serverWith({ "deployer.min-age": "30m" });
    const first = (await post(s, 1)).body.deployments![0]!.id;
    await untilStatus(s, first, "cooling_down");
    const disk = refuseTransitions(s, (patch) => patch.status === "superseded", 1);
    expect((await post(s, 2)).status).toBe(503);
    expect(disk.refused()).toBe(1);
    expect(s.store.getDeployment(first).status).toBe("cooling_down");
    await s.deployer.idle();
    s.clock.advance(31 * MINUTE);
    expect((await waitForFinal(s, first)).status).toBe("succeeded");
  });

  it("a write of a batch that fails alone after taking the waiting one gives it back before the batch's next write, which then supersedes it", async () => {
    const s = serverWith({ "deployer.min-age": "30m" });
    const api = s.swarm.addService({ name: "api", image: `${repo}:v1` });
    const web = (await s.swarm.findService("web"))!;
    s.registry.push(ref("v1"), sha(1));
    const waiting = (await pushAcmeWeb(s, "v1", sha(1))).deployments.find((d) => d.service === "web")!.id;
    await untilStatus(s, waiting, "cooling_down");
    await s.deployer.idle().catch(() => undefined);
    const deployer = poisonedDeployer(s);
    s.registry.push(ref("v1"), sha(3), { createdAt: WED_0600 - 120 * MINUTE });
    // Asked in the same turn: one batch; the first write takes the waiting one, then fails alone.
    const failing = grouped(s, deployer, 2, [web, api]);
    const later = grouped(s, deployer, 3, [web]);
    await expect(failing).rejects.toThrow(/a statement of this write failed/);
    const recorded = await later;
    if (recorded.duplicate) throw new Error("not a duplicate");
    const id = recorded.deployments[0]!.id;
    expect((await waitForFinal(s, id)).status).toBe("succeeded");
    expect(s.store.getDeployment(waiting)).toMatchObject({ status: "superseded", message: `superseded by ${id}, a newer request for this service` });
    s.clock.advance(31 * MINUTE);
    await s.deployer.idle();
    expect((await s.swarm.findService("web"))?.image).toBe(`${repo}:v1@${sha(3)}`);
  });

  it("a push whose commit fails leaves the waiting deployment waiting: a later push supersedes it, and it wakes when its wait ends", async () => {
    const s = serverWith({ "deployer.min-age": "30m" });
    const first = (await post(s, 1)).body.deployments![0]!.id;
    await untilStatus(s, first, "cooling_down");
    const disk = failCommits(s);
    expect((await post(s, 2)).status).toBe(503);
    disk.lift();
    expect(s.store.getDeployment(first).status).toBe("cooling_down");
    // Still in the room: it wakes and deploys when its wait ends.
    s.clock.advance(31 * MINUTE);
    expect((await waitForFinal(s, first)).status).toBe("succeeded");

    // And a refused push while one waits, then an accepted one: the accepted one supersedes the waiting one.
    const third = (await post(s, 3)).body.deployments![0]!.id;
    await untilStatus(s, third, "cooling_down");
    const again = failCommits(s);
    expect((await post(s, 4)).status).toBe(503);
    again.lift();
    const fifth = (await post(s, 5)).body.deployments![0]!.id;
    await untilStatus(s, fifth, "cooling_down");
    expect(s.store.getDeployment(third)).toMatchObject({ status: "superseded", message: `superseded by ${fifth}, a newer request for this service` });
    await s.deployer.idle();
  });

  it("a wait that ends while the disk refuses writes wakes once it takes them again, trying less often meanwhile", async () => {
    const s = serverWith({ "deployer.min-age": "30m" });
    s.registry.push(ref("v1"), sha(1));
    const id = (await pushAcmeWeb(s, "v1", sha(1))).deployments[0]!.id;
    await untilStatus(s, id, "cooling_down");
    const disk = fillDatabase(s);
    const refusals = () => s.logLines.filter((l) => l.includes("waking a waiting deployment: the database could not be written")).length;
    s.clock.advance(31 * MINUTE);
    await until("the refused wake-up is logged", () => refusals() === 1);
    await until("a retry in 1 s", () => s.clock.sleeps.includes(1000));
    s.clock.advance(1000);
    await until("refused again", () => refusals() === 2);
    await until("the next retry in 2 s", () => s.clock.sleeps.includes(2000));
    expect(s.store.getDeployment(id).status).toBe("cooling_down");
    disk.lift();
    s.clock.advance(2000);
    expect((await waitForFinal(s, id)).status).toBe("succeeded");
  });

  it("wakes nothing once the deployer is stopped: the wait stays in the record for the next start", async () => {
    const s = serverWith({ "deployer.min-age": "30m" });
    s.registry.push(ref("v1"), sha(1));
    const id = (await pushAcmeWeb(s, "v1", sha(1))).deployments[0]!.id;
    await untilStatus(s, id, "cooling_down");
    s.deployer.stop();
    s.clock.advance(31 * MINUTE);
    for (let i = 0; i < 50; i++) await turn();
    expect(s.store.getDeployment(id).status).toBe("cooling_down");
    expect(s.swarm.callsOf("updateService")).toEqual([]);
  });

  it("an approval or a rejection the disk refuses leaves the request waiting: approvable again, superseded by a newer push", async () => {
    const s = serverWith({ "deployer.approve": "required" });
    s.registry.push(ref("v1"), sha(1));
    const first = (await pushAcmeWeb(s, "v1", sha(1))).deployments[0]!.id;
    await untilStatus(s, first, "awaiting_approval");
    const disk = fillDatabase(s);
    expect(() => s.deployer.approve(first, "alice")).toThrow(expect.objectContaining({ code: "SQLITE_READONLY" }));
    expect(() => s.deployer.reject(first, "alice")).toThrow(expect.objectContaining({ code: "SQLITE_READONLY" }));
    disk.lift();
    expect(s.store.getDeployment(first).status).toBe("awaiting_approval");
    s.registry.push(ref("v1"), sha(2));
    const second = (await pushAcmeWeb(s, "v1", sha(2))).deployments[0]!.id;
    await untilStatus(s, second, "awaiting_approval");
    expect(s.store.getDeployment(first)).toMatchObject({
      status: "superseded",
      message: `superseded by ${second}, a newer request for this service`,
    });
    s.deployer.approve(second, "alice");
    expect((await waitForFinal(s, second)).status).toBe("succeeded");
  });

  it("a push whose commit fails on an idle service leaves the deployer idle", async () => {
    const s = createTestServer();
    s.swarm.addService({ name: "web", image: `${repo}:v1@${sha(1)}` });
    const disk = failCommits(s);
    expect((await post(s, 2)).status).toBe(503);
    disk.lift();
    expect(s.store.findUnfinished()).toEqual([]);
    await s.deployer.idle();
    // And the service deploys the next push.
    const next = (await post(s, 3)).body.deployments![0]!.id;
    expect((await waitForFinal(s, next)).status).toBe("succeeded");
  });

  it("a write of a grouped commit that fails alone does not take back the lane a later write of the same batch committed", async () => {
    const s = createTestServer();
    const services = ["web", "api"].map((name) => s.swarm.addService({ name, image: `${repo}:v1` }));
    // One write of the batch fails on its own (its savepoint is rolled back; the batch commits the others).
    const deployer = poisonedDeployer(s);
    s.registry.push(ref("v1"), sha(3));
    // Asked in the same turn: one batch, the failing write first.
    const failing = grouped(s, deployer, 2, services);
    const later = grouped(s, deployer, 3, [services[0]!]);
    await expect(failing).rejects.toThrow(/a statement of this write failed/);
    const recorded = await later;
    if (recorded.duplicate) throw new Error("not a duplicate");
    const id = recorded.deployments[0]!.id;
    expect((await waitForFinal(s, id)).status).toBe("succeeded");
    await s.deployer.idle();
  });
});
