/**
 * The Shepherd-compatible extras of the poller, in process: Apprise
 * notifications to a real HTTP receiver, UPDATE_OPTIONS on the update
 * request, and IMAGE_AUTOCLEAN_LIMIT on the fake node's images.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { RegistryError } from "../../server/registry/registry-port.js";
import { shellDate } from "../../server/notify/shepherd-texts.js";
import { deployThroughWebhook } from "../helpers/api-client.js";
import { startCallbackReceiver } from "../helpers/callback-receiver.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { freePortOnLoopback } from "../helpers/ports.js";
import { ROLLOUT_POLL_MS, createTestServer, sha, waitForFinal } from "../helpers/test-server.js";

const host = "127.0.0.1:5000";
const repo = `${host}/acme/web`;
const ref = (tag: string) => ({ registry: host, repository: "acme/web", tag });

async function appriseServer(env: Record<string, string> = {}) {
  const apprise = await startCallbackReceiver();
  onTestFinished(() => apprise.close());
  const clock = new FakeClock(Date.UTC(2023, 10, 7, 9, 2, 12), { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
  const server = createTestServer(
    { APPRISE_SIDECAR_URL: `127.0.0.1:${apprise.port}/notify`, HOSTNAME: "swarm-1", TZ: "America/New_York", ...env },
    { clock },
  );
  const quiet = async () => {
    await server.deployer.idle();
    await server.notifier!.flush();
  };
  return { apprise, server, quiet };
}

describe("Apprise notifications", () => {
  it("prints dates the way `date` does, in TZ", () => {
    expect(shellDate(Date.UTC(2023, 10, 7, 9, 2, 12), "America/New_York")).toBe("Tue Nov  7 04:02:12 EST 2023");
    expect(shellDate(Date.UTC(2024, 0, 15, 23, 59, 1), "UTC")).toBe("Mon Jan 15 23:59:01 UTC 2024");
  });

  it("sends one 'updated' per deployed digest with Shepherd's title, body and notify_type, not one per cycle", async () => {
    const { apprise, server, quiet } = await appriseServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    for (let i = 0; i < 3; i++) {
      await server.poller.runOnce();
      await quiet();
    }
    expect(apprise.received).toEqual([
      {
        path: "/notify",
        body: {
          title: "[Shepherd] Service web updated on swarm-1",
          body: `Tue Nov  7 04:02:12 EST 2023 Service web was updated from ${repo}:live@${sha(1)} to ${repo}:live@${sha(2)}`,
          notify_type: "success",
        },
      },
    ]);
  });

  it("sends one 'update failed' for a digest that failed, naming that digest and not the one rolled back to", async () => {
    const { apprise, server, quiet } = await appriseServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}`, failureAction: "rollback" });
    server.swarm.failImage(`${repo}:live@${sha(4)}`);
    server.registry.push(ref("live"), sha(4));
    for (let i = 0; i < 3; i++) {
      await server.poller.runOnce();
      await quiet();
    }
    expect(apprise.received.map((r) => r.body)).toEqual([
      {
        title: "[Shepherd] Service web update failed on swarm-1",
        body: `Tue Nov  7 04:02:12 EST 2023 Service web failed to update to ${repo}:live@${sha(4)}`,
        notify_type: "failure",
      },
    ]);
  });

  it("does not repeat a failure when the same digest fails again on the same service", async () => {
    // A registry that does not answer fails the deployment at once, as Shepherd's update would.
    const { apprise, server, quiet } = await appriseServer({ DEPLOYER_REGISTRY_RETRY: "0" });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.failWith(new RegistryError("unreachable", "down"));
    await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(5) });
    await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(5) });
    await quiet();
    expect(apprise.received.map((r) => r.body.title)).toEqual(["[Shepherd] Service web update failed on swarm-1"]);
  });

  it("sends 'image unavailable' once while the tag stays missing, and again after it came back and went missing again", async () => {
    const { apprise, server, quiet } = await appriseServer();
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    const missing = new RegistryError("not_found", "manifest unknown");
    server.registry.failTagWith(ref("live"), missing);
    for (let i = 0; i < 3; i++) await server.poller.runOnce();
    server.registry.failTagWith(ref("live"), undefined);
    server.registry.push(ref("live"), sha(1));
    await server.poller.runOnce();
    server.registry.failTagWith(ref("live"), missing);
    await server.poller.runOnce();
    await quiet();
    const expected = {
      title: "[Shepherd] Error updating service web",
      body: `Tue Nov  7 04:02:12 EST 2023 Service web Image ${repo}:live does not exist or it is not available`,
      notify_type: "failure",
    };
    expect(apprise.received.map((r) => r.body)).toEqual([expected, expected]);
  });

  it("logs and counts a sidecar that does not answer, and deploys all the same", async () => {
    const port = await freePortOnLoopback();
    const server = createTestServer({ APPRISE_SIDECAR_URL: `http://127.0.0.1:${port}/` });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    server.registry.push(ref("live"), sha(2));
    const { deployments } = await server.poller.runOnce();
    expect((await waitForFinal(server, deployments[0]!)).status).toBe("succeeded");
    await server.deployer.idle();
    await server.notifier!.flush();
    expect(await server.metrics.registry.getSingleMetricAsString("deployer_notifications_total")).toContain('event="updated",result="failed"} 1');
    expect(server.logLines.join("")).toContain("Apprise notification could not be delivered");
  });
});

describe("UPDATE_OPTIONS and ROLLBACK_OPTIONS", () => {
  it("lay their flags over the poller's update request; webhook deploys keep the service's own config", async () => {
    const server = createTestServer({ UPDATE_OPTIONS: "--update-parallelism 2 --update-delay 5s", ROLLBACK_OPTIONS: "--rollback-order start-first" });
    server.swarm.addService({ name: "web", image: `${repo}:live@${sha(1)}` });
    await deployThroughWebhook(server, { repository: "acme/web", tag: "live", digest: sha(2) });
    server.registry.push(ref("live"), sha(3));
    const { deployments } = await server.poller.runOnce();
    await waitForFinal(server, deployments[0]!);
    const [webhookCall, pollCall] = server.swarm.callsOf("updateService").map((args) => args[2]);
    expect(webhookCall).toEqual({ image: `${repo}:live@${sha(2)}`, registryAuth: undefined });
    expect(pollCall).toMatchObject({ updateConfig: { parallelism: 2, delayMs: 5000 }, rollbackConfig: { order: "start-first" } });
    expect((await server.swarm.findService("web"))?.updatePolicy).toMatchObject({ parallelism: 2, delayMs: 5000, monitorMs: 5000 });
  });
});

describe("IMAGE_AUTOCLEAN_LIMIT", () => {
  it("after a deploy, removes this repository's old images beyond the limit that no container uses", async () => {
    const server = createTestServer({ IMAGE_AUTOCLEAN_LIMIT: "2" });
    const old = (n: number) => ({ id: `sha256:${String(n).repeat(64)}`, references: [`${repo}:v${n}`], created: 1_700_000_000 + n });
    for (const n of [1, 2, 3]) server.swarm.addImage(old(n));
    server.swarm.addImage({ id: `sha256:${"9".repeat(64)}`, references: [`${host}/acme/other:v9`], created: 1_600_000_000 });
    server.swarm.addImage({ id: `sha256:${"8".repeat(64)}`, references: [`${repo}@${sha(8)}`], created: 1_800_000_000 });
    server.swarm.addService({ name: "web", image: `${repo}:v1` });
    server.registry.push(ref("v1"), sha(8));
    const { deployments } = await server.poller.runOnce();
    await waitForFinal(server, deployments[0]!);
    await server.deployer.idle();
    const left = (await server.swarm.listImages(repo)).map((i) => i.references[0]);
    // Kept: the new digest and v3 (the two newest), and v1, which the old task's container still uses.
    expect(left).toEqual([`${repo}@${sha(8)}`, `${repo}:v3`, `${repo}:v1`]);
    expect(await server.swarm.listImages(`${host}/acme/other`)).toHaveLength(1);
  });
});
