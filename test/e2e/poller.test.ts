/**
 * The Shepherd-compatible poller on the real swarm, against a real registry
 * that sends no notifications: the server finds pushes on its own every
 * SLEEP_TIME (2 s here), deploys them, rolls a failing image back once and
 * leaves it, notifies an Apprise receiver once per event, and leaves
 * filtered-out, ignored and unchanged services untouched. Last, a one-shot
 * RUN_ONCE_AND_EXIT process deploys and exits 0.
 *
 * The server and the registry are shared; each test pushes to a repository of
 * its own and runs its own services, so each can run alone (`-t`). Their names
 * are fixed before the server starts, because its ignore list is read once.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, onTestFinished } from "vitest";
import { startCallbackReceiver } from "../helpers/callback-receiver.js";
import { describeDocker, freePort, uniqueName, waitFor, type TestHealthcheck } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";
import { spawnServer } from "../helpers/server-process.js";

const SLEEP_SECONDS = 2;
const noHealthcheck: TestHealthcheck = { test: ["NONE"] };

describeDocker(
  "the polling fallback on a real swarm",
  () => {
    const prefix = uniqueName("poll");
    // In the shared server's filter (`<prefix>-in`): main, twin (same tag) and ignored; out of it: filtered.
    const servicesOf = (test: string) => ({
      main: `${prefix}-in-${test}-main`,
      twin: `${prefix}-in-${test}-twin`,
      ignored: `${prefix}-in-${test}-ignored`,
      filtered: `${prefix}-out-${test}`,
    });
    const withIgnored = ["still", "push"];
    let env: E2eEnvironment;
    let apprise: Awaited<ReturnType<typeof startCallbackReceiver>>;
    const shepherdEnv = () => ({
      DEPLOYER_POLL: "true",
      SLEEP_TIME: String(SLEEP_SECONDS),
      FILTER_SERVICES: `name=${prefix}-in`,
      IGNORELIST_SERVICES: withIgnored.map((t) => servicesOf(t).ignored).join(","),
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
    // The registry of these tests is the one without notifications: only the poller can see its pushes.
    const repoFor = (test: string) => `${env.hub.host}/poll/${uniqueName(test)}:live`;
    async function missedWebhooks(): Promise<number> {
      const metrics = await (await fetch(`${env.server.url}/metrics`)).text();
      const line = `deployer_missed_webhooks_total{registry="${env.hub.host}"} `;
      const found = metrics.split("\n").find((l) => l.startsWith(line));
      return found ? Number(found.slice(line.length)) : 0;
    }

    /** Creates the services on `image` side by side; returns their published ports. */
    async function servicesOn(
      image: string,
      names: string[],
      opts: { version?: string; healthcheck?: TestHealthcheck; restartCondition?: "none" | "on-failure" | "any" } = {},
    ) {
      const ports: Record<string, number> = {};
      for (const name of names) ports[name] = await freePort();
      await Promise.all(names.map((name) => env.createService(name, image, ports[name]!, opts.version ?? "v1", opts)));
      return ports;
    }

    it("leaves services whose tag did not move alone: no deployment, no update, Version.Index still", async () => {
      const names = servicesOf("still");
      const repo = repoFor("still");
      const v1 = await env.publish("v1", repo);
      await servicesOn(`${repo}@${v1}`, Object.values(names), { healthcheck: noHealthcheck });
      const before = Object.fromEntries(await Promise.all(Object.values(names).map(async (n) => [n, await version(n)])));
      await waitCycles(3);
      for (const name of Object.values(names)) {
        expect(await version(name), name).toBe(before[name]);
        expect(deploymentsOf(name), name).toBe(0);
      }
    });

    it("deploys a push within one cycle with trigger poll, marked missed_webhook, and never touches the ignored or filtered-out service", async () => {
      const names = servicesOf("push");
      const repo = repoFor("push");
      const v1 = await env.publish("v1", repo);
      const [ports] = await Promise.all([
        servicesOn(`${repo}@${v1}`, [names.main, names.twin]),
        servicesOn(`${repo}@${v1}`, [names.ignored, names.filtered], { healthcheck: noHealthcheck }),
      ]);
      const untouched = { ignored: await version(names.ignored), filtered: await version(names.filtered) };
      const missedBefore = await missedWebhooks();
      const v2 = await env.publish("v2", repo);
      const pushedAt = Date.now();
      const record = await env.waitForOutcome(names.main, undefined, "the poller's deployment of v2");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "poll", requestedBy: "poller", digest: v2 });
      expect(record.events[0]?.message).toContain("missed_webhook");
      const queuedAt = env.query<{ created_at: number }>("select created_at from deployments where id = ?", record.id)!.created_at;
      expect(queuedAt - pushedAt, "queued within one SLEEP_TIME plus a cycle").toBeLessThan(SLEEP_SECONDS * 1000 + 2000);
      expect((await env.waitForOutcome(names.twin, undefined, "the twin's deployment of v2")).status).toBe("succeeded");
      expect(await env.answer(ports[names.main]!)).toContain("version=v2");

      await waitCycles(2);
      expect({ ignored: await version(names.ignored), filtered: await version(names.filtered) }).toEqual(untouched);
      expect(await env.serviceImage(names.ignored)).toBe(`${repo}@${v1}`);
      expect(await env.serviceImage(names.filtered)).toBe(`${repo}@${v1}`);
      expect(deploymentsOf(names.ignored) + deploymentsOf(names.filtered)).toBe(0);
      expect(await missedWebhooks(), "one missed webhook for main, one for the twin").toBe(missedBefore + 2);
    });

    it("looks the shared tag up with one HEAD per cycle and never a manifest GET", async () => {
      const names = servicesOf("lookup");
      const repo = repoFor("lookup");
      const v1 = await env.publish("v1", repo);
      await servicesOn(`${repo}@${v1}`, [names.main, names.twin], { healthcheck: noHealthcheck });
      const from = cycles().length;
      await waitCycles(4);
      // Main and the twin run one tag: looked up once per cycle, with one HEAD.
      expect(
        cycles()
          .slice(from)
          .some((c) => c.lookups === 1 && (c.registryRequests as { head: number }).head === 1),
      ).toBe(true);
      // And no cycle of the server's life, these or any other test's, ever did more.
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
    });

    it("rolls a failing image back once and does not deploy it again in the cycles after", async () => {
      const names = servicesOf("bad");
      const repo = repoFor("bad");
      // Main and the twin start pinned to v2, as the poller's deployment of v2 leaves them: swarm rolls back to that spec.
      // Restarted on failure only: a restart of the unhealthy task that swarm stopped can hold the rollback up for a minute.
      const v2 = await env.publish("v2", repo);
      const ports = await servicesOn(`${repo}@${v2}`, [names.main, names.twin], { version: "v2", restartCondition: "on-failure" });
      const missedBefore = await missedWebhooks();
      const bad = await env.publish("bad", repo);
      const record = await env.waitForOutcome(names.main, undefined, "the poller's deployment of the failing image");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("rolled_back");
      expect(record.digest).toBe(bad);
      const twin = await env.waitForOutcome(names.twin, undefined, "the twin's rollback");
      expect(twin).toMatchObject({ status: "rolled_back", digest: bad });
      await waitFor(async () => (await env.answer(ports[names.main]!))?.includes("version=v2"), { timeoutMs: 30_000, what: "v2 answering again" });
      const settled = { count: deploymentsOf(names.main), version: await version(names.main) };
      await waitCycles(3);
      expect({ count: deploymentsOf(names.main), version: await version(names.main) }).toEqual(settled);
      expect(await env.serviceImage(names.main)).toBe(`${repo}@${v2}`);
      expect(await missedWebhooks(), "one missed webhook for main, one for the twin").toBe(missedBefore + 2);
    });

    it("sent the Apprise receiver exactly one notification per event, with Shepherd's fields", async () => {
      const names = servicesOf("notify");
      const repo = repoFor("notify");
      const v1 = await env.publish("v1", repo);
      await servicesOn(`${repo}@${v1}`, [names.main, names.twin], { restartCondition: "on-failure" });
      // Two events per service: the update to v2, then the failed update to the unhealthy build.
      const v2 = await env.publish("v2", repo);
      const updated = await Promise.all([names.main, names.twin].map((n) => env.waitForOutcome(n, undefined, `${n}'s deployment of v2`)));
      expect(updated.map((d) => d.status)).toEqual(["succeeded", "succeeded"]);
      const bad = await env.publish("bad", repo);
      const failed = await Promise.all(
        [names.main, names.twin].map((n, i) => env.waitForOutcome(n, updated[i]!.id, `${n}'s deployment of the failing image`)),
      );
      expect(failed.map((d) => d.status)).toEqual(["rolled_back", "rolled_back"]);

      const mine = () => apprise.received.filter((r) => [names.main, names.twin].some((n) => String(r.body.title).includes(`Service ${n} `)));
      await waitFor(async () => mine().length >= 4, { timeoutMs: 10_000, what: "four notifications" });
      await waitCycles(2);
      const byTitle = mine()
        .map((r) => r.body)
        .sort((a, b) => String(a.title).localeCompare(String(b.title)));
      expect(byTitle).toEqual([
        expect.objectContaining({ title: `[Shepherd] Service ${names.main} update failed on e2e-manager`, notify_type: "failure" }),
        expect.objectContaining({ title: `[Shepherd] Service ${names.main} updated on e2e-manager`, notify_type: "success" }),
        expect.objectContaining({ title: `[Shepherd] Service ${names.twin} update failed on e2e-manager`, notify_type: "failure" }),
        expect.objectContaining({ title: `[Shepherd] Service ${names.twin} updated on e2e-manager`, notify_type: "success" }),
      ]);
      const success = byTitle[1]!;
      expect(Object.keys(success).sort()).toEqual(["body", "notify_type", "title"]);
      expect(success.body).toMatch(
        new RegExp(`^\\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d UTC \\d{4} Service ${names.main} was updated from \\S+@${v1} to \\S+@${v2}$`),
      );
      expect(byTitle[0]!.body).toContain(`Service ${names.main} failed to update to ${repo}@${bad}`);
    });

    it("with RUN_ONCE_AND_EXIT runs one cycle, waits for its deployments and exits 0", async () => {
      // Out of the shared server's filter, so only the one-shot process (with a database of its own) touches them.
      const names = { main: `${prefix}-once-main`, twin: `${prefix}-once-twin` };
      const repo = repoFor("once");
      const v2 = await env.publish("v2", repo);
      await servicesOn(`${repo}@${v2}`, [names.main, names.twin], { version: "v2" });
      const v1 = await env.publish("v1", repo);
      const dir = mkdtempSync(join(tmpdir(), "deployer-once-"));
      const dbPath = join(dir, "deployer.db");
      const oneShot = spawnServer(
        {
          ...shepherdEnv(),
          FILTER_SERVICES: `name=${prefix}-once`,
          IGNORELIST_SERVICES: "",
          RUN_ONCE_AND_EXIT: "true",
          DEPLOYER_DB: dbPath,
          DEPLOYER_INSECURE_REGISTRIES: env.hub.host,
          TIMEOUT: "120",
          LOG_LEVEL: "debug",
        },
        await freePort(),
      );
      onTestFinished(async () => {
        await oneShot.stop();
        rmSync(dir, { recursive: true, force: true });
      });
      const code = await new Promise<number | null>((resolve) => oneShot.child.once("exit", resolve));
      expect(code, oneShot.stderr() + oneShot.stdout().slice(-3000)).toBe(0);
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      let done;
      try {
        const last = db.prepare("select id, status, trigger, digest from deployments where service = ? order by id desc limit 1");
        done = [names.main, names.twin].map((n) => last.get(n));
      } finally {
        db.close();
      }
      expect(done).toEqual([
        expect.objectContaining({ status: "succeeded", trigger: "poll", digest: v1 }),
        expect.objectContaining({ status: "succeeded", trigger: "poll", digest: v1 }),
      ]);
      expect(await env.serviceImage(names.main)).toBe(`${repo}@${v1}`);
      expect(oneShot.logs().filter((l) => l.msg === "poll cycle finished")).toHaveLength(1);
    });
  },
  { timeout: 300_000 },
);
