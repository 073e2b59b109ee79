/**
 * Engine answers that refuse a request (a 4xx), through the dockerode adapter against a stand-in Engine API
 * that answers as moby does: a refusal is not an outage, and no client input turns into one.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { createDockerClient } from "../../server/engine/docker-client.js";
import { createDockerodeSwarm } from "../../server/engine/dockerode-swarm.js";
import { SwarmUnavailableError } from "../../server/engine/swarm-port.js";

const spec = {
  Name: "web",
  Labels: {},
  TaskTemplate: { ContainerSpec: { Image: "127.0.0.1:5000/acme/web:1" } },
  Mode: { Replicated: { Replicas: 1 } },
};

async function engine(answers: Record<string, [number, unknown]>) {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://engine").pathname.replace(/^\/v[0-9.]+/, "");
    const [status, body] = answers[`${req.method} ${path}`] ?? [404, { message: `no ${path}` }];
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return createDockerodeSwarm(createDockerClient(`tcp://127.0.0.1:${(server.address() as AddressInfo).port}`));
}

describe("the engine refusing a request", () => {
  it("finds no service by a name that is the start of several service IDs (moby: 400, ambiguous)", async () => {
    const swarm = await engine({ "GET /services/a": [400, { message: "service a is ambiguous (2 matches found)" }] });
    expect(await swarm.findService("a")).toBeUndefined();
  });

  it("says the engine answered, with its status, when it refuses an update's spec", async () => {
    const swarm = await engine({
      "GET /services/svc1": [200, { ID: "svc1", Version: { Index: 7 }, Spec: spec }],
      "POST /services/svc1/update": [400, { message: "rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided" }],
    });
    const refused = await swarm
      .updateService("svc1", 7, { image: "127.0.0.1:5000/acme/web:2@sha256:" + "a".repeat(64) })
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SwarmUnavailableError);
    expect(refused).toMatchObject({ status: 400, answerLost: false });
  });

  it("keeps an engine that does not answer apart: no status", async () => {
    const swarm = createDockerodeSwarm(createDockerClient("tcp://127.0.0.1:9"));
    const down = await swarm.findService("web").catch((err: unknown) => err);
    expect(down).toBeInstanceOf(SwarmUnavailableError);
    expect((down as SwarmUnavailableError).status).toBeUndefined();
  });
});
