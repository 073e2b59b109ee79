import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, onTestFinished } from "vitest";
import { createTokenService } from "../../server/auth/tokens.js";
import { startCallbackReceiver } from "./callback-receiver.js";
import {
  createDockerClient,
  createTestService,
  freePort,
  removeService,
  startRegistry,
  uniqueName,
  waitFor,
  type TestHealthcheck,
  type TestRegistry,
} from "./docker-env.js";
import { buildAppImage, docker, pushImage, removeImages } from "./images.js";
import { startServerUnmanaged, type ServerProcess } from "./server-process.js";

const secret = "e2e-secret-e2e-secret-e2e-secret-e2e-secret";

/**
 * One end-to-end world: a docker-registry whose notifications go to the
 * deploy server (running as its own process), a second registry standing in
 * for Docker Hub, a callback receiver, and helpers to publish builds and
 * watch services. It is the expensive part a file's tests share (one
 * beforeAll); what a test publishes and the services it creates are its own
 * and are removed when that test ends, failed or not. Everything else it
 * starts is undone by `close()`.
 */
export async function createE2eEnvironment(opts: {
  builds: Record<string, { healthy?: boolean }>;
  serverEnv?: Record<string, string>;
  /** Also set this variable to the stand-in Docker Hub's host (e.g. REGISTRY_HOST for its credentials). */
  registryHostEnv?: string;
}) {
  const id = uniqueName("e2e");
  const dir = mkdtempSync(join(tmpdir(), "deployer-e2e-"));
  const dbPath = join(dir, "deployer.db");
  const cleanup: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const tokens = createTokenService({ secret, dockerHubRegistry: "docker.io" });
    const builds: Record<string, string> = {};
    for (const [version, b] of Object.entries(opts.builds)) {
      builds[version] = `${id}-app:${version}`;
      await buildAppImage({ tag: builds[version]!, version, healthy: b.healthy });
    }
    cleanup.push(() => removeImages(...Object.values(builds)));

    const serverPort = await freePort();
    const registryPort = await freePort();
    const notifyToken = await tokens.signWebhookToken({ sub: "local-registry", repos: [`127.0.0.1:${registryPort}/reg/*`] });
    const notifying = await startRegistry({
      port: registryPort,
      notify: { url: `http://127.0.0.1:${serverPort}/hooks/registry`, authorization: `Bearer ${notifyToken}` },
    });
    cleanup.push(() => notifying.stop());
    const hub = await startRegistry();
    cleanup.push(() => hub.stop());
    const callbacks = await startCallbackReceiver();
    cleanup.push(() => callbacks.close());
    const server = await startServerUnmanaged(
      {
        DEPLOYER_DB: dbPath,
        DEPLOYER_SECRET: secret,
        DEPLOYER_INSECURE_REGISTRIES: `${notifying.host},${hub.host}`,
        DEPLOYER_DOCKERHUB_REGISTRY: hub.host,
        DEPLOYER_CALLBACK_HOSTS: callbacks.host,
        DEPLOYER_POLL: "false",
        TIMEOUT: "120",
        LOG_LEVEL: "debug",
        ...opts.serverEnv,
        ...(opts.registryHostEnv ? { [opts.registryHostEnv]: hub.host } : {}),
      },
      serverPort,
    );
    cleanup.push(() => server.stop());
    const apiToken = await tokens.signApiToken({ sub: "e2e-operator", scopes: ["deployments:read", "deployments:write"] });
    return new E2eEnvironment(id, dbPath, tokens, builds, notifying, notifyToken, hub, callbacks, server, apiToken, close);
  } catch (err) {
    await close();
    throw err;
  }
}

export class E2eEnvironment {
  readonly dockerApi = createDockerClient();

  constructor(
    readonly id: string,
    readonly dbPath: string,
    readonly tokens: ReturnType<typeof createTokenService>,
    readonly builds: Record<string, string>,
    readonly notifying: TestRegistry,
    /** The webhook token the notifying registry sends: its redeliveries carry it, as every delivery does. */
    readonly notifyToken: string,
    readonly hub: TestRegistry,
    readonly callbacks: Awaited<ReturnType<typeof startCallbackReceiver>>,
    readonly server: ServerProcess,
    readonly apiToken: string,
    readonly close: () => Promise<void>,
  ) {}

  /** Tags a build into a registry repository and pushes it; returns the pushed digest. The local tag goes when the test ends. */
  async publish(version: string, target: string): Promise<string> {
    onTestFinished(() => removeImages(target));
    await docker(["tag", this.builds[version]!, target]);
    return pushImage(target);
  }

  /** What the app on a published port answers, or undefined when nothing does. */
  async answer(port: number): Promise<string | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      return res.ok ? await res.text() : undefined;
    } catch {
      return undefined;
    }
  }

  async serviceImage(name: string): Promise<string> {
    const info = (await this.dockerApi.getService(name).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Image: string } } } };
    return info.Spec.TaskTemplate.ContainerSpec.Image;
  }

  /**
   * A single-replica app service on a host-mode port that rolls back on
   * failure; waits until it answers `version`. It is removed when the test
   * that created it ends, failed or not. `healthcheck: { test: ["NONE"] }`
   * spares the image's one-second probe where the story is not about health.
   */
  async createService(
    name: string,
    image: string,
    port: number,
    version = "v1",
    opts: { healthcheck?: TestHealthcheck; restartCondition?: "none" | "on-failure" | "any" } = {},
  ) {
    onTestFinished(() => removeService(name));
    await createTestService({
      name,
      image,
      publishedPort: port,
      healthcheck: opts.healthcheck,
      restartCondition: opts.restartCondition,
      updateConfig: { parallelism: 1, failureAction: "rollback", monitorMs: 3000, order: "stop-first" },
      rollbackConfig: { parallelism: 1, monitorMs: 1000, order: "stop-first" },
    });
    await waitFor(async () => (await this.answer(port))?.includes(`version=${version}`), { timeoutMs: 60_000, what: `${name} answering ${version}` });
  }

  /** Reads the server's own SQLite file (WAL lets us read while it writes). */
  query<T>(sql: string, ...params: unknown[]): T | undefined {
    return this.queryAll<T>(sql, ...params)[0];
  }

  queryAll<T>(sql: string, ...params: unknown[]): T[] {
    const db = new Database(this.dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  }

  /** Runs a wait; when it times out, the error lists the service's deployments, so a failure says what did happen. */
  private async explained<T>(service: string, wait: () => Promise<T>): Promise<T> {
    try {
      return await wait();
    } catch (err) {
      const rows = this.queryAll<{
        id: string;
        status: string;
        trigger: string;
        digest: string | null;
        digest_hint: string | null;
        message: string | null;
      }>("select id, status, trigger, digest, digest_hint, message from deployments where service = ? order by id", service);
      const listed = rows
        .map((d) => `  ${d.id} ${d.trigger} ${d.status} ${d.digest ?? "-"} (hint ${d.digest_hint ?? "-"}) ${d.message ?? ""}`)
        .join("\n");
      throw new Error(`${(err as Error).message}; deployments of ${service}:\n${listed || "  none"}`, { cause: err });
    }
  }

  latestDeployment(service: string) {
    return this.query<{ id: string; status: string }>("select id, status from deployments where service = ? order by id desc limit 1", service);
  }

  async apiCall(method: string, path: string, json?: unknown) {
    const res = await fetch(`${this.server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.apiToken}`, ...(json === undefined ? {} : { "content-type": "application/json" }) },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const text = await res.text();
    return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
  }

  async getDeployment(depId: string) {
    const res = await this.apiCall("GET", `/api/deployments/${depId}`);
    expect(res.status, res.text).toBe(200);
    return res.body as {
      id: string;
      status: string;
      digest: string;
      trigger: string;
      requestedBy: string;
      message: string;
      events: Array<{ at: string; status: string; message: string }>;
    };
  }

  /**
   * Waits for the deployment of `digest` on `service` to end. A registry may
   * announce one push twice; the second is rightly skipped as "already being
   * deployed", so a skip counts only when `acceptSkipped` (e.g. while held).
   */
  async waitForDigest(service: string, digest: string, what: string, opts: { acceptSkipped?: boolean } = {}) {
    const finals = opts.acceptSkipped ? "'succeeded','failed','rolled_back','skipped'" : "'succeeded','failed','rolled_back'";
    const dep = await this.explained(service, () =>
      waitFor(
        async () =>
          this.query<{ id: string }>(
            `select id from deployments where service = ? and coalesce(digest, digest_hint) = ? and status in (${finals}) order by id desc limit 1`,
            service,
            digest,
          ),
        { timeoutMs: 90_000, intervalMs: 250, what },
      ),
    );
    return this.getDeployment(dep.id);
  }

  /** Waits for the deployment `id` (e.g. from a webhook's answer) to reach a final status. */
  async waitForDeployment(id: string, what: string) {
    await waitFor(
      async () =>
        !["queued", "running"].includes(this.query<{ status: string }>("select status from deployments where id = ?", id)?.status ?? "queued"),
      {
        timeoutMs: 90_000,
        intervalMs: 250,
        what,
      },
    );
    return this.getDeployment(id);
  }

  /** Waits for a deployment of `service` newer than `after` to reach a final status. */
  async waitForOutcome(service: string, after: string | undefined, what: string) {
    const dep = await this.explained(service, () =>
      waitFor(
        async () => {
          const d = this.latestDeployment(service);
          return d && d.id !== after && !["queued", "running"].includes(d.status) ? d : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 250, what },
      ),
    );
    return this.getDeployment(dep.id);
  }
}
