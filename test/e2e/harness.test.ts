/**
 * Proves the Docker test harness end to end: offline images, a private
 * registry, a host-mode swarm service reachable on 127.0.0.1, and a health
 * check that docker really evaluates (and fails for a healthy=false build).
 */
import { afterAll, beforeAll, expect, it, onTestFinished } from "vitest";
import { buildAppImage, docker as dockerCli, ensureBaseImage, pushImage, removeImages } from "../helpers/images.js";
import {
  createDockerClient,
  createTestService,
  describeDocker,
  freePort,
  removeService,
  startRegistry,
  uniqueName,
  waitFor,
  type TestRegistry,
} from "../helpers/docker-env.js";

describeDocker("docker test harness", () => {
  const docker = createDockerClient();
  const repo = uniqueName("harness");
  let registry: TestRegistry | undefined;
  const localTags: string[] = [];
  let v1Ref = "";
  let v1Digest = "";

  async function serviceContainers(serviceId: string) {
    const list = await docker.listContainers({
      all: true,
      filters: { label: [`com.docker.swarm.service.id=${serviceId}`] },
    });
    return Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
  }

  beforeAll(async () => {
    await ensureBaseImage();
    registry = await startRegistry();
    v1Ref = `${registry.host}/${repo}:v1`;
    localTags.push(v1Ref);
    await buildAppImage({ tag: v1Ref, version: "v1" });
    v1Digest = await pushImage(v1Ref);
  });

  afterAll(async () => {
    await removeImages(...localTags);
    await registry?.stop();
  });

  it("pushes to a 127.0.0.1 registry without daemon configuration", async () => {
    expect(v1Digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const res = await fetch(`http://${registry!.host}/v2/${repo}/manifests/v1`, {
      method: "HEAD",
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-content-digest")).toBe(v1Digest);
  });

  it("runs a host-mode published service from the registry image", async () => {
    const port = await freePort();
    const name = uniqueName("harness-v1");
    const id = await createTestService({ name, image: v1Ref, publishedPort: port, targetPort: 8000 });
    onTestFinished(() => removeService(id));

    const body = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
        const text = await res.text();
        return res.ok && text.includes("version=v1") ? text : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `${name} to answer version=v1 on 127.0.0.1:${port}` },
    );
    expect(body).toMatch(/^version=v1 host=\S+/);

    await waitFor(async () => (await serviceContainers(id)).some((c) => c.State.Health?.Status === "healthy"), {
      timeoutMs: 20_000,
      what: `a container of ${name} to report healthy`,
    });
  }, 60_000);

  it("reports a healthy=false build as unhealthy", async () => {
    const tag = `${registry!.host}/${repo}:bad`;
    localTags.push(tag);
    await buildAppImage({ tag, version: "bad", healthy: false });
    const name = uniqueName("harness-bad");
    // No restarts: the first container's verdict is what is being checked.
    const id = await createTestService({ name, image: tag, restartCondition: "none" });
    onTestFinished(() => removeService(id));

    const unhealthy = await waitFor(async () => (await serviceContainers(id)).find((c) => c.State.Health?.Status === "unhealthy"), {
      timeoutMs: 30_000,
      what: `a container of ${name} to report unhealthy`,
    });
    expect(unhealthy.State.Health?.FailingStreak).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it("a registry's stop removes the local engine's references to its images, a pull by digest's included", async () => {
    const own = await startRegistry();
    onTestFinished(() => own.stop());
    const tagged = `${own.host}/${uniqueName("harness-tagged")}`;
    const pinned = `${own.host}/${uniqueName("harness-pinned")}`;
    const listed = async () =>
      (
        await dockerCli(["image", "ls", "--digests", "--format", "{{.Repository}}:{{.Tag}}@{{.Digest}}", "--filter", `reference=${own.host}/*`])
      ).stdout
        .split("\n")
        .filter(Boolean)
        .sort();
    const base = await ensureBaseImage();
    await dockerCli(["tag", base, `${tagged}:v1`]);
    const digest = await pushImage(`${tagged}:v1`);
    // What a swarm task leaves: the image by digest alone, under no tag (`<none>` in `docker images`).
    await dockerCli(["tag", base, `${pinned}:v1`]);
    await pushImage(`${pinned}:v1`);
    await dockerCli(["rmi", `${pinned}:v1`]);
    await dockerCli(["pull", "--quiet", `${pinned}@${digest}`]);
    expect(await listed()).toEqual([`${pinned}:<none>@${digest}`, `${tagged}:v1@${digest}`]);
    await own.stop();
    expect(await listed()).toEqual([]);
  }, 60_000);
});
