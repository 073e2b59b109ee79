/**
 * The whole pipeline, run rather than described: the scripts/ci stages build,
 * smoke-test, tag and push build 1 of the web app and of the deploy server
 * into a local docker-registry; `docker stack deploy` starts stack.yml (plus
 * test/e2e/stack.override.yml for what this machine forces) with the deploy
 * server as a swarm service from its own image; build 2 goes through the same
 * stages, the registry notifies the deployed server, and the web app rolls to
 * it while a client checks every 50 ms that a replica answers. Build 3 fails
 * its health check and the web app stays on the build it serves. The stack
 * is the shared setup; each test starts from whatever build it serves, so
 * each can run alone (`-t`).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { createTokenService } from "../../server/auth/tokens.js";
import { startAvailabilityMonitor, type AvailabilityReport } from "../helpers/availability-monitor.js";
import { createDockerClient, describeDocker, freePort, startRegistry, uniqueName, waitFor, type TestRegistry } from "../helpers/docker-env.js";
import { docker, ensureBaseImage, removeImages } from "../helpers/images.js";
import { copyCheckout, deployStack, registryDigest, removeStack, runCiStep, shipBuild, timings, type CiJob } from "../helpers/pipeline.js";
import { createStackObserver, type Deployment, type DeploymentDetail } from "../helpers/stack-observer.js";

describeDocker(
  "the CI/CD pipeline from commit to swarm",
  () => {
    const api = createDockerClient();
    const stack = uniqueName("pipeline").replace(/-/g, "_");
    const web = `${stack}_web`;
    const deployer = `${stack}_deployer`;
    const secretName = `${stack}_secret`;
    const secret = randomBytes(48).toString("base64url");
    const tokens = createTokenService({ secret, dockerHubRegistry: "docker.io" });
    const work = mkdtempSync(join(tmpdir(), "pipeline-e2e-"));
    const cleanup: Array<() => Promise<unknown>> = [];
    const reports: Record<string, AvailabilityReport> = {};
    const records: Record<string, DeploymentDetail> = {};
    let registry: TestRegistry;
    let observe: ReturnType<typeof createStackObserver>;
    let deployerUrl: string;
    let job: (component: CiJob["component"], buildNumber: string, checkout?: string) => CiJob;
    let repo: (component: CiJob["component"]) => string;

    function describeReport(r: AvailabilityReport): string {
      const failed = r.failed.slice(0, 5).map((f) => `${new Date(f.at).toISOString()} ${JSON.stringify(f.answers)}`);
      return `${r.rounds.length} rounds in ${r.durationMs} ms, ${r.failed.length} without a 200, longest gap ${r.maxGapMs} ms, slowest 200 ${r.maxLatencyMs} ms, ports ${r.portsSeen.join(",")}, versions ${r.versionsSeen.join(",")}${failed.length ? `\n${failed.join("\n")}` : ""}`;
    }

    beforeAll(async () => {
      const base = await ensureBaseImage();
      const deployerPort = await freePort();
      const registryPort = await freePort();
      deployerUrl = `http://127.0.0.1:${deployerPort}`;
      const namespace = stack.replace(/_/g, "-");
      repo = (component) => `${namespace}/${component}`;

      // The namespace covers everything the pipeline pushes: a push the token did not cover would be answered 403,
      // which the registry keeps retrying while later notifications wait. The services claim keeps the server off itself.
      const webhookToken = await tokens.signWebhookToken({
        sub: "local-registry",
        repos: [`127.0.0.1:${registryPort}/${namespace}/*`],
        services: [web],
      });
      const apiToken = await tokens.signApiToken({ sub: "pipeline-e2e", scopes: ["deployments:read"] });
      observe = createStackObserver({ api, web, deployerUrl, apiToken });
      registry = await startRegistry({
        port: registryPort,
        notify: { url: `${deployerUrl}/hooks/registry`, authorization: `Bearer ${webhookToken}` },
      });
      cleanup.push(() => registry.stop());
      job = (component, buildNumber, checkout) => ({
        component,
        image: `${registry.host}/${repo(component)}`,
        buildNumber,
        baseImage: base,
        checkout,
      });
      cleanup.push(() => {
        const tags = ["web-app", "server"].flatMap((c) =>
          ["1", "2", "3"]
            .flatMap((n) => [`ci-${n}`, n])
            .concat("latest")
            .map((t) => `${registry.host}/${repo(c as CiJob["component"])}:${t}`),
        );
        return removeImages(...tags);
      });

      await api.createSecret({ Name: secretName, Data: Buffer.from(secret).toString("base64") });
      cleanup.push(() => api.getSecret(secretName).remove());

      // Build 1 of both images, through the same stages Travis runs.
      await shipBuild(job("server", "1"));
      await shipBuild(job("web-app", "1"));

      cleanup.push(() => removeStack(api, stack));
      await deployStack(stack, ["stack.yml", "test/e2e/stack.override.yml"], {
        DOCKER_GID: String(statSync("/var/run/docker.sock").gid),
        WEB_IMAGE: `${registry.host}/${repo("web-app")}:latest`,
        WEB_PUBLISH_MODE: "host",
        WEB_PORT: "0",
        DEPLOYER_IMAGE: `${registry.host}/${repo("server")}:latest`,
        DEPLOYER_PORT: String(deployerPort),
        DEPLOYER_SECRET_NAME: secretName,
        DEPLOYER_INSECURE_REGISTRIES: registry.host,
      });
    }, 420_000);

    let anyFailed = false;
    afterEach((ctx) => {
      if (ctx.task.result?.state === "fail") anyFailed = true;
    });

    afterAll(async () => {
      // On failure, what the stack looked like, before it is removed; this must never stop the clean-up.
      if (anyFailed && observe) {
        try {
          console.info(`[pipeline] web tasks at the end:\n${await observe.taskTable()}`);
          const page = await observe.apiGet<{ items: Deployment[] }>(`/api/deployments?limit=50`);
          console.info(
            `[pipeline] deployments:\n${page.items.map((d) => `  ${d.id} ${d.service} ${d.trigger} ${d.status} ${d.digest} ${d.message}`).join("\n")}`,
          );
          const logs = await docker(["service", "logs", "--raw", "--tail", "80", deployer], { allowFailure: true });
          console.info(`[pipeline] deploy server log:\n${logs.stdout}${logs.stderr}`);
        } catch (e) {
          console.warn(`[pipeline] diagnostics failed: ${(e as Error).message}`);
        }
      }
      for (const step of cleanup.reverse()) await step().catch((e: unknown) => console.warn(`[pipeline cleanup] ${(e as Error).message}`));
      rmSync(work, { recursive: true, force: true });
      console.info(`[pipeline] step timings:\n${timings.map((t) => `  ${t.step}: ${(t.ms / 1000).toFixed(1)} s`).join("\n")}`);
      for (const [name, r] of Object.entries(reports)) console.info(`[pipeline] availability during ${name}: ${describeReport(r)}`);
      for (const [name, r] of Object.entries(records)) {
        console.info(
          `[pipeline] deployment record of ${name}: ${r.status}\n${r.events.map((e) => `  ${e.at.slice(11, 23)} ${e.status}: ${e.message}`).join("\n")}`,
        );
      }
    }, 180_000);

    it("runs the deploy server from its image on the manager, reachable on 127.0.0.1 and reaching the engine", async () => {
      const ready = await waitFor(
        async () => {
          const res = await fetch(`${deployerUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
          return res.status === 200 ? ((await res.json()) as { checks: Record<string, string> }) : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500, what: "the deploy server's /readyz to answer 200" },
      );
      expect(ready.checks).toEqual({ database: "ok", docker: "ok" });
      expect(await observe.serviceImage(deployer)).toMatch(new RegExp(`^${registry.host}/${repo("server")}:latest@sha256:`));

      const spec = (await api.getService(deployer).inspect()).Spec;
      expect(spec.TaskTemplate.Placement.Constraints).toEqual(["node.role == manager", "node.platform.os == linux"]);
      expect(spec.TaskTemplate.ContainerSpec.User).toMatch(/^1000:\d+$/);
      expect(spec.TaskTemplate.ContainerSpec.Secrets).toEqual([
        expect.objectContaining({ SecretName: secretName, File: expect.objectContaining({ Name: "deployer_secret", UID: "1000", Mode: 0o400 }) }),
      ]);
      expect(spec.TaskTemplate.ContainerSpec.Mounts).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock" }),
          expect.objectContaining({ Type: "volume", Source: `${stack}_deployer-data`, Target: "/data" }),
        ]),
      );
    });

    it("serves build 1 from two replicas with a start-first, rollback-on-failure update policy", async () => {
      await observe.waitForReplicas("1", 90_000);

      const spec = (await api.getService(web).inspect()).Spec;
      expect(spec.Mode.Replicated.Replicas).toBe(2);
      expect(spec.UpdateConfig).toMatchObject({ Parallelism: 1, Order: "start-first", FailureAction: "rollback" });
      // The monitor window must outlast the time the health check needs to call a task unhealthy.
      // The Engine API spells it Healthcheck (nanoseconds throughout).
      const hc = (spec.TaskTemplate.ContainerSpec as { Healthcheck: { StartPeriod: number; Retries: number; Interval: number; Timeout: number } })
        .Healthcheck;
      const window = hc.StartPeriod + hc.Retries * (hc.Interval + hc.Timeout);
      expect(spec.UpdateConfig.Monitor).toBeGreaterThanOrEqual(window);
    });

    it("rolls the web app to build 2 on the registry's notification while a replica answers every 50 ms", async () => {
      const build2 = job("web-app", "2");
      await runCiStep("build", build2);
      await runCiStep("smoke", build2);
      await runCiStep("tag", build2);

      await observe.waitForIdleLane();
      const monitor = await startAvailabilityMonitor({ docker: api, service: web, intervalMs: 50 });
      cleanup.push(() => monitor.stop());
      await runCiStep("push", build2);
      const digest = await registryDigest(registry.host, repo("web-app"), "2");
      expect(await registryDigest(registry.host, repo("web-app"), "latest")).toBe(digest);

      const record = (records["build 2"] = await observe.outcomeFor(digest, "the deployment of build 2"));
      await observe.waitForReplicas("2", 60_000);
      const report = (reports["the update to build 2"] = await monitor.stop());

      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ trigger: "registry", digest });
      expect(await observe.serviceImage(web)).toBe(`${registry.host}/${repo("web-app")}:latest@${digest}`);
      expect(report.failed, describeReport(report)).toEqual([]);
      expect(report.versionsSeen).toEqual(["1", "2"]);
      // Two old replicas and two new ones answered: the switch happened inside the watched window.
      expect(report.hostnamesSeen.length).toBeGreaterThanOrEqual(4);
    });

    it("keeps the build it serves (build 2 after the update) when build 3 fails its health check, and records rolled_back", async () => {
      // Build 3 is a commit whose /healthz answers 503, built from a second checkout so the working tree stays intact.
      const checkout = join(work, "checkout");
      await copyCheckout(checkout, {
        file: "web-app/app.ts",
        from: 'app.get("/healthz", (c) => c.json({ status: "ok" }));',
        to: 'app.get("/healthz", (c) => c.json({ status: "broken" }, 503));',
      });
      const build3 = job("web-app", "3", checkout);
      await runCiStep("build", build3);
      // The smoke stage is what keeps such a build out of the registry; pushed anyway, swarm must refuse it too.
      const smoke = await runCiStep("smoke", build3, { allowFailure: true });
      expect(smoke.code, smoke.stderr).not.toBe(0);
      expect(smoke.stderr).toMatch(/smoke test of .* failed/);
      await runCiStep("tag", build3);

      // Build 2 when the update above ran, build 1 when this test runs alone: whichever it is must stay.
      await observe.waitForIdleLane();
      const serving = await observe.waitForReplicas(undefined, 60_000);
      const before = await observe.serviceImage(web);
      const monitor = await startAvailabilityMonitor({ docker: api, service: web, intervalMs: 50 });
      cleanup.push(() => monitor.stop());
      await runCiStep("push", build3);
      const digest = await registryDigest(registry.host, repo("web-app"), "3");

      const record = (records["build 3"] = await observe.outcomeFor(digest, "the deployment of the unhealthy build 3"));
      const report = (reports["the failed update to build 3"] = await monitor.stop());
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("rolled_back");
      expect(record.trigger).toBe("registry");
      expect(await observe.serviceImage(web)).toBe(before);
      await observe.waitForReplicas(serving, 60_000);
      expect(report.failed, describeReport(report)).toEqual([]);
    });
  },
  { timeout: 300_000 },
);
