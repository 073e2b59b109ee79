/**
 * The deploy server on a swarm of more than one node (test/helpers/multi-node-swarm.ts):
 * a manager and a worker, each its own dockerd in its own network namespace,
 * a registry on their bridge that both pull from, and the server as a process
 * on this machine talking to the manager's socket. The swarm, the registry,
 * the builds and the server are shared by the file's tests, which run one
 * after another; each test has services and repositories of its own.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { createTokenService } from "../../server/auth/tokens.js";
import { describeDocker, freePort, uniqueName, waitFor, type TestRegistry } from "../helpers/docker-env.js";
import { buildAppImage, removeImages, runCommand } from "../helpers/images.js";
import { startMultiNodeSwarm, type MultiNodeSwarm } from "../helpers/multi-node-swarm.js";
import { createSpreadService, runningOn, taskTable, tasksOf } from "../helpers/multi-node-world.js";
import { startServer, startServerUnmanaged, type ServerProcess } from "../helpers/server-process.js";

const secret = "multi-node-secret-multi-node-secret-0123";
const registryUser = "multi-node-user";
const registryPassword = "multi-node-password-never-logged";

type Detail = { id: string; status: string; digest: string; message: string; events: Array<{ at: string; message: string }> };

describeDocker(
  "the deploy server on a multi-node swarm",
  () => {
    const id = uniqueName("mn");
    const dir = mkdtempSync(join(tmpdir(), "deployer-multi-node-"));
    const dbPath = join(dir, "deployer.db");
    const tokens = createTokenService({ secret, dockerHubRegistry: "docker.io" });
    const builds = { v1: `${id}-app:v1`, v2: `${id}-app:v2`, v3: `${id}-app:v3` };
    let swarm: MultiNodeSwarm;
    let server: ServerProcess;
    let apiToken: string;
    let baseEnv: Record<string, string>;

    beforeAll(async () => {
      for (const [version, tag] of Object.entries(builds)) await buildAppImage({ tag, version });
      const serverPort = await freePort();
      // The registry listens on the bridge; its notifications reach the server on 127.0.0.1.
      swarm = await startMultiNodeSwarm({
        workers: 1,
        heartbeat: "1s",
        registry: async (host) => ({
          notify: {
            url: `http://127.0.0.1:${serverPort}/hooks/registry`,
            authorization: `Bearer ${await tokens.signWebhookToken({ sub: "bridge-registry", repos: [`${host}/mn/*`] })}`,
          },
        }),
      });
      await swarm.loadImages(Object.values(builds));
      apiToken = await tokens.signApiToken({ sub: "multi-node", scopes: ["deployments:read", "deployments:write"] });
      baseEnv = {
        DEPLOYER_DB: dbPath,
        DEPLOYER_SECRET: secret,
        DOCKER_HOST: `unix://${swarm.manager.socket}`,
        DEPLOYER_POLL: "false",
        // Long enough for a rollout of two tasks on two cores; a stalled one (a dead node) ends at it.
        TIMEOUT: "60",
        LOG_LEVEL: "debug",
      };
      server = await startServerUnmanaged({ ...baseEnv, DEPLOYER_INSECURE_REGISTRIES: swarm.registry.host }, serverPort);
    }, 300_000);

    afterAll(async () => {
      await server?.stop();
      await swarm?.close();
      await removeImages(...Object.values(builds));
      rmSync(dir, { recursive: true, force: true });
    }, 120_000);

    function query<T>(sql: string, ...params: unknown[]): T[] {
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        return db.prepare(sql).all(...params) as T[];
      } finally {
        db.close();
      }
    }

    async function getDeployment(depId: string): Promise<Detail> {
      const res = await fetch(`${server.url}/api/deployments/${depId}`, { headers: { authorization: `Bearer ${apiToken}` } });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      return JSON.parse(text) as Detail;
    }

    /** The deployment of `digest` on `service`, once it has ended. */
    async function outcome(service: string, digest: string, what: string): Promise<Detail> {
      const row = await waitFor(
        async () =>
          query<{ id: string }>(
            "select id from deployments where service = ? and digest = ? and status not in ('queued', 'running') order by id desc limit 1",
            service,
            digest,
          )[0],
        { timeoutMs: 150_000, intervalMs: 500, what },
      ).catch(async (err: unknown) => {
        const rows = query<{ id: string; status: string; digest: string; message: string }>(
          "select id, status, digest, message from deployments where service = ?",
          service,
        );
        throw new Error(`${(err as Error).message}\n${JSON.stringify(rows, null, 1)}\n${taskTable(await tasksOf(swarm, service))}`);
      });
      return getDeployment(row.id);
    }

    /** Every node's own engine runs the service from the image `digest` names, as `pinned`. */
    async function expectEveryNodeRuns(service: string, repo: string, digest: string) {
      for (const node of swarm.nodes) {
        const running = await runningOn(node, service);
        expect(running.length, `${node.hostname}: ${JSON.stringify(running)}`).toBeGreaterThan(0);
        for (const c of running) {
          expect(c.image, node.hostname).toBe(`${repo}:live@${digest}`);
          expect(c.repoDigests, node.hostname).toContain(`${repo}@${digest}`);
        }
      }
    }

    it("rolls a service with a task on each node to the pushed digest, which every node pulls and runs", async () => {
      const name = uniqueName("spread");
      const repo = `${swarm.registry.host}/mn/${name}`;
      await swarm.push(builds.v1, `${repo}:live`);
      await createSpreadService(swarm, { name, image: `${repo}:live`, replicas: 2, maxPerNode: 1 });
      expect(new Set((await tasksOf(swarm, name)).map((t) => t.node))).toEqual(new Set(swarm.nodes.map((n) => n.hostname)));

      const v2 = await swarm.push(builds.v2, `${repo}:live`);
      const record = await outcome(name, v2, "the deployment of the v2 push");
      expect(record.status, JSON.stringify(record, null, 1)).toBe("succeeded");
      await expectEveryNodeRuns(name, repo, v2);
      const running = (await tasksOf(swarm, name)).filter((t) => t.desired === "running");
      expect(new Set(running.map((t) => t.node)), taskTable(running)).toEqual(new Set(swarm.nodes.map((n) => n.hostname)));
    });

    it("keeps every node on the pushed digest when the tag moves to a third image during the rollout, then rolls to that one", async () => {
      const name = uniqueName("moving");
      const repo = `${swarm.registry.host}/mn/${name}`;
      await swarm.push(builds.v1, `${repo}:live`);
      // A pause between the two tasks' updates: the tag moves while the first node runs v2 and the second has not pulled yet.
      await createSpreadService(swarm, { name, image: `${repo}:live`, replicas: 2, maxPerNode: 1, delaySeconds: 4 });

      const v2 = await swarm.push(builds.v2, `${repo}:live`);
      const sent = await waitFor(
        async () =>
          query<{ id: string }>("select d.id from deployments d where d.service = ? and d.digest = ? and d.update_sent_at is not null", name, v2)[0],
        { timeoutMs: 60_000, intervalMs: 100, what: "the v2 update sent" },
      );
      const v3 = await swarm.push(builds.v3, `${repo}:live`);
      // The tag names v3 now, while the v2 rollout is still under way.
      expect(query<{ status: string }>("select status from deployments where id = ?", sent.id)[0]?.status).toBe("running");
      const first = await outcome(name, v2, "the deployment of v2");
      expect(first.id).toBe(sent.id);
      expect(first.status, JSON.stringify(first, null, 1)).toBe("succeeded");
      // Every task of that rollout ran v2's digest, the one pushed when it started, though the tag named v3 before it ended.
      const ofV2 = (await tasksOf(swarm, name)).filter((t) => t.image.endsWith(v2));
      expect(new Set(ofV2.map((t) => t.node)), taskTable(ofV2)).toEqual(new Set(swarm.nodes.map((n) => n.hostname)));

      const second = await outcome(name, v3, "the deployment of v3");
      expect(second.status, JSON.stringify(second, null, 1)).toBe("succeeded");
      await expectEveryNodeRuns(name, repo, v3);
      // No task ever ran the moving tag itself but the service's first ones, created from it before any deployment.
      const images = new Set((await tasksOf(swarm, name)).map((t) => t.image));
      expect([...images].sort()).toEqual([`${repo}:live`, `${repo}:live@${v2}`, `${repo}:live@${v3}`].sort());
    });

    /** Waits until the deployment of `digest` on `service` has sent its update; returns its id. */
    async function updateSent(service: string, digest: string): Promise<string> {
      const row = await waitFor(
        async () =>
          query<{ id: string }>("select id from deployments where service = ? and digest = ? and update_sent_at is not null", service, digest)[0],
        { timeoutMs: 60_000, intervalMs: 100, what: `the update of ${service} to ${digest} sent` },
      );
      return row.id;
    }

    it("records the truth when a node is drained during a rollout", async () => {
      const name = uniqueName("drain");
      const repo = `${swarm.registry.host}/mn/${name}`;
      const worker = swarm.workers[0]!;
      await swarm.push(builds.v1, `${repo}:live`);
      await createSpreadService(swarm, { name, image: `${repo}:live`, replicas: 2, delaySeconds: 4 });
      expect(new Set((await tasksOf(swarm, name)).filter((t) => t.desired === "running").map((t) => t.node)).size).toBe(2);

      const v2 = await swarm.push(builds.v2, `${repo}:live`);
      const depId = await updateSent(name, v2);
      onTestFinished(async () => {
        await swarm.docker(swarm.manager, ["node", "update", "--availability", "active", worker.nodeId], { allowFailure: true });
      });
      await swarm.docker(swarm.manager, ["node", "update", "--availability", "drain", worker.nodeId]);
      expect(query<{ status: string }>("select status from deployments where id = ?", depId)[0]?.status).toBe("running");

      const record = await outcome(name, v2, "the deployment during the drain");
      const all = await tasksOf(swarm, name);
      const explained = `${JSON.stringify(record, null, 1)}\n${taskTable(all)}`;
      console.info(`[multi-node] drained worker: ${record.status}: ${record.message}`);
      const service = (await swarm.manager.api.getService(name).inspect()) as { UpdateStatus?: { State?: string } };
      expect(await runningOn(worker, name), explained).toEqual([]);
      if (record.status === "succeeded") {
        // The drain moved the worker's task to the manager before the updater came to it: both replicas there, on v2.
        const running = all.filter((t) => t.desired === "running" && t.state === "running");
        expect(
          running.map((t) => [t.node, t.image]),
          explained,
        ).toEqual([
          [swarm.manager.hostname, `${repo}:live@${v2}`],
          [swarm.manager.hostname, `${repo}:live@${v2}`],
        ]);
        expect(service.UpdateStatus?.State).toBe("completed");
      } else {
        // The drain stopped the task the updater was watching: swarm paused the update, and the record says so, naming it.
        expect(record.status, explained).toBe("failed");
        expect(service.UpdateStatus?.State).toBe("paused");
        const named = /swarm paused the update: .*task ([a-z0-9]{12})/.exec(record.message);
        expect(named, explained).not.toBeNull();
        expect(
          all.find((t) => t.id.startsWith(named![1]!)),
          explained,
        ).toMatchObject({ node: worker.hostname, state: "shutdown" });
      }
    });

    it("ends with a true status, naming the node, when a worker's engine is killed during a rollout, and the server keeps running", async () => {
      const name = uniqueName("killed");
      const repo = `${swarm.registry.host}/mn/${name}`;
      const worker = swarm.workers[0]!;
      await swarm.push(builds.v1, `${repo}:live`);
      await createSpreadService(swarm, { name, image: `${repo}:live`, replicas: 2, delaySeconds: 4 });

      const v2 = await swarm.push(builds.v2, `${repo}:live`);
      await updateSent(name, v2);
      onTestFinished(async () => {
        await swarm.restartEngine(worker);
        await waitFor(async () => (await swarm.nodeState(worker)).state === "ready", { timeoutMs: 60_000, what: "the worker back" });
      });
      await swarm.killEngine(worker);

      const record = await outcome(name, v2, "the deployment while the worker is gone");
      const all = await tasksOf(swarm, name);
      console.info(
        `[multi-node] killed worker: ${record.status}: ${record.message}\n${record.events.map((e) => e.message).join("\n")}\n${taskTable(all)}`,
      );
      expect((await swarm.nodeState(worker)).state).toBe("down");
      const onManager = all.filter((t) => t.node === swarm.manager.hostname && t.desired === "running" && t.state === "running");
      if (record.status === "succeeded") {
        // The updater reached the dead node's slot after the manager had marked it down: the new task went to the manager.
        expect(onManager.filter((t) => t.image === `${repo}:live@${v2}`).length, taskTable(all)).toBe(2);
      } else {
        // Swarm gave the new task to the node before it was marked down and waits for it with the update (it restarts
        // the slot on the manager from the old spec meanwhile): the rollout never ends, and the record says so at the
        // timeout, naming the task left on the dead node.
        expect(record.status, JSON.stringify(record, null, 1)).toBe("failed");
        expect(record.message).toMatch(/^timed out after 60 s waiting for the rollout \(update state: updating; 1\/2 tasks running the new image; /);
        const leftOnDeadNode = all.find((t) => t.node === worker.hostname && t.image === `${repo}:live@${v2}` && t.state !== "running");
        expect(leftOnDeadNode, taskTable(all)).toBeDefined();
        expect(record.message).toContain(
          `task ${leftOnDeadNode!.id.slice(0, 12)} on node ${worker.nodeId.slice(0, 12)} still ${leftOnDeadNode!.state}`,
        );
        expect(onManager.length, taskTable(all)).toBe(2);
      }
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
      expect(server.child.exitCode).toBeNull();
    });

    describe("with a registry that requires a login", () => {
      let authRegistry: TestRegistry;
      let authPort: number;
      let authDir: string;
      const worker = () => swarm.workers[0]!;

      beforeAll(async () => {
        authDir = mkdtempSync(join(tmpdir(), "deployer-multi-node-auth-"));
        const htpasswd = join(authDir, "htpasswd");
        // bcrypt (-B): the only scheme the registry's htpasswd reads.
        const { stdout } = await runCommand("htpasswd", ["-Bbn", registryUser, registryPassword]);
        writeFileSync(htpasswd, stdout);
        authPort = await freePort();
        const registryPort = await freePort();
        const host = `${swarm.bridgeIp}:${registryPort}`;
        const notifyToken = await tokens.signWebhookToken({ sub: "auth-registry", repos: [`${host}/mna/*`] });
        authRegistry = await swarm.startRegistry({
          port: registryPort,
          htpasswd,
          notify: { url: `http://127.0.0.1:${authPort}/hooks/registry`, authorization: `Bearer ${notifyToken}` },
        });
        // The manager pushes with its own login; the worker has none: only what the server passes lets it pull.
        await swarm.docker(swarm.manager, ["login", "--username", registryUser, "--password", registryPassword, authRegistry.host]);
        // v1 is already on the worker under the service's tag: swarm starts a task from a local image when the pull fails.
        await swarm.loadImages([builds.v1], worker());
      }, 120_000);
      afterAll(() => rmSync(authDir, { recursive: true, force: true }));

      /** A server of this test's own on the port the login registry notifies, with its login for that registry. */
      async function serverWithLogin(withRegistryAuth: boolean) {
        return startServer(
          {
            ...baseEnv,
            DEPLOYER_DB: join(authDir, `${uniqueName("db")}.db`),
            DEPLOYER_INSECURE_REGISTRIES: authRegistry.host,
            REGISTRY_HOST: authRegistry.host,
            REGISTRY_USER: registryUser,
            REGISTRY_PASSWORD: registryPassword,
            WITH_REGISTRY_AUTH: String(withRegistryAuth),
          },
          authPort,
        );
      }

      async function serviceOnV1(prefix: string) {
        const name = uniqueName(prefix);
        const repo = `${authRegistry.host}/mna/${name}`;
        await swarm.push(builds.v1, `${repo}:live`);
        await swarm.docker(worker(), ["tag", builds.v1, `${repo}:live`]);
        await createSpreadService(swarm, { name, image: `${repo}:live`, replicas: 2, maxPerNode: 1 });
        return { name, repo };
      }

      it("with WITH_REGISTRY_AUTH the worker pulls the pushed digest with the server's login", async () => {
        const own = await serverWithLogin(true);
        const { name, repo } = await serviceOnV1("auth-on");
        const v2 = await swarm.push(builds.v2, `${repo}:live`);
        const record = await outcomeFrom(own, name, v2);
        expect(record.status, JSON.stringify(record, null, 1)).toBe("succeeded");
        await expectEveryNodeRuns(name, repo, v2);
        expect(own.stdout() + own.stderr()).not.toContain(registryPassword);
      });

      it("without it the worker cannot pull, and the rollout fails with the node's error in the record", async () => {
        const own = await serverWithLogin(false);
        const { name, repo } = await serviceOnV1("auth-off");
        const v2 = await swarm.push(builds.v2, `${repo}:live`);
        const record = await outcomeFrom(own, name, v2);
        const all = await tasksOf(swarm, name);
        console.info(`[multi-node] no registry auth: ${record.status}: ${record.message}\n${taskTable(all)}`);
        expect(record.status, JSON.stringify(record, null, 1)).toBe("failed");
        // Swarm reports the pull's failure as the image missing on the node; the record names that task, on the worker.
        const named = /task ([a-z0-9]{12}) rejected: (No such image: [^)]+)/.exec(record.message);
        expect(named, record.message).not.toBeNull();
        const task = all.find((t) => t.id.startsWith(named![1]!));
        expect(task, taskTable(all)).toMatchObject({ node: worker().hostname, image: `${repo}:live@${v2}`, error: named![2] });
        // The worker's engine never got v2: nothing there runs it (swarm may have restarted the old task), no image has its digest.
        expect((await runningOn(worker(), name)).filter((c) => c.image.endsWith(v2))).toEqual([]);
        const images = (await worker().api.listImages({ digests: true })) as Array<{ RepoDigests?: string[] | null }>;
        expect(images.flatMap((i) => i.RepoDigests ?? [])).not.toContain(`${repo}@${v2}`);
        expect(own.stdout() + own.stderr()).not.toContain(registryPassword);
      });

      /** The deployment of `digest` recorded by `own` (a server with a database of its own), once it has ended. */
      async function outcomeFrom(own: ServerProcess, service: string, digest: string): Promise<Detail> {
        const headers = { authorization: `Bearer ${apiToken}` };
        const found = await waitFor(
          async () => {
            const res = await fetch(`${own.url}/api/deployments?service=${service}`, { headers });
            const page = (await res.json()) as { items: Array<{ id: string; digest: string | null; status: string }> };
            return page.items.find((d) => d.digest === digest && !["queued", "running"].includes(d.status));
          },
          { timeoutMs: 150_000, intervalMs: 500, what: `the deployment of ${digest} on ${service}` },
        );
        const res = await fetch(`${own.url}/api/deployments/${found.id}`, { headers });
        return (await res.json()) as Detail;
      }
    });
  },
  { timeout: 300_000 },
);
