/** deployer.follow in-process, on the fake clock: pushes of newer tags move a service's tag; the poller finds them with the tag list. */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../helpers/fake-clock.js";
import { createTestServer, registryPush, runToFinal, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const host = "127.0.0.1:5000";
const repo = `${host}/acme/web`;

function publish(server: TestServer, tag: string, digest: string) {
  server.registry.push({ registry: host, repository: "acme/web", tag }, digest);
}

async function push(server: TestServer, ...pushes: Array<{ tag: string; digest: string }>) {
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: [`${host}/acme/*`] });
  const events = pushes.flatMap((p) => registryPush({ repository: "acme/web", tag: p.tag, digest: p.digest }).events);
  const res = await server.request("/hooks/registry", { method: "POST", headers: { authorization: `Bearer ${token}` }, json: { events } });
  expect(res.status).toBe(202);
  return (await res.json()) as { deployments: Array<{ id: string; service: string }>; ignored: Array<Record<string, unknown>> };
}

const imageOf = async (server: TestServer, name: string) => (await server.swarm.findService(name))?.image;

describe("deployer.follow on pushes", () => {
  it("moves a semver:minor service from 1.4.2 to 1.4.3, rewriting the tag and pinning the digest; ignores 2.0.0 and 1.3.9", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels: { "deployer.follow": "semver:minor" } });
    server.swarm.addService({ name: "plain", image: `${repo}:1.4.2@${sha(1)}` });
    publish(server, "1.4.3", sha(2));
    const answer = await push(server, { tag: "1.4.3", digest: sha(2) });
    expect(answer.deployments.map((d) => d.service)).toEqual(["web"]);
    const done = await waitForFinal(server, answer.deployments[0]!.id);
    expect(done).toMatchObject({
      status: "succeeded",
      image: `${repo}:1.4.3`,
      imageKey: `${repo}:1.4.3`,
      previousImage: `${repo}:1.4.2@${sha(1)}`,
      pinnedImage: `${repo}:1.4.3@${sha(2)}`,
    });
    expect(server.store.listEvents(done.id)[0]?.message).toContain("follows semver:minor: 1.4.2 -> 1.4.3");
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.3@${sha(2)}`);
    expect(await imageOf(server, "plain"), "a service without the label follows its own tag only").toBe(`${repo}:1.4.2@${sha(1)}`);

    publish(server, "2.0.0", sha(3));
    publish(server, "1.3.9", sha(4));
    const ignored = await push(server, { tag: "2.0.0", digest: sha(3) }, { tag: "1.3.9", digest: sha(4) });
    expect(ignored.deployments).toEqual([]);
    expect(ignored.ignored.map((i) => i.reason)).toEqual(["no_matching_service", "no_matching_service"]);
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.3@${sha(2)}`);
  });

  it("still deploys a new digest of the tag a follow service runs", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels: { "deployer.follow": "semver:patch" } });
    publish(server, "1.4.2", sha(5));
    const answer = await push(server, { tag: "1.4.2", digest: sha(5) });
    expect((await waitForFinal(server, answer.deployments[0]!.id)).status).toBe("succeeded");
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.2@${sha(5)}`);
  });

  it("does not move back: a push of 1.4.3 after one of 1.4.4 is coalesced into the 1.4.4 deployment", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels: { "deployer.follow": "semver:patch" } });
    publish(server, "1.4.4", sha(6));
    publish(server, "1.4.3", sha(7));
    const answer = await push(server, { tag: "1.4.4", digest: sha(6) }, { tag: "1.4.3", digest: sha(7) });
    const [newer, ...more] = answer.deployments;
    expect(more).toEqual([]);
    expect(answer.ignored).toContainEqual({ reason: "coalesced", service: "web", image: `${repo}:1.4.3`, deployment: newer!.id });
    expect(await waitForFinal(server, newer!.id)).toMatchObject({ status: "succeeded", image: `${repo}:1.4.4` });
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.4@${sha(6)}`);
  });

  it("keeps a waiting newer version when an older push comes after it (the older is coalesced, not superseding it)", async () => {
    const clock = new FakeClock();
    const server = createTestServer({}, { clock });
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels: { "deployer.follow": "semver:patch" } });
    publish(server, "1.4.3", sha(3));
    const first = (await push(server, { tag: "1.4.3", digest: sha(3) })).deployments[0]!;
    // Time stands still: 1.4.3's rollout waits for the fake swarm, and the next pushes queue behind it.
    publish(server, "1.4.5", sha(5));
    const newest = (await push(server, { tag: "1.4.5", digest: sha(5) })).deployments[0]!;
    publish(server, "1.4.4", sha(4));
    const late = await push(server, { tag: "1.4.4", digest: sha(4) });
    expect(late.deployments).toEqual([]);
    expect(late.ignored).toContainEqual({ reason: "coalesced", service: "web", image: `${repo}:1.4.4`, deployment: newest.id });
    await server.swarm.settle();
    expect((await waitForFinal(server, first.id)).status).toBe("succeeded");
    expect((await runToFinal(server, newest.id)).status).toBe("succeeded");
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.5@${sha(5)}`);
  });

  it("takes pre-releases only with ,prerelease, and a glob any other matching pushed tag", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "stable", image: `${repo}:1.4.2`, labels: { "deployer.follow": "semver:major" } });
    server.swarm.addService({ name: "edge", image: `${repo}:1.4.2`, labels: { "deployer.follow": "semver:major,prerelease" } });
    server.swarm.addService({ name: "release", image: `${repo}:release-9`, labels: { "deployer.follow": "glob:release-*" } });
    publish(server, "2.0.0-rc.1", sha(8));
    publish(server, "release-10", sha(9));
    const answer = await push(server, { tag: "2.0.0-rc.1", digest: sha(8) }, { tag: "release-10", digest: sha(9) });
    expect(answer.deployments.map((d) => d.service).sort()).toEqual(["edge", "release"]);
    for (const d of answer.deployments) expect((await waitForFinal(server, d.id)).status).toBe("succeeded");
    expect(await imageOf(server, "edge")).toBe(`${repo}:2.0.0-rc.1@${sha(8)}`);
    expect(await imageOf(server, "release")).toBe(`${repo}:release-10@${sha(9)}`);
    expect(await imageOf(server, "stable")).toBe(`${repo}:1.4.2`);
  });
});

describe("deployer.follow in the poller", () => {
  it("finds 1.4.3 with one tag list per repository per cycle and looks up only the tag it moves to", async () => {
    const server = createTestServer();
    const labels = { "deployer.follow": "semver:minor" };
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels });
    server.swarm.addService({ name: "web-twin", image: `${repo}:1.4.2@${sha(1)}`, labels });
    server.swarm.addService({ name: "patch-only", image: `${repo}:1.3.9@${sha(4)}`, labels: { "deployer.follow": "semver:patch" } });
    for (const [tag, n] of [
      ["1.3.9", 4],
      ["1.4.2", 1],
      ["1.4.3", 2],
      ["2.0.0", 3],
    ] as const)
      publish(server, tag, sha(n));

    const cycle = await server.poller.runOnce();
    expect(cycle.tagLists).toBe(1);
    expect(server.registry.tagLists).toEqual([`${host}/acme/web`]);
    // 1.4.3 for the two minor followers (once), and each service's own tag; never 2.0.0.
    expect([...server.registry.lookups].sort()).toEqual([`${repo}:1.3.9`, `${repo}:1.4.3`]);
    expect(cycle.deployments).toHaveLength(2);
    const done = await Promise.all(cycle.deployments.map((id) => waitForFinal(server, id)));
    for (const d of done) {
      expect(d).toMatchObject({ status: "succeeded", trigger: "poll", image: `${repo}:1.4.3`, pinnedImage: `${repo}:1.4.3@${sha(2)}` });
      expect(server.store.listEvents(d.id)[0]?.message).toContain("the service follows semver:minor: 1.4.2 -> 1.4.3");
    }
    expect(await imageOf(server, "patch-only")).toBe(`${repo}:1.3.9@${sha(4)}`);

    const quiet = await server.poller.runOnce();
    expect(quiet).toMatchObject({ tagLists: 1, deployments: [] });
    expect(server.registry.tagLists).toHaveLength(2);
  });

  it("for a glob, deploys a tag that appeared on the list since the previous cycle, not the ones there before", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "release", image: `${repo}:release-9@${sha(1)}`, labels: { "deployer.follow": "glob:release-*" } });
    publish(server, "release-9", sha(1));
    publish(server, "release-8", sha(2));
    expect((await server.poller.runOnce()).deployments, "the first cycle learns the list").toEqual([]);
    publish(server, "release-10", sha(3));
    const cycle = await server.poller.runOnce();
    expect(cycle.deployments).toHaveLength(1);
    expect(await waitForFinal(server, cycle.deployments[0]!)).toMatchObject({ status: "succeeded", image: `${repo}:release-10` });
    expect(await imageOf(server, "release")).toBe(`${repo}:release-10@${sha(3)}`);
    expect(
      server.registry.lookups.filter((l) => l.endsWith("release-8")),
      "an old tag is never looked up",
    ).toEqual([]);
  });

  it("for a glob, deploys a tag pushed while the server was down: the previous list is in the record", async () => {
    const before = createTestServer();
    before.swarm.addService({ name: "release", image: `${repo}:release-9@${sha(1)}`, labels: { "deployer.follow": "glob:release-*" } });
    publish(before, "release-9", sha(1));
    publish(before, "release-8", sha(2));
    expect((await before.poller.runOnce()).deployments, "the very first look learns the list").toEqual([]);
    before.database.close();

    // release-10 is pushed and its webhook lost while no server runs.
    const after = createTestServer({}, { dbPath: before.dbPath, swarm: before.swarm, clock: before.clock });
    for (const [tag, digest] of [
      ["release-9", sha(1)],
      ["release-8", sha(2)],
      ["release-10", sha(3)],
    ] as const)
      publish(after, tag, digest);
    const cycle = await after.poller.runOnce();
    expect(cycle.deployments).toHaveLength(1);
    expect(await waitForFinal(after, cycle.deployments[0]!)).toMatchObject({ status: "succeeded", image: `${repo}:release-10` });
    expect((await after.poller.runOnce()).deployments, "a tag once new is not new again").toEqual([]);
  });

  it("still deploys a new digest of its own tag when the newer tag it would move to is quarantined on it", async () => {
    const server = createTestServer();
    server.swarm.addService({
      name: "web",
      image: `${repo}:1.4.2@${sha(1)}`,
      labels: { "deployer.follow": "semver:patch" },
      failureAction: "rollback",
    });
    server.swarm.failImage(`${repo}:1.4.3@${sha(2)}`);
    publish(server, "1.4.3", sha(2));
    const failed = await push(server, { tag: "1.4.3", digest: sha(2) });
    expect((await waitForFinal(server, failed.deployments[0]!.id)).status).toBe("rolled_back");
    expect(server.holds.findQuarantine("web", sha(2))).toBeDefined();
    publish(server, "1.4.2", sha(5));
    const cycle = await server.poller.runOnce();
    expect(cycle.deployments).toHaveLength(1);
    expect(await waitForFinal(server, cycle.deployments[0]!)).toMatchObject({ status: "succeeded", image: `${repo}:1.4.2` });
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.2@${sha(5)}`);
  });

  it("leaves a move to a newer tag that waits for approval alone, its own tag's new digest included, and moves once approved", async () => {
    const server = createTestServer();
    server.swarm.addService({
      name: "web",
      image: `${repo}:1.4.2@${sha(1)}`,
      labels: { "deployer.follow": "semver:patch", "deployer.approve": "required" },
    });
    publish(server, "1.4.3", sha(2));
    const [move] = (await push(server, { tag: "1.4.3", digest: sha(2) })).deployments;
    await expect.poll(() => server.store.getDeployment(move!.id).status).toBe("awaiting_approval");
    // A digest of its own tag would take it back from the move it waits to make, and the next cycle ask again.
    publish(server, "1.4.2", sha(5));
    for (let cycle = 0; cycle < 2; cycle++) expect((await server.poller.runOnce()).deployments).toEqual([]);
    expect(server.store.getDeployment(move!.id).status).toBe("awaiting_approval");
    const token = await server.tokens.signApiToken({ sub: "alice", scopes: ["deployments:write"] });
    const approved = await server.request(`/api/deployments/${move!.id}/approve`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(approved.status).toBe(200);
    expect((await waitForFinal(server, move!.id)).status).toBe("succeeded");
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.3@${sha(2)}`);
  });

  it("catches a missed webhook after SLEEP_TIME on the fake clock", async () => {
    const server = createTestServer({ SLEEP_TIME: "60" });
    server.swarm.addService({ name: "web", image: `${repo}:1.4.2@${sha(1)}`, labels: { "deployer.follow": "~1.4" } });
    publish(server, "1.4.2", sha(1));
    server.poller.start();
    await server.clock.sleepCount(1);
    publish(server, "1.4.3", sha(2));
    server.clock.advance(60_000);
    await server.clock.sleepCount(2);
    await server.deployer.idle();
    expect(await imageOf(server, "web")).toBe(`${repo}:1.4.3@${sha(2)}`);
    expect(server.registry.tagLists).toHaveLength(2);
  });
});
