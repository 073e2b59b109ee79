/**
 * Audit and undo on the real swarm: three webhook deploys, a rollback by id
 * to the first digest, a push ignored (and recorded) while the service is
 * held, then resume and a push deployed again.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker, freePort, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";

describeDocker("deploy history, rollback and hold on a real swarm", () => {
  let env: E2eEnvironment;

  beforeAll(async () => {
    env = await createE2eEnvironment({ builds: { v1: {}, v2: {}, v3: {}, v4: {}, v5: {} } });
  });

  afterAll(async () => {
    await env?.close();
  });

  it("rolls back to v1 by id, ignores v4 while held, deploys v5 after resume", async () => {
    const name = `${env.id}-hist`;
    const port = await freePort();
    const repo = `${env.notifying.host}/reg/app:live`;
    const digests: Record<string, string> = {};
    const ids: Record<string, string> = {};

    digests.v1 = await env.publish("v1", repo);
    await env.createService(name, repo, port);
    let last: string | undefined;
    for (const v of ["v1", "v2", "v3"]) {
      // v1 is already what the service was created from; pushing it again re-triggers with the same digest, pinned now.
      if (v !== "v1") digests[v] = await env.publish(v, repo);
      else await env.publish("v1", repo);
      const dep = await env.waitForOutcome(name, last, `the ${v} deployment`);
      expect(dep.status, JSON.stringify(dep.events, null, 1)).toBe("succeeded");
      expect(dep.digest).toBe(digests[v]);
      ids[v] = dep.id;
      last = dep.id;
    }
    expect(await env.answer(port)).toContain("version=v3");

    const history = await env.apiCall("GET", `/api/deployments?service=${name}`);
    expect(history.status, history.text).toBe(200);
    expect(history.body.items.map((d: { id: string }) => d.id)).toEqual([ids.v3, ids.v2, ids.v1]);

    const rollback = await env.apiCall("POST", `/api/services/${name}/rollback`, { to: ids.v1 });
    expect(rollback.status, rollback.text).toBe(202);
    const rolled = await env.waitForOutcome(name, last, "the rollback to v1");
    expect(rolled).toMatchObject({ id: rollback.body.deployment.id, trigger: "rollback", status: "succeeded", digest: digests.v1 });
    expect(await env.serviceImage(name)).toBe(`${repo}@${digests.v1}`);
    await waitFor(async () => (await env.answer(port))?.includes("version=v1"), { timeoutMs: 30_000, what: "v1 answering after the rollback" });
    const services = await env.apiCall("GET", "/api/services");
    expect(services.body.items.find((s: { name: string }) => s.name === name)).toMatchObject({ held: true, digest: digests.v1 });

    digests.v4 = await env.publish("v4", repo);
    const ignored = await env.waitForOutcome(name, rolled.id, "the v4 push while held");
    expect(ignored.status).toBe("skipped");
    expect(ignored.message).toContain("held");
    expect(await env.serviceImage(name)).toBe(`${repo}@${digests.v1}`);

    const resumed = await env.apiCall("POST", `/api/services/${name}/resume`);
    expect(resumed.body).toEqual({ service: name, wasHeld: true });
    digests.v5 = await env.publish("v5", repo);
    const deployed = await env.waitForOutcome(name, ignored.id, "the v5 deployment after resume");
    expect(deployed).toMatchObject({ status: "succeeded", digest: digests.v5, trigger: "registry" });
    expect(await env.serviceImage(name)).toBe(`${repo}@${digests.v5}`);
    expect(await env.answer(port)).toContain("version=v5");
  });
}, { timeout: 300_000 });
