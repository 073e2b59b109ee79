import { describe, expect, it, onTestFinished } from "vitest";
import { startCallbackReceiver } from "../helpers/callback-receiver.js";
import { countRows, createTestServer, dockerHubPush, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

async function hubToken(server: TestServer, repos = ["acme/*"]) {
  return server.tokens.signWebhookToken({ sub: "docker-hub", repos });
}

async function post(server: TestServer, token: string, body: unknown) {
  const res = await server.request(`/hooks/dockerhub/${token}`, { method: "POST", json: body });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) };
}

async function receiver() {
  const r = await startCallbackReceiver();
  onTestFinished(() => r.close());
  return r;
}

describe("POST /hooks/dockerhub/:token", () => {
  it("deploys <registry>/<repo_name>:<tag> and POSTs success to an allowed callback_url", async () => {
    const cb = await receiver();
    const server = createTestServer({ DEPLOYER_CALLBACK_HOSTS: cb.host });
    server.swarm.addService({ name: "web", image: "acme/web:latest" });
    server.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(1));
    const res = await post(server, await hubToken(server), dockerHubPush({ repoName: "acme/web", tag: "latest", callbackUrl: cb.url() }));
    expect(res.status, res.text).toBe(202);
    const done = await waitForFinal(server, res.json.deployments[0].id);
    expect(done.status).toBe("succeeded");
    expect(done.trigger).toBe("dockerhub");
    const [call] = await cb.waitForCount(1);
    expect(call!.body).toMatchObject({ state: "success", context: "deployer", description: expect.stringContaining("web: succeeded") });
    await expect.poll(() => server.store.listEvents(done.id).at(-1)?.message).toContain("callback success sent, answered 200");
  });

  it("links the callback to the deployment's page on the server's public URL (DEPLOYER_PUBLIC_URL), and to nothing without one", async () => {
    const cb = await receiver();
    const server = createTestServer({ DEPLOYER_CALLBACK_HOSTS: cb.host, DEPLOYER_PUBLIC_URL: "https://deploy.acme.example/" });
    server.swarm.addService({ name: "web", image: "acme/web:latest" });
    server.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(4));
    const res = await post(server, await hubToken(server), dockerHubPush({ repoName: "acme/web", tag: "latest", callbackUrl: cb.url() }));
    const id = res.json.deployments[0].id;
    await waitForFinal(server, id);
    const [call] = await cb.waitForCount(1);
    expect(call!.body).toMatchObject({ state: "success", target_url: `https://deploy.acme.example/deployments/${id}` });

    const plain = await receiver();
    const without = createTestServer({ DEPLOYER_CALLBACK_HOSTS: plain.host });
    without.swarm.addService({ name: "web", image: "acme/web:latest" });
    without.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(4));
    const again = await post(without, await hubToken(without), dockerHubPush({ repoName: "acme/web", tag: "latest", callbackUrl: plain.url() }));
    await waitForFinal(without, again.json.deployments[0].id);
    const [bare] = await plain.waitForCount(1);
    expect(bare!.body).not.toHaveProperty("target_url");
  });

  it("does not let another token's push of the same repo, tag and pushed_at stand in for this one", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "acme/web:latest" });
    server.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(5));
    const body = dockerHubPush({ repoName: "acme/web", tag: "latest", pushedAt: 1800000000 });
    const weak = await server.tokens.signWebhookToken({ sub: "someone", repos: ["acme/*"], services: ["staging"] });
    expect((await post(server, weak, body)).json.deployments).toEqual([]);
    const res = await post(server, await hubToken(server), body);
    expect(res.json.deployments.map((d: { service: string }) => d.service)).toEqual(["web"]);
  });

  it("reads the image from DEPLOYER_DOCKERHUB_REGISTRY, for a mirror or a local registry", async () => {
    const server = createTestServer({ DEPLOYER_DOCKERHUB_REGISTRY: "127.0.0.1:5000" });
    server.swarm.addService({ name: "web", image: "127.0.0.1:5000/acme/web:v2" });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v2" }, sha(2));
    const res = await post(server, await hubToken(server), dockerHubPush({ repoName: "acme/web", tag: "v2" }));
    expect(res.status, res.text).toBe(202);
    expect((await waitForFinal(server, res.json.deployments[0].id)).digest).toBe(sha(2));
  });

  it("POSTs failure to the callback when the rollout is rolled back", async () => {
    const cb = await receiver();
    const server = createTestServer({ DEPLOYER_CALLBACK_HOSTS: cb.host });
    server.swarm.addService({ name: "web", image: "acme/web:latest", failureAction: "rollback" });
    server.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(3));
    server.swarm.failImage(`acme/web:latest@${sha(3)}`, "task: non-zero exit (1)");
    const res = await post(server, await hubToken(server), dockerHubPush({ repoName: "acme/web", tag: "latest", callbackUrl: cb.url() }));
    expect((await waitForFinal(server, res.json.deployments[0].id)).status).toBe("rolled_back");
    const [call] = await cb.waitForCount(1);
    expect(call!.body).toMatchObject({ state: "failure", description: expect.stringContaining("rolled_back") });
  });

  it("records a callback_url whose host is not allowed and does not call it", async () => {
    const cb = await receiver();
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "acme/web:latest" });
    server.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(4));
    const res = await post(server, await hubToken(server), dockerHubPush({ repoName: "acme/web", tag: "latest", callbackUrl: cb.url() }));
    const done = await waitForFinal(server, res.json.deployments[0].id);
    // The callback is a finish listener: once the deployer is idle, any call it meant to make has been made.
    await server.deployer.idle();
    expect(cb.received).toEqual([]);
    expect(
      server.store
        .listEvents(done.id)
        .map((e) => e.message)
        .join("\n"),
    ).toContain("not in DEPLOYER_CALLBACK_HOSTS");
  });

  it("answers success to the callback when no service runs the image", async () => {
    const cb = await receiver();
    const server = createTestServer({ DEPLOYER_CALLBACK_HOSTS: cb.host });
    const res = await post(server, await hubToken(server), dockerHubPush({ repoName: "acme/web", tag: "latest", callbackUrl: cb.url() }));
    expect(res.json.ignored).toEqual([{ reason: "no_matching_service", image: "acme/web:latest" }]);
    const [call] = await cb.waitForCount(1);
    expect(call!.body).toMatchObject({ state: "success" });
  });

  it("treats the same repo, tag and pushed_at as one delivery", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "acme/web:latest" });
    server.registry.push({ registry: "docker.io", repository: "acme/web", tag: "latest" }, sha(5));
    const token = await hubToken(server);
    const body = dockerHubPush({ repoName: "acme/web", tag: "latest", pushedAt: 1700000123 });
    await waitForFinal(server, (await post(server, token, body)).json.deployments[0].id);
    const again = await post(server, token, body);
    expect(again.status).toBe(202);
    expect(again.json.ignored[0].reason).toBe("duplicate");
    expect(countRows(server, "deployments")).toBe(1);
  });

  it("rejects a bad token in the path with 401, a foreign repository with 403, and writes nothing", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: "acme/web:latest" });
    const body = dockerHubPush({ repoName: "acme/web", tag: "latest" });
    expect((await post(server, "garbage", body)).status).toBe(401);
    const foreign = await post(server, await hubToken(server, ["other/*"]), body);
    expect(foreign.status, foreign.text).toBe(403);
    const invalid = await post(server, await hubToken(server), { push_data: {}, repository: { repo_name: "acme/web" } });
    expect(invalid.status, invalid.text).toBe(400);
    expect(invalid.json.error.message).toContain("push_data.tag");
    expect(countRows(server, "triggers")).toBe(0);
    expect(countRows(server, "deployments")).toBe(0);
  });

  it("keeps the path token out of the logs and error messages", async () => {
    const server = createTestServer({ LOG_LEVEL: "debug" });
    const token = await hubToken(server);
    const res = await server.request(`/hooks/dockerhub/${token}/extra`, { method: "POST" });
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain(token);
    await post(server, token, dockerHubPush({ repoName: "acme/web", tag: "latest" }));
    expect(server.logLines.join("")).not.toContain(token);
  });
});
