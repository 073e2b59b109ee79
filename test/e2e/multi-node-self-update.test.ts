/**
 * The deploy server updating itself, on a multi-node swarm
 * (test/helpers/multi-node-swarm.ts): stack.yml deployed on the manager with
 * DEPLOYER_SELF_UPDATE=true, the server's image from scripts/ci/build.sh in
 * the swarm's registry, whose notifications go to the server. A push of a new
 * server image rolls the server (stop-first): the process that sent the
 * update stops, and the next one finds the deployment in its record on the
 * volume and follows its own rollout to its end. A server image that cannot
 * start is rolled back by swarm itself, and the old server records that.
 * One swarm and one stack for the file; the tests run in order (the second
 * starts from the server the first deployed).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTokenService } from "../../server/auth/tokens.js";
import { describeDocker, freePort, uniqueName, waitFor } from "../helpers/docker-env.js";
import { buildImage, ensureBaseImage, removeImages } from "../helpers/images.js";
import { startMultiNodeSwarm, type MultiNodeSwarm } from "../helpers/multi-node-swarm.js";
import { taskTable, tasksOf } from "../helpers/multi-node-world.js";
import { runCiStep } from "../helpers/pipeline.js";
import { repoRoot } from "../helpers/server-process.js";

type Detail = { id: string; status: string; digest: string; message: string; events: Array<{ at: string; message: string }> };

describeDocker(
  "the deploy server updating itself on a multi-node swarm",
  () => {
    const secret = randomBytes(48).toString("base64url");
    const tokens = createTokenService({ secret, dockerHubRegistry: "docker.io" });
    const stack = uniqueName("self").replace(/-/g, "_");
    const service = `${stack}_deployer`;
    const work = mkdtempSync(join(tmpdir(), "deployer-self-update-"));
    const localTags: string[] = [];
    let swarm: MultiNodeSwarm;
    let repo: string;
    let url: string;
    let apiToken: string;
    const digests: Record<string, string> = {};

    beforeAll(async () => {
      const port = await freePort();
      swarm = await startMultiNodeSwarm({
        workers: 1,
        registry: async (host, managerIp) => ({
          notify: {
            url: `http://${managerIp}:${port}/hooks/registry`,
            authorization: `Bearer ${await tokens.signWebhookToken({ sub: "swarm-registry", repos: [`${host}/self/*`] })}`,
          },
        }),
      });
      url = `http://${swarm.manager.ip}:${port}`;
      repo = `${swarm.registry.host}/self/server`;
      apiToken = await tokens.signApiToken({ sub: "self-update", scopes: ["deployments:read"] });

      // Builds 1 and 2 through the pipeline's own build stage; a third that exits at start (a bad setting baked in).
      const base = await ensureBaseImage();
      const local = `${stack.replace(/_/g, "-")}/server`;
      for (const n of ["1", "2"]) {
        await runCiStep("build", { component: "server", image: local, buildNumber: n, baseImage: base });
        localTags.push(`${local}:ci-${n}`);
      }
      writeFileSync(join(work, "Dockerfile"), `FROM ${local}:ci-2\nENV TIMEOUT=not-a-number\n`);
      await buildImage({ tag: `${local}:bad`, context: work });
      localTags.push(`${local}:bad`);
      await swarm.loadImages(localTags);
      digests["1"] = await swarm.push(`${local}:ci-1`, `${repo}:live`);

      const secretName = `${stack}_secret`;
      await swarm.manager.api.createSecret({ Name: secretName, Data: Buffer.from(secret).toString("base64") });
      await swarm.docker(
        swarm.manager,
        ["stack", "deploy", "--compose-file", "stack.yml", "--compose-file", "test/e2e/stack.multi-node.override.yml", stack],
        {
          cwd: repoRoot,
          env: {
            DOCKER_GID: String(statSync(swarm.manager.socket).gid),
            DOCKER_SOCKET: swarm.manager.socket,
            DEPLOYER_IMAGE: `${repo}:live`,
            DEPLOYER_PORT: String(port),
            DEPLOYER_SECRET_NAME: secretName,
            DEPLOYER_INSECURE_REGISTRIES: swarm.registry.host,
            DEPLOYER_SELF_UPDATE: "true",
            WEB_IMAGE: `${swarm.registry.host}/self/web:none`,
            WEB_PUBLISH_MODE: "host",
            WEB_PORT: "0",
          },
        },
      );
      await waitFor(async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200, {
        timeoutMs: 120_000,
        intervalMs: 1000,
        what: "the stack's deploy server ready",
      }).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\n${taskTable(await tasksOf(swarm, service))}\n${await serviceLogs()}`);
      });
    }, 600_000);

    afterAll(async () => {
      await swarm?.close();
      await removeImages(...localTags);
      rmSync(work, { recursive: true, force: true });
    }, 120_000);

    async function serviceLogs(): Promise<string> {
      const r = await swarm.docker(swarm.manager, ["service", "logs", "--raw", "--tail", "40", service], { allowFailure: true });
      return (r.stdout + r.stderr).split("\n").slice(-40).join("\n");
    }

    async function api<T>(path: string): Promise<T> {
      const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${apiToken}` }, signal: AbortSignal.timeout(3000) });
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    }

    /** The server's record of the deployment of `digest` on its own service, once it has ended (the server may be restarting meanwhile). */
    async function ownOutcome(digest: string, what: string): Promise<Detail> {
      const found = await waitFor(
        async () => {
          const page = await api<{ items: Array<{ id: string; digest: string | null; status: string }> }>(`/api/deployments?service=${service}`);
          return page.items.find((d) => d.digest === digest && !["queued", "running"].includes(d.status));
        },
        { timeoutMs: 240_000, intervalMs: 1000, what },
      ).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\n${taskTable(await tasksOf(swarm, service))}\n${await serviceLogs()}`);
      });
      return api<Detail>(`/api/deployments/${found.id}`);
    }

    async function serviceImage(): Promise<string> {
      const info = (await swarm.manager.api.getService(service).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Image: string } } } };
      return info.Spec.TaskTemplate.ContainerSpec.Image;
    }

    it("rolls itself to a pushed server image: the new process finds the deployment in its record and follows it to succeeded", async () => {
      const local = localTags[1]!;
      digests["2"] = await swarm.push(local, `${repo}:live`);
      const record = await ownOutcome(digests["2"], "the server's deployment of its own build 2");
      const timeline = record.events.map((e) => e.message);
      const explained = `${JSON.stringify(record, null, 1)}\n${taskTable(await tasksOf(swarm, service))}`;
      expect(record.status, explained).toBe("succeeded");
      const sent = timeline.findIndex((m) => m.startsWith("update sent:"));
      const resumed = timeline.indexOf("resumed following the rollout after a restart");
      expect(timeline, explained).toContain(
        "this is the deploy server's own service: the update stops this process, and the next one follows the rollout",
      );
      // The process that sent the update did not live to see its end; the next one picked the rollout up.
      expect(sent, explained).toBeGreaterThanOrEqual(0);
      expect(resumed, explained).toBeGreaterThan(sent);
      expect(await serviceImage()).toBe(`${repo}:live@${digests["2"]}`);
      const running = (await tasksOf(swarm, service)).filter((t) => t.desired === "running" && t.state === "running");
      expect(
        running.map((t) => [t.node, t.image]),
        explained,
      ).toEqual([[swarm.manager.hostname, `${repo}:live@${digests["2"]}`]]);
    });

    it("is brought back by swarm when a pushed server image cannot start, and the old server records the deployment rolled_back", async () => {
      const before = await serviceImage();
      expect(before).toBe(`${repo}:live@${digests["2"]}`);
      const bad = await swarm.push(localTags[2]!, `${repo}:live`);
      const record = await ownOutcome(bad, "the server's deployment of the image that cannot start");
      const explained = `${JSON.stringify(record, null, 1)}\n${taskTable(await tasksOf(swarm, service))}`;
      expect(record.status, explained).toBe("rolled_back");
      expect(record.message, explained).toMatch(/^swarm rolled the update back/);
      expect(record.events.map((e) => e.message)).toContain("resumed following the rollout after a restart");
      expect(await serviceImage()).toBe(before);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
    });
  },
  { timeout: 300_000 },
);
