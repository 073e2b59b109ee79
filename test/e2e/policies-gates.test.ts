/**
 * Deploy gates on the real swarm, with the real registry's notifications: a
 * service that requires approval waits, is approved through the API and
 * deploys; a service whose deploy window opens at the next minute waits in
 * `scheduled` and deploys when it opens. Each story has its own service and
 * repository.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker, freePort, removeService, waitFor, createTestService } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";

describeDocker(
  "deploy gates on a real swarm: approval, deploy window",
  () => {
    let env: E2eEnvironment;
    const services: string[] = [];

    beforeAll(async () => {
      env = await createE2eEnvironment({ builds: { v1: {}, v2: {} } });
    });

    afterAll(async () => {
      for (const name of services) await removeService(name);
      await env?.close();
    });

    type Row = { id: string; status: string; digest: string | null; wait_until: number | null; update_sent_at: number | null };
    const latest = (service: string) =>
      env.query<Row>("select id, status, digest, wait_until, update_sent_at from deployments where service = ? order by id desc limit 1", service);

    async function serviceOn(story: string, labels: Record<string, string>) {
      const repo = `${env.notifying.host}/reg/${story}`;
      const name = `${env.id}-${story}`;
      const port = await freePort();
      const v1 = await env.publish("v1", `${repo}:live`);
      services.push(name);
      await createTestService({ name, image: `${repo}:live@${v1}`, publishedPort: port, labels });
      await waitFor(async () => (await env.answer(port))?.includes("version=v1"), { timeoutMs: 60_000, what: `${name} answering v1` });
      return { repo, name, port, v1 };
    }

    it("holds a push for approval, deploys it once approved, and refuses a second approval", async () => {
      const { repo, name, port, v1 } = await serviceOn("approve", { "deployer.approve": "required" });
      const v2 = await env.publish("v2", `${repo}:live`);
      const waiting = await waitFor(async () => (latest(name)?.status === "awaiting_approval" ? latest(name) : undefined), {
        timeoutMs: 30_000,
        what: "the push's deployment awaiting approval",
      });
      expect(waiting.digest).toBe(v2);
      expect(await env.serviceImage(name), "untouched while it waits").toBe(`${repo}:live@${v1}`);
      expect(await env.answer(port)).toContain("version=v1");

      const approved = await env.apiCall("POST", `/api/deployments/${waiting.id}/approve`);
      expect(approved.status, approved.text).toBe(200);
      expect((await env.apiCall("POST", `/api/deployments/${waiting.id}/approve`)).status).toBe(409);
      const done = await waitFor(async () => (latest(name)?.status === "succeeded" ? latest(name) : undefined), {
        timeoutMs: 60_000,
        what: "the approved deployment to succeed",
      });
      expect(done.id).toBe(waiting.id);
      expect(await env.serviceImage(name)).toBe(`${repo}:live@${v2}`);
      await waitFor(async () => (await env.answer(port))?.includes("version=v2"), { timeoutMs: 60_000, what: `${name} answering v2` });
      const record = await env.getDeployment(waiting.id);
      expect(record.events.map((e) => e.message)).toContain("approved by e2e-operator; queued");
    });

    it("schedules a push outside its deploy window and deploys it when the window opens", async () => {
      // A window that opens at the next minute (or the one after, if that is too close to push before it).
      const now = Date.now();
      let opens = Math.ceil(now / 60_000) * 60_000;
      if (opens - now < 15_000) opens += 60_000;
      const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
      const window = `daily ${hhmm(opens)}-${hhmm(opens + 10 * 60_000)} UTC`;
      const { repo, name } = await serviceOn("window", { "deployer.window": window });
      if (Date.now() >= opens) return expect.fail(`the window ${window} opened while the service was being created; the test needs it still closed`);
      const v2 = await env.publish("v2", `${repo}:live`);
      const scheduled = await waitFor(async () => (latest(name)?.status === "scheduled" ? latest(name) : undefined), {
        timeoutMs: 30_000,
        what: "the push's deployment scheduled",
      });
      expect(scheduled.wait_until).toBe(opens);
      const done = await waitFor(async () => (latest(name)?.status === "succeeded" ? latest(name) : undefined), {
        timeoutMs: 150_000,
        intervalMs: 500,
        what: `the scheduled deployment to succeed once ${window} opens`,
      });
      expect(done.id).toBe(scheduled.id);
      expect(done.update_sent_at).toBeGreaterThanOrEqual(opens);
      expect(await env.serviceImage(name)).toBe(`${repo}:live@${v2}`);
    });
  },
  { timeout: 300_000 },
);
