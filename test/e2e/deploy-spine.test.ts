/**
 * The deploy spine on the real engine: a real docker-registry sends real push
 * notifications to the server running as its own process, which resolves the
 * tag, updates a real swarm service to the pinned digest and follows the
 * rollout to its end. The Docker Hub path runs against a second registry that
 * stands in for Docker Hub (DEPLOYER_DOCKERHUB_REGISTRY), with a local
 * callback receiver.
 *
 * The server, the registries, the builds and the callback receiver are shared;
 * each test pushes to a repository of its own, runs its own service and
 * callback path, and can run alone (`-t`).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker, freePort, uniqueName, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";
import { dockerHubPush } from "../helpers/test-server.js";

const registryPassword = "e2e-registry-password-do-not-log";
const noHealthcheck = { healthcheck: { test: ["NONE"] } };

describeDocker(
  "deploy spine on a real swarm",
  () => {
    let env: E2eEnvironment;

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

    async function postDockerHub(repoName: string, tokenRepos: string[], pushedAt: number, callbackPath: string) {
      const token = await env.tokens.signWebhookToken({ sub: "docker-hub", repos: tokenRepos });
      const res = await fetch(`${env.server.url}/hooks/dockerhub/${token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(dockerHubPush({ repoName, tag: "live", pushedAt, callbackUrl: env.callbacks.url(callbackPath) })),
      });
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(202);
      return body as { deployments: Array<{ id: string }> };
    }

    /** The Docker Hub callbacks this test's path received, once there are `n`. */
    async function callbacksTo(path: string, n: number) {
      return waitFor(
        async () => {
          const mine = env.callbacks.received.filter((r) => r.path === path);
          return mine.length >= n ? mine : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: `${n} callback(s) to ${path}` },
      );
    }

    /** A service on v1 from the notifying registry, then v2 pushed and deployed through the registry's notification. */
    async function deployedThroughNotification(prefix: string, opts: { healthcheck?: { test: string[] } } = {}) {
      const name = uniqueName(prefix);
      const port = await freePort();
      const repo = `${env.notifying.host}/reg/${name}:live`;
      await env.publish("v1", repo);
      await env.createService(name, repo, port, "v1", opts);
      const digest = await env.publish("v2", repo);
      const record = await env.waitForDigest(name, digest, "the deployment triggered by the v2 push");
      return { name, port, repo, digest, record };
    }

    it("rolls a service to the pushed digest through the registry's own notification", async () => {
      const { name, port, repo, digest, record } = await deployedThroughNotification("reg");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "registry", digest });
      expect(await env.serviceImage(name)).toBe(`${repo}@${digest}`);
      expect(await env.answer(port)).toContain("version=v2");
    });

    it("treats the registry redelivering the same event as a no-op", async () => {
      const { name, repo, digest, record } = await deployedThroughNotification("redeliver", noHealthcheck);
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      const trigger = env.query<{ event_key: string }>(
        "select t.event_key from triggers t join deployments d on d.trigger_id = t.id where d.id = ? and t.kind = 'registry'",
        record.id,
      )!;
      const before = env.query<{ n: number }>("select count(*) n from deployments")!.n;
      const repository = repo.slice(env.notifying.host.length + 1, -":live".length);
      const repeated = {
        events: [
          {
            // Stored scoped by the token that sent it (`jti:…|registry:<event id>`).
            id: /registry:(.+)$/.exec(trigger.event_key)![1],
            timestamp: new Date().toISOString(),
            action: "push",
            target: { mediaType: "application/vnd.docker.distribution.manifest.v2+json", digest, size: 1, repository, tag: "live" },
            request: { host: env.notifying.host, method: "PUT" },
          },
        ],
      };
      // With the token the registry is configured with: a redelivery comes from the same endpoint configuration.
      const res = await fetch(`${env.server.url}/hooks/registry`, {
        method: "POST",
        headers: { authorization: `Bearer ${env.notifyToken}`, "content-type": "application/vnd.docker.distribution.events.v1+json" },
        body: JSON.stringify(repeated),
      });
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(202);
      expect(body).toEqual({ deployments: [], ignored: [expect.objectContaining({ reason: "duplicate" })] });
      expect(env.query<{ n: number }>("select count(*) n from deployments")!.n).toBe(before);
      expect(env.query("select id from deployments where service = ? and digest = ? and status = 'succeeded'", name, digest)).toBeDefined();
      expect(await env.serviceImage(name)).toBe(`${repo}@${digest}`);
    });

    it("deploys from a Docker Hub payload and calls back success", async () => {
      const name = uniqueName("hub");
      const port = await freePort();
      const repo = `${env.hub.host}/hub/${name}:live`;
      await env.publish("v1", repo);
      await env.createService(name, repo, port);
      const v2 = await env.publish("v2", repo);

      const body = await postDockerHub(`hub/${name}`, [`hub/${name}`], 1800000001, `/${name}/1`);
      expect(body.deployments).toHaveLength(1);
      const record = await env.waitForOutcome(name, undefined, "the Docker Hub deployment of v2");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "dockerhub", digest: v2 });
      expect(await env.serviceImage(name)).toBe(`${repo}@${v2}`);
      expect(await env.answer(port)).toContain("version=v2");
      const [callback, ...more] = await callbacksTo(`/${name}/1`, 1);
      expect(callback).toMatchObject({ body: { state: "success", context: "deployer" } });
      expect(more).toEqual([]);
    });

    it("ends rolled_back when the new image's health check fails, with swarm back on v2 and a failure callback", async () => {
      const name = uniqueName("hub-bad");
      const port = await freePort();
      const repo = `${env.hub.host}/hub/${name}:live`;
      // The service starts pinned to v2, as a deployment of v2 leaves it: that spec is what swarm rolls back to.
      const v2 = await env.publish("v2", repo);
      // Restarted on failure only: a restart of the unhealthy task that swarm stopped can hold the rollback up for a minute.
      await env.createService(name, `${repo}@${v2}`, port, "v2", { restartCondition: "on-failure" });
      const bad = await env.publish("bad", repo);

      await postDockerHub(`hub/${name}`, ["hub/*"], 1800000002, `/${name}/2`);
      const record = await env.waitForOutcome(name, undefined, "the deployment of the unhealthy image");
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("rolled_back");
      expect(record.digest).toBe(bad);
      expect(record.message).toMatch(/rolled the update back/);
      expect(await env.serviceImage(name)).toBe(`${repo}@${v2}`);
      await waitFor(async () => (await env.answer(port))?.includes("version=v2"), { timeoutMs: 30_000, what: "v2 answering again" });
      const [callback, ...more] = await callbacksTo(`/${name}/2`, 1);
      expect(callback).toMatchObject({ body: { state: "failure" } });
      expect(more).toEqual([]);
    });

    it("never logs a token or the registry password", async () => {
      // A Docker Hub deployment of its own: the token in the URL, the credentials on the HEAD and handed to swarm.
      const name = uniqueName("hub-log");
      const port = await freePort();
      const repo = `${env.hub.host}/hub/${name}:live`;
      await env.publish("v1", repo);
      await env.createService(name, repo, port, "v1", noHealthcheck);
      const v2 = await env.publish("v2", repo);
      await postDockerHub(`hub/${name}`, [`hub/${name}`], 1800000003, `/${name}/3`);
      const record = await env.waitForOutcome(name, undefined, "the Docker Hub deployment of v2");
      expect(record).toMatchObject({ status: "succeeded", digest: v2 });
      await callbacksTo(`/${name}/3`, 1);

      const log = env.server.stdout() + env.server.stderr();
      expect(log).toContain("deployment finished");
      expect(log).not.toContain(registryPassword);
      expect(log).not.toContain(env.apiToken);
      expect(log).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
    });
  },
  { timeout: 180_000 },
);
