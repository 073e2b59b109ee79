/**
 * deployer.follow and drift on the real swarm, against the real registry
 * whose notifications reach the server: a `semver:minor` service moves from
 * 1.4.2 to 1.4.3 on a push of 1.4.3 and ignores 2.0.0 and 1.3.9; a
 * `docker service update --image` by hand shows up in the history as
 * `external` within a second, is left alone, and a later push deploys as usual.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestService, describeDocker, freePort, removeService, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";
import { docker } from "../helpers/images.js";

describeDocker(
  "deploy policies on a real swarm: follow versions, drift",
  () => {
    let env: E2eEnvironment;
    let repo = "";
    let name = "";
    let port = 0;
    const digests: Record<string, string> = {};

    beforeAll(async () => {
      env = await createE2eEnvironment({ builds: { v1: {}, v2: {}, v3: {}, v4: {}, v5: {} } });
      repo = `${env.notifying.host}/reg/follow`;
      name = `${env.id}-follow`;
      port = await freePort();
    });

    afterAll(async () => {
      if (name) await removeService(name);
      await env?.close();
    });

    const deploymentsOf = () => env.query<{ n: number }>("select count(*) n from deployments where service = ?", name)!.n;
    const pushesSeen = (...ds: string[]) =>
      env.query<{ n: number }>(`select count(*) n from triggers where digest_hint in (${ds.map(() => "?").join(",")})`, ...ds)!.n;

    // One story: each step stands on the one before (the service moves, then is changed by hand, then moves again).
    it("follows semver:minor (1.4.2 -> 1.4.3, not 2.0.0 or 1.3.9), records a change by hand as external, then deploys as usual", async () => {
      // Moves a semver:minor service from 1.4.2 to 1.4.3 on a push of 1.4.3, rewriting its tag.
      digests["1.4.2"] = await env.publish("v1", `${repo}:1.4.2`);
      await createTestService({
        name,
        image: `${repo}:1.4.2@${digests["1.4.2"]}`,
        publishedPort: port,
        labels: { "deployer.follow": "semver:minor" },
        updateConfig: { parallelism: 1, failureAction: "rollback", monitorMs: 2000, order: "stop-first" },
      });
      await waitFor(async () => (await env.answer(port))?.includes("version=v1"), { timeoutMs: 60_000, what: `${name} answering v1` });

      digests["1.4.3"] = await env.publish("v2", `${repo}:1.4.3`);
      const record = await env.waitForDigest(name, digests["1.4.3"], "the deployment of 1.4.3");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "registry", digest: digests["1.4.3"] });
      expect(await env.serviceImage(name)).toBe(`${repo}:1.4.3@${digests["1.4.3"]}`);
      expect(await env.answer(port)).toContain("version=v2");

      // Ignores pushes of 2.0.0 and 1.3.9.
      const before = deploymentsOf();
      digests["2.0.0"] = await env.publish("v3", `${repo}:2.0.0`);
      digests["1.3.9"] = await env.publish("v4", `${repo}:1.3.9`);
      await waitFor(async () => pushesSeen(digests["2.0.0"]!) >= 1 && pushesSeen(digests["1.3.9"]!) >= 1, {
        timeoutMs: 30_000,
        what: "the server to receive the pushes of 2.0.0 and 1.3.9",
      });
      expect(deploymentsOf()).toBe(before);
      expect(await env.serviceImage(name)).toBe(`${repo}:1.4.3@${digests["1.4.3"]}`);

      // A `docker service update --image` by hand shows as external in the history (it follows the engine's event stream), and is left alone.
      const byHand = `${repo}:1.4.2@${digests["1.4.2"]}`;
      await docker(["service", "update", "--detach", "--image", byHand, name]);
      const external = await waitFor(
        async () => env.query<{ id: string }>("select id from deployments where service = ? and trigger = 'external' order by id desc limit 1", name),
        { timeoutMs: 10_000, intervalMs: 50, what: "an external deployment in the history" },
      );
      const listed = await env.apiCall("GET", `/api/deployments?service=${name}&trigger=external`);
      expect(listed.status, listed.text).toBe(200);
      expect(listed.body.items[0]).toMatchObject({ id: external.id, trigger: "external", status: "succeeded", digest: digests["1.4.2"] });
      const drift = await env.getDeployment(external.id);
      expect(drift.events[0]?.message).toContain(`-> ${byHand}`);
      await waitFor(async () => (await env.answer(port))?.includes("version=v1"), { timeoutMs: 60_000, what: `${name} answering v1 again` });
      expect(await env.serviceImage(name), "the server does not fight it").toBe(byHand);

      // A later push deploys as usual.
      digests["1.4.4"] = await env.publish("v5", `${repo}:1.4.4`);
      const later = await env.waitForDigest(name, digests["1.4.4"], "the deployment of 1.4.4");
      expect(later.status, JSON.stringify(later.events, null, 1)).toBe("succeeded");
      expect(await env.serviceImage(name)).toBe(`${repo}:1.4.4@${digests["1.4.4"]}`);
      expect(env.query<{ n: number }>("select count(*) n from deployments where service = ? and trigger = 'external'", name)!.n).toBe(1);
    });
  },
  { timeout: 300_000 },
);
