/**
 * Audit and undo on the real swarm: three webhook deploys, a rollback by id
 * to the first digest, a push ignored (and recorded) while the service is
 * held, then resume and a push deployed again. One story, on a service and a
 * repository of its own.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker, freePort, uniqueName, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";

describeDocker(
  "deploy history, rollback and hold on a real swarm",
  () => {
    let env: E2eEnvironment;

    beforeAll(async () => {
      env = await createE2eEnvironment({ builds: { v0: {}, v1: {}, v2: {}, v3: {}, v4: {}, v5: {} } });
    });

    afterAll(async () => {
      await env?.close();
    });

    it("rolls back to v1 by id, ignores v4 while held, deploys v5 after resume", async () => {
      const name = uniqueName("hist");
      const port = await freePort();
      const repo = `${env.notifying.host}/reg/${name}:live`;
      const digests: Record<string, string> = {};
      const ids: Record<string, string> = {};

      // The service starts on v0, pushed before it existed; v1, v2 and v3 then arrive through the registry's notifications.
      digests.v0 = await env.publish("v0", repo);
      await env.createService(name, repo, port, "v0");
      for (const v of ["v1", "v2", "v3"]) {
        digests[v] = await env.publish(v, repo);
        const dep = await env.waitForDigest(name, digests[v]!, `the ${v} deployment`);
        expect(dep.status, JSON.stringify(dep.events, null, 1)).toBe("succeeded");
        ids[v] = dep.id;
      }
      expect(await env.answer(port)).toContain("version=v3");

      const history = await env.apiCall("GET", `/api/deployments?service=${name}&status=succeeded`);
      expect(history.status, history.text).toBe(200);
      // v0's own notification may reach the server after the service exists, and then deploys v0 too: not part of this story.
      const pushed = history.body.items.filter((d: { digest: string }) => d.digest !== digests.v0);
      expect(pushed.map((d: { id: string }) => d.id)).toEqual([ids.v3, ids.v2, ids.v1]);

      const rollback = await env.apiCall("POST", `/api/services/${name}/rollback`, { to: ids.v1 });
      expect(rollback.status, rollback.text).toBe(202);
      const rolled = await env.getDeployment(rollback.body.deployment.id);
      await waitFor(async () => !["queued", "running"].includes((await env.getDeployment(rolled.id)).status), {
        timeoutMs: 90_000,
        what: "the rollback to v1",
      });
      Object.assign(rolled, await env.getDeployment(rolled.id));
      expect(rolled).toMatchObject({ id: rollback.body.deployment.id, trigger: "rollback", status: "succeeded", digest: digests.v1 });
      expect(await env.serviceImage(name)).toBe(`${repo}@${digests.v1}`);
      await waitFor(async () => (await env.answer(port))?.includes("version=v1"), { timeoutMs: 30_000, what: "v1 answering after the rollback" });
      const services = await env.apiCall("GET", "/api/services");
      expect(services.body.items.find((s: { name: string }) => s.name === name)).toMatchObject({ held: true, digest: digests.v1 });

      digests.v4 = await env.publish("v4", repo);
      const ignored = await env.waitForDigest(name, digests.v4, "the v4 push while held", { acceptSkipped: true });
      expect(ignored.status).toBe("skipped");
      expect(ignored.message).toContain("held");
      expect(await env.serviceImage(name)).toBe(`${repo}@${digests.v1}`);

      const resumed = await env.apiCall("POST", `/api/services/${name}/resume`);
      expect(resumed.body).toEqual({ service: name, wasHeld: true });
      digests.v5 = await env.publish("v5", repo);
      const deployed = await env.waitForDigest(name, digests.v5, "the v5 deployment after resume");
      expect(deployed).toMatchObject({ status: "succeeded", digest: digests.v5, trigger: "registry" });
      expect(await env.serviceImage(name)).toBe(`${repo}@${digests.v5}`);
      expect(await env.answer(port)).toContain("version=v5");
    });
  },
  { timeout: 300_000 },
);
