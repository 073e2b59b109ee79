/**
 * The deploy spine on the real engine: a real docker-registry sends real push
 * notifications to the server running as its own process, which resolves the
 * tag, updates a real swarm service to the pinned digest and follows the
 * rollout to its end. The Docker Hub path runs against a second registry that
 * stands in for Docker Hub (DEPLOYER_DOCKERHUB_REGISTRY), with a local
 * callback receiver.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTokenService } from "../../server/auth/tokens.js";
import { startCallbackReceiver } from "../helpers/callback-receiver.js";
import { createDockerClient, createTestService, describeDocker, freePort, removeService, startRegistry, uniqueName, waitFor, type TestRegistry } from "../helpers/docker-env.js";
import { buildAppImage, docker, pushImage, removeImages } from "../helpers/images.js";
import { startServerUnmanaged, type ServerProcess } from "../helpers/server-process.js";
import { dockerHubPush } from "../helpers/test-server.js";

const secret = "e2e-secret-e2e-secret-e2e-secret-e2e-secret";

describeDocker("deploy spine on a real swarm", () => {
  const dockerApi = createDockerClient();
  const id = uniqueName("spine");
  const dir = mkdtempSync(join(tmpdir(), "deployer-e2e-"));
  const tokens = createTokenService({ secret, dockerHubRegistry: "docker.io" });
  const images = { v1: `${id}-app:v1`, v2: `${id}-app:v2`, bad: `${id}-app:bad` };
  const cleanup: Array<() => Promise<unknown>> = [];
  let notifying: TestRegistry;
  let hub: TestRegistry;
  let server: ServerProcess;
  let callbacks: Awaited<ReturnType<typeof startCallbackReceiver>>;
  let apiToken: string;
  const digests: Record<string, string> = {};

  /** Tags a local build into a registry repository and pushes it; returns the pushed digest. */
  async function publish(local: string, target: string): Promise<string> {
    await docker(["tag", local, target]);
    cleanup.push(() => removeImages(target));
    return pushImage(target);
  }

  async function answer(port: number): Promise<string | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      return res.ok ? await res.text() : undefined;
    } catch {
      return undefined;
    }
  }

  async function serviceImage(name: string): Promise<string> {
    const info = (await dockerApi.getService(name).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Image: string } } } };
    return info.Spec.TaskTemplate.ContainerSpec.Image;
  }

  /** The newest deployment of a service, read from the server's own SQLite file. */
  function latestDeployment(service: string): { id: string; status: string } | undefined {
    const db = new Database(join(dir, "deployer.db"), { readonly: true, fileMustExist: true });
    try {
      return db.prepare("select id, status from deployments where service = ? order by id desc limit 1").get(service) as { id: string; status: string } | undefined;
    } finally {
      db.close();
    }
  }

  async function getDeployment(depId: string) {
    const res = await fetch(`${server.url}/api/deployments/${depId}`, { headers: { authorization: `Bearer ${apiToken}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as { status: string; digest: string; trigger: string; message: string; events: Array<{ status: string; message: string }> };
  }

  async function waitForOutcome(service: string, after: string | undefined, what: string) {
    return waitFor(
      async () => {
        const dep = latestDeployment(service);
        return dep && dep.id !== after && !["queued", "running"].includes(dep.status) ? dep : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what },
    );
  }

  async function createService(name: string, image: string, port: number) {
    await createTestService({
      name,
      image,
      publishedPort: port,
      updateConfig: { parallelism: 1, failureAction: "rollback", monitorMs: 3000, order: "stop-first" },
      rollbackConfig: { parallelism: 1, monitorMs: 1000, order: "stop-first" },
    });
    cleanup.push(() => removeService(name));
    await waitFor(async () => (await answer(port))?.includes("version=v1"), { timeoutMs: 60_000, what: `${name} answering v1` });
  }

  beforeAll(async () => {
    await buildAppImage({ tag: images.v1, version: "v1" });
    await buildAppImage({ tag: images.v2, version: "v2" });
    await buildAppImage({ tag: images.bad, version: "bad", healthy: false });
    cleanup.push(() => removeImages(images.v1, images.v2, images.bad));

    const serverPort = await freePort();
    const registryPort = await freePort();
    const notifyToken = await tokens.signWebhookToken({ sub: "local-registry", repos: [`127.0.0.1:${registryPort}/reg/*`] });
    notifying = await startRegistry({ port: registryPort, notify: { url: `http://127.0.0.1:${serverPort}/hooks/registry`, authorization: `Bearer ${notifyToken}` } });
    cleanup.push(() => notifying.stop());
    hub = await startRegistry();
    cleanup.push(() => hub.stop());
    callbacks = await startCallbackReceiver();
    cleanup.push(() => callbacks.close());

    server = await startServerUnmanaged(
      {
        DEPLOYER_DB: join(dir, "deployer.db"),
        DEPLOYER_SECRET: secret,
        DEPLOYER_INSECURE_REGISTRIES: `${notifying.host},${hub.host}`,
        DEPLOYER_DOCKERHUB_REGISTRY: hub.host,
        DEPLOYER_CALLBACK_HOSTS: callbacks.host,
        DEPLOYER_POLL: "false",
        TIMEOUT: "120",
        LOG_LEVEL: "debug",
      },
      serverPort,
    );
    cleanup.push(() => server.stop());
    apiToken = await tokens.signApiToken({ sub: "e2e", scopes: ["deployments:read"] });
  });

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it("rolls a service to the pushed digest through the registry's own notification", async () => {
    const name = `${id}-reg`;
    const port = await freePort();
    const repo = `${notifying.host}/reg/app:live`;
    digests.regV1 = await publish(images.v1, repo);
    await createService(name, repo, port);

    digests.regV2 = await publish(images.v2, repo);
    const dep = await waitForOutcome(name, undefined, "the deployment triggered by the v2 push");
    const record = await getDeployment(dep.id);
    expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
    expect(record).toMatchObject({ trigger: "registry", digest: digests.regV2 });
    expect(await serviceImage(name)).toBe(`${repo}@${digests.regV2}`);
    expect(await answer(port)).toContain("version=v2");
  });

  it("treats the registry redelivering the same event as a no-op", async () => {
    const name = `${id}-reg`;
    const db = new Database(join(dir, "deployer.db"), { readonly: true });
    const trigger = db.prepare("select event_key from triggers where kind = 'registry' order by id desc limit 1").get() as { event_key: string };
    const before = (db.prepare("select count(*) n from deployments").get() as { n: number }).n;
    db.close();
    const eventId = trigger.event_key.replace(/^registry:/, "");
    const repeated = {
      events: [
        {
          id: eventId,
          timestamp: new Date().toISOString(),
          action: "push",
          target: { mediaType: "application/vnd.docker.distribution.manifest.v2+json", digest: digests.regV2, size: 1, repository: "reg/app", tag: "live" },
          request: { host: notifying.host, method: "PUT" },
        },
      ],
    };
    const notifyToken = await tokens.signWebhookToken({ sub: "local-registry", repos: [`${notifying.host}/reg/*`] });
    const res = await fetch(`${server.url}/hooks/registry`, {
      method: "POST",
      headers: { authorization: `Bearer ${notifyToken}`, "content-type": "application/vnd.docker.distribution.events.v1+json" },
      body: JSON.stringify(repeated),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(202);
    expect(body).toEqual({ deployments: [], ignored: [expect.objectContaining({ reason: "duplicate" })] });
    const after = new Database(join(dir, "deployer.db"), { readonly: true });
    expect((after.prepare("select count(*) n from deployments").get() as { n: number }).n).toBe(before);
    after.close();
    expect(latestDeployment(name)?.status).toBe("succeeded");
  });

  it("deploys from a Docker Hub payload and calls back success", async () => {
    const name = `${id}-hub`;
    const port = await freePort();
    const repo = `${hub.host}/hub/app:live`;
    digests.hubV1 = await publish(images.v1, repo);
    await createService(name, repo, port);
    digests.hubV2 = await publish(images.v2, repo);

    const token = await tokens.signWebhookToken({ sub: "docker-hub", repos: ["hub/app"] });
    const res = await fetch(`${server.url}/hooks/dockerhub/${token}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(dockerHubPush({ repoName: "hub/app", tag: "live", pushedAt: 1800000001, callbackUrl: callbacks.url("/hub/1") })),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(202);
    expect(body.deployments).toHaveLength(1);
    const dep = await waitForOutcome(name, undefined, "the Docker Hub deployment of v2");
    const record = await getDeployment(dep.id);
    expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
    expect(record).toMatchObject({ trigger: "dockerhub", digest: digests.hubV2 });
    expect(await serviceImage(name)).toBe(`${repo}@${digests.hubV2}`);
    expect(await answer(port)).toContain("version=v2");
    await callbacks.waitForCount(1, 10_000);
    expect(callbacks.received[0]).toMatchObject({ path: "/hub/1", body: { state: "success", context: "deployer" } });
  });

  it("ends rolled_back when the new image's health check fails, with swarm back on v2 and a failure callback", async () => {
    const name = `${id}-hub`;
    const port = (await dockerApi.getService(name).inspect()).Endpoint.Ports[0].PublishedPort as number;
    const repo = `${hub.host}/hub/app:live`;
    const previous = latestDeployment(name)?.id;
    digests.hubBad = await publish(images.bad, repo);

    const token = await tokens.signWebhookToken({ sub: "docker-hub", repos: ["hub/*"] });
    const res = await fetch(`${server.url}/hooks/dockerhub/${token}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(dockerHubPush({ repoName: "hub/app", tag: "live", pushedAt: 1800000002, callbackUrl: callbacks.url("/hub/2") })),
    });
    expect(res.status).toBe(202);
    const dep = await waitForOutcome(name, previous, "the deployment of the unhealthy image");
    const record = await getDeployment(dep.id);
    expect(record.status, JSON.stringify(record.events, null, 1)).toBe("rolled_back");
    expect(record.digest).toBe(digests.hubBad);
    expect(record.message).toMatch(/rolled the update back/);
    expect(await serviceImage(name)).toBe(`${repo}@${digests.hubV2}`);
    await waitFor(async () => (await answer(port))?.includes("version=v2"), { timeoutMs: 30_000, what: "v2 answering again" });
    await callbacks.waitForCount(2, 10_000);
    expect(callbacks.received[1]).toMatchObject({ path: "/hub/2", body: { state: "failure" } });
  });
}, { timeout: 180_000 });
