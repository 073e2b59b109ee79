/**
 * The Shepherd-compatible poller on the real swarm, against a real registry
 * that sends no notifications: the server finds pushes on its own every
 * SLEEP_TIME (2 s here), deploys them, rolls a failing image back once and
 * leaves it, notifies an Apprise receiver once per event, and leaves
 * filtered-out, ignored and unchanged services untouched. Last, a one-shot
 * RUN_ONCE_AND_EXIT process deploys and exits 0.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startCallbackReceiver } from "../helpers/callback-receiver.js";
import { describeDocker, freePort, uniqueName, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";
import { spawnServer } from "../helpers/server-process.js";

const SLEEP_SECONDS = 2;

describeDocker(
  "the polling fallback on a real swarm",
  () => {
    const prefix = uniqueName("poll");
    const names = { main: `${prefix}-in-main`, twin: `${prefix}-in-twin`, ignored: `${prefix}-in-ignored`, filtered: `${prefix}-out` };
    let env: E2eEnvironment;
    let apprise: Awaited<ReturnType<typeof startCallbackReceiver>>;
    let repo = "";
    const digests: Record<string, string> = {};
    const ports: Record<string, number> = {};
    const shepherdEnv = () => ({
      DEPLOYER_POLL: "true",
      SLEEP_TIME: String(SLEEP_SECONDS),
      FILTER_SERVICES: `name=${prefix}-in`,
      IGNORELIST_SERVICES: names.ignored,
      APPRISE_SIDECAR_URL: apprise.url("/notify"),
      HOSTNAME: "e2e-manager",
      TZ: "UTC",
    });

    beforeAll(async () => {
      apprise = await startCallbackReceiver();
      try {
        env = await createE2eEnvironment({ builds: { v1: {}, v2: {}, bad: { healthy: false } }, serverEnv: shepherdEnv() });
      } catch (err) {
        await apprise.close();
        throw err;
      }
    });

    afterAll(async () => {
      await env?.close();
      await apprise?.close();
    });

    const version = async (name: string) => ((await env.dockerApi.getService(name).inspect()) as { Version: { Index: number } }).Version.Index;
    const cycles = () => env.server.logs().filter((l) => l.msg === "poll cycle finished");
    const waitCycles = async (n: number) => {
      const target = cycles().length + n;
      await waitFor(async () => cycles().length >= target, { timeoutMs: 30_000, intervalMs: 100, what: `${n} more poll cycles` });
    };
    const deploymentsOf = (name: string) => env.query<{ n: number }>("select count(*) n from deployments where service = ?", name)!.n;

    it("leaves services whose tag did not move alone: no deployment, no update, Version.Index still", async () => {
      // The registry of this test is the one without notifications: only the poller can see its pushes.
      repo = `${env.hub.host}/poll/app:live`;
      digests.v1 = await env.publish("v1", repo);
      for (const name of Object.values(names)) {
        ports[name] = await freePort();
        await env.createService(name, `${repo}@${digests.v1}`, ports[name]!);
      }
      const before = Object.fromEntries(await Promise.all(Object.values(names).map(async (n) => [n, await version(n)])));
      await waitCycles(3);
      for (const name of Object.values(names)) {
        expect(await version(name), name).toBe(before[name]);
        expect(deploymentsOf(name), name).toBe(0);
      }
    });

    it("deploys a push within one cycle with trigger poll, marked missed_webhook, and never touches the ignored or filtered-out service", async () => {
      const untouched = { ignored: await version(names.ignored), filtered: await version(names.filtered) };
      digests.v2 = await env.publish("v2", repo);
      const pushedAt = Date.now();
      const record = await env.waitForOutcome(names.main, undefined, "the poller's deployment of v2");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "poll", requestedBy: "poller", digest: digests.v2 });
      expect(record.events[0]?.message).toContain("missed_webhook");
      const queuedAt = env.query<{ created_at: number }>("select created_at from deployments where id = ?", record.id)!.created_at;
      expect(queuedAt - pushedAt, "queued within one SLEEP_TIME plus a cycle").toBeLessThan(SLEEP_SECONDS * 1000 + 2000);
      expect((await env.waitForOutcome(names.twin, undefined, "the twin's deployment of v2")).status).toBe("succeeded");
      expect(await env.answer(ports[names.main]!)).toContain("version=v2");

      await waitCycles(2);
      expect({ ignored: await version(names.ignored), filtered: await version(names.filtered) }).toEqual(untouched);
      expect(await env.serviceImage(names.ignored)).toBe(`${repo}@${digests.v1}`);
      expect(await env.serviceImage(names.filtered)).toBe(`${repo}@${digests.v1}`);
      expect(deploymentsOf(names.ignored) + deploymentsOf(names.filtered)).toBe(0);
    });

    it("looks the shared tag up with one HEAD per cycle and never a manifest GET", async () => {
      const measured = cycles().map((c) => c.registryRequests as { head: number; get: number });
      expect(measured.length).toBeGreaterThan(3);
      expect(
        measured.every((r) => r.get === 0),
        JSON.stringify(measured),
      ).toBe(true);
      expect(
        measured.every((r) => r.head <= 1),
        JSON.stringify(measured),
      ).toBe(true);
      expect(cycles().some((c) => c.lookups === 1 && (c.registryRequests as { head: number }).head === 1)).toBe(true);
    });

    it("rolls a failing image back once and does not deploy it again in the cycles after", async () => {
      const previous = env.latestDeployment(names.main)?.id;
      digests.bad = await env.publish("bad", repo);
      const record = await env.waitForOutcome(names.main, previous, "the poller's deployment of the failing image");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("rolled_back");
      expect(record.digest).toBe(digests.bad);
      await env.waitForOutcome(
        names.twin,
        env.query<{ id: string }>("select id from deployments where service = ? and digest = ?", names.twin, digests.v2)!.id,
        "the twin's rollback",
      );
      await waitFor(async () => (await env.answer(ports[names.main]!))?.includes("version=v2"), { timeoutMs: 30_000, what: "v2 answering again" });
      const settled = { count: deploymentsOf(names.main), version: await version(names.main) };
      await waitCycles(3);
      expect({ count: deploymentsOf(names.main), version: await version(names.main) }).toEqual(settled);
      expect(await env.serviceImage(names.main)).toBe(`${repo}@${digests.v2}`);
      const metrics = await (await fetch(`${env.server.url}/metrics`)).text();
      expect(metrics).toContain(`deployer_missed_webhooks_total{registry="${env.hub.host}"} 4`);
    });

    it("sent the Apprise receiver exactly one notification per event, with Shepherd's fields", async () => {
      await waitFor(async () => apprise.received.length >= 4, { timeoutMs: 10_000, what: "four notifications" });
      await waitCycles(2);
      const byTitle = apprise.received.map((r) => r.body).sort((a, b) => String(a.title).localeCompare(String(b.title)));
      expect(byTitle).toEqual([
        expect.objectContaining({ title: `[Shepherd] Service ${names.main} update failed on e2e-manager`, notify_type: "failure" }),
        expect.objectContaining({ title: `[Shepherd] Service ${names.main} updated on e2e-manager`, notify_type: "success" }),
        expect.objectContaining({ title: `[Shepherd] Service ${names.twin} update failed on e2e-manager`, notify_type: "failure" }),
        expect.objectContaining({ title: `[Shepherd] Service ${names.twin} updated on e2e-manager`, notify_type: "success" }),
      ]);
      const updated = byTitle[1]!;
      expect(Object.keys(updated).sort()).toEqual(["body", "notify_type", "title"]);
      expect(updated.body).toMatch(
        new RegExp(
          `^\\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d UTC \\d{4} Service ${names.main} was updated from \\S+@${digests.v1} to \\S+@${digests.v2}$`,
        ),
      );
      expect(byTitle[0]!.body).toContain(`Service ${names.main} failed to update to ${repo}@${digests.bad}`);
    });

    it("with RUN_ONCE_AND_EXIT runs one cycle, waits for its deployments and exits 0", async () => {
      await env.server.stop();
      digests.v1again = await env.publish("v1", repo);
      const previous = env.latestDeployment(names.main)?.id;
      const oneShot = spawnServer(
        {
          ...shepherdEnv(),
          RUN_ONCE_AND_EXIT: "true",
          DEPLOYER_DB: env.dbPath,
          DEPLOYER_INSECURE_REGISTRIES: env.hub.host,
          TIMEOUT: "120",
          LOG_LEVEL: "debug",
        },
        await freePort(),
      );
      const code = await new Promise<number | null>((resolve) => oneShot.child.once("exit", resolve));
      expect(code, oneShot.stderr() + oneShot.stdout().slice(-3000)).toBe(0);
      const done = env.query<{ id: string; status: string; trigger: string }>(
        "select id, status, trigger from deployments where service = ? order by id desc limit 1",
        names.main,
      )!;
      expect(done.id).not.toBe(previous);
      expect(done).toMatchObject({ status: "succeeded", trigger: "poll" });
      expect(await env.serviceImage(names.main)).toBe(`${repo}@${digests.v1again}`);
      expect(oneShot.logs().filter((l) => l.msg === "poll cycle finished")).toHaveLength(1);
    });
  },
  { timeout: 300_000 },
);
