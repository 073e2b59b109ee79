import { describe, expect, it } from "vitest";
import { countRows, createTestServer, registryPush, sha, type TestServer } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";

async function push(server: TestServer, tag: string, digest: string) {
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    json: registryPush({ repository: "acme/web", tag, digest }),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { deployments: Array<{ id: string; status: string }>; ignored: Array<Record<string, unknown>> };
}

async function services(server: TestServer) {
  const token = await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] });
  const res = await server.request("/api/services", { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Array<Record<string, unknown>> }).items;
}

describe("policy labels on a service", () => {
  it("shows each service's policy in /api/services", async () => {
    const server = createTestServer();
    server.swarm.addService({
      name: "web",
      image: `${repo}:v1`,
      labels: { "deployer.approve": "required", "deployer.window": "Mon-Fri 09:00-17:00 Europe/Berlin", "deployer.min-age": "30m" },
    });
    server.swarm.addService({ name: "plain", image: `${repo}:v1` });
    const [plain, web] = await services(server);
    expect(web).toMatchObject({
      name: "web",
      policy: { follow: null, approve: true, windows: ["Mon-Fri 09:00-17:00 Europe/Berlin"], minAgeSeconds: 1800, mode: "deploy" },
      policyErrors: [],
    });
    expect(plain).toMatchObject({ policy: { approve: false, windows: [], minAgeSeconds: 0, mode: "deploy" }, policyErrors: [] });
  });

  it("leaves a service whose labels cannot be read alone, and says why on the service and in the answer", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${repo}:v1`, labels: { "deployer.window": "Someday 09:00-17:00" } });
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" }, sha(1));
    const answer = await push(server, "v1", sha(1));
    expect(answer.deployments).toEqual([]);
    expect(answer.ignored).toEqual([
      { reason: "invalid_policy", service: "web", image: `${repo}:v1`, message: 'deployer.window: not days such as Mon-Fri or Sat,Sun: "Someday"' },
    ]);
    expect(countRows(server, "deployments")).toBe(0);
    const [web] = await services(server);
    expect(web).toMatchObject({ policy: null, policyErrors: ['deployer.window: not days such as Mon-Fri or Sat,Sun: "Someday"'] });
    expect(server.swarm.callsOf("updateService")).toEqual([]);
  });
});
