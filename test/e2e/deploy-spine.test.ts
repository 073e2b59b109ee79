/**
 * The deploy spine on the real engine: a real docker-registry sends real push
 * notifications to the server running as its own process, which resolves the
 * tag, updates a real swarm service to the pinned digest and follows the
 * rollout to its end. The Docker Hub path runs against a second registry that
 * stands in for Docker Hub (DEPLOYER_DOCKERHUB_REGISTRY), with a local
 * callback receiver.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker, freePort, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";
import { dockerHubPush } from "../helpers/test-server.js";

const registryPassword = "e2e-registry-password-do-not-log";

describeDocker(
  "deploy spine on a real swarm",
  () => {
    let env: E2eEnvironment;
    const digests: Record<string, string> = {};

    beforeAll(async () => {
      // Credentials for the stand-in Docker Hub, passed to swarm too: the point is that they never reach a log line.
      env = await createE2eEnvironment({
        builds: { v1: {}, v2: {}, bad: { healthy: false } },
        serverEnv: { REGISTRY_USER: "e2e-user", REGISTRY_PASSWORD: registryPassword, WITH_REGISTRY_AUTH: "true" },
        registryHostEnv: "REGISTRY_HOST",
      });
    });

    afterAll(async () => {
      await env?.close();
    });

    async function postDockerHub(repos: string[], pushedAt: number, callbackPath: string) {
      const token = await env.tokens.signWebhookToken({ sub: "docker-hub", repos });
      const res = await fetch(`${env.server.url}/hooks/dockerhub/${token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(dockerHubPush({ repoName: "hub/app", tag: "live", pushedAt, callbackUrl: env.callbacks.url(callbackPath) })),
      });
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(202);
      return body as { deployments: Array<{ id: string }> };
    }

    it("rolls a service to the pushed digest through the registry's own notification", async () => {
      const name = `${env.id}-reg`;
      const port = await freePort();
      const repo = `${env.notifying.host}/reg/app:live`;
      digests.regV1 = await env.publish("v1", repo);
      await env.createService(name, repo, port);

      digests.regV2 = await env.publish("v2", repo);
      const record = await env.waitForDigest(name, digests.regV2, "the deployment triggered by the v2 push");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "registry", digest: digests.regV2 });
      expect(await env.serviceImage(name)).toBe(`${repo}@${digests.regV2}`);
      expect(await env.answer(port)).toContain("version=v2");
    });

    it("treats the registry redelivering the same event as a no-op", async () => {
      const name = `${env.id}-reg`;
      const trigger = env.query<{ event_key: string }>("select event_key from triggers where kind = 'registry' order by id desc limit 1")!;
      const before = env.query<{ n: number }>("select count(*) n from deployments")!.n;
      const repeated = {
        events: [
          {
            id: trigger.event_key.replace(/^registry:/, ""),
            timestamp: new Date().toISOString(),
            action: "push",
            target: {
              mediaType: "application/vnd.docker.distribution.manifest.v2+json",
              digest: digests.regV2,
              size: 1,
              repository: "reg/app",
              tag: "live",
            },
            request: { host: env.notifying.host, method: "PUT" },
          },
        ],
      };
      const notifyToken = await env.tokens.signWebhookToken({ sub: "local-registry", repos: [`${env.notifying.host}/reg/*`] });
      const res = await fetch(`${env.server.url}/hooks/registry`, {
        method: "POST",
        headers: { authorization: `Bearer ${notifyToken}`, "content-type": "application/vnd.docker.distribution.events.v1+json" },
        body: JSON.stringify(repeated),
      });
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(202);
      expect(body).toEqual({ deployments: [], ignored: [expect.objectContaining({ reason: "duplicate" })] });
      expect(env.query<{ n: number }>("select count(*) n from deployments")!.n).toBe(before);
      expect(env.query("select id from deployments where service = ? and digest = ? and status = 'succeeded'", name, digests.regV2)).toBeDefined();
    });

    it("deploys from a Docker Hub payload and calls back success", async () => {
      const name = `${env.id}-hub`;
      const port = await freePort();
      const repo = `${env.hub.host}/hub/app:live`;
      digests.hubV1 = await env.publish("v1", repo);
      await env.createService(name, repo, port);
      digests.hubV2 = await env.publish("v2", repo);

      const body = await postDockerHub(["hub/app"], 1800000001, "/hub/1");
      expect(body.deployments).toHaveLength(1);
      const record = await env.waitForOutcome(name, undefined, "the Docker Hub deployment of v2");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "dockerhub", digest: digests.hubV2 });
      expect(await env.serviceImage(name)).toBe(`${repo}@${digests.hubV2}`);
      expect(await env.answer(port)).toContain("version=v2");
      await env.callbacks.waitForCount(1, 10_000);
      expect(env.callbacks.received[0]).toMatchObject({ path: "/hub/1", body: { state: "success", context: "deployer" } });
    });

    it("ends rolled_back when the new image's health check fails, with swarm back on v2 and a failure callback", async () => {
      const name = `${env.id}-hub`;
      const port = (await env.dockerApi.getService(name).inspect()).Endpoint.Ports[0].PublishedPort as number;
      const repo = `${env.hub.host}/hub/app:live`;
      const previous = env.latestDeployment(name)?.id;
      digests.hubBad = await env.publish("bad", repo);

      await postDockerHub(["hub/*"], 1800000002, "/hub/2");
      const record = await env.waitForOutcome(name, previous, "the deployment of the unhealthy image");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("rolled_back");
      expect(record.digest).toBe(digests.hubBad);
      expect(record.message).toMatch(/rolled the update back/);
      expect(await env.serviceImage(name)).toBe(`${repo}@${digests.hubV2}`);
      await waitFor(async () => (await env.answer(port))?.includes("version=v2"), { timeoutMs: 30_000, what: "v2 answering again" });
      await env.callbacks.waitForCount(2, 10_000);
      expect(env.callbacks.received[1]).toMatchObject({ path: "/hub/2", body: { state: "failure" } });
    });

    it("never logs a token or the registry password", async () => {
      const log = env.server.stdout() + env.server.stderr();
      expect(log).toContain("deployment finished");
      expect(log).not.toContain(registryPassword);
      expect(log).not.toContain(env.apiToken);
      expect(log).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
    });
  },
  { timeout: 180_000 },
);
