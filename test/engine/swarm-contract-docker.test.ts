import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type Docker from "dockerode";
import { describe, expect, it, onTestFinished } from "vitest";
import { createDockerClient } from "../../server/engine/docker-client.js";
import { createDockerodeSwarm } from "../../server/engine/dockerode-swarm.js";
import { SwarmConflictError, SwarmNotFoundError, SwarmUnavailableError } from "../../server/engine/swarm-port.js";
import { createTestService, describeDocker, removeService, waitFor } from "../helpers/docker-env.js";
import { buildImage, docker, ensureBaseImage, removeImages } from "../helpers/images.js";
import { runSwarmContract } from "./swarm-contract.js";

const CONTEXT = fileURLToPath(new URL("../fixtures/contract/", import.meta.url));

describeDocker("dockerode swarm on a real engine", () => {
  runSwarmContract("createDockerodeSwarm", async () => {
    // Plain local tags: images are node-local, which is all a one-node swarm needs.
    const run = randomBytes(3).toString("hex");
    const images = {
      good: `deployer-contract:good-${run}`,
      good2: `deployer-contract:good2-${run}`,
      failing: `deployer-contract:failing-${run}`,
    };
    const base = await ensureBaseImage();
    const build = (tag: string, behaviour: string, variant: string) =>
      buildImage({ tag, context: CONTEXT, buildArgs: { BASE: base, BEHAVIOUR: behaviour, VARIANT: variant } });
    await build(images.good, "serve", `good-${run}`);
    await build(images.good2, "serve", `good2-${run}`);
    await build(images.failing, "fail", `failing-${run}`);

    return {
      swarm: createDockerodeSwarm(createDockerClient()),
      images,
      imageRepository: "deployer-contract",
      async tagImage(existing, reference) {
        await docker(["tag", existing, reference]);
      },
      createService: (opts) =>
        createTestService({
          name: opts.name,
          image: opts.image,
          replicas: opts.replicas,
          labels: opts.labels,
          job: opts.job,
          // A job takes no update or rollback policy.
          ...(opts.job
            ? {}
            : {
                updateConfig: { parallelism: 1, failureAction: opts.failureAction, monitorMs: opts.monitorMs },
                // A short rollback monitor too: swarm watches rolled-back tasks with RollbackConfig (default 5 s).
                rollbackConfig: { parallelism: 1, failureAction: "pause", monitorMs: 1000 },
              }),
          stopGracePeriodMs: 2000,
        }),
      removeService,
      waitFor: (check, what) => waitFor(check, { timeoutMs: 45_000, intervalMs: 200, what }),
      teardown: () => removeImages(images.good, images.good2, images.failing),
    };
  });
});

describeDocker("createDockerodeSwarm against the engine's own version check", () => {
  it("maps the daemon's 'update out of sequence' to SwarmConflictError", async () => {
    const docker = createDockerClient();
    const base = await ensureBaseImage();
    const id = await createTestService({
      name: `contract-${randomBytes(4).toString("hex")}`,
      image: base,
      command: ["sleep", "600"],
      stopGracePeriodMs: 500,
    });
    onTestFinished(() => removeService(id));
    const snapshot = (await docker.getService(id).inspect()) as { Version: { Index: number } };
    await createDockerodeSwarm(docker).updateService(id, snapshot.Version.Index, { image: base, force: true });
    // A client whose inspect still answers the old snapshot passes the adapter's
    // own version check, so the stale version reaches the daemon, as in a race.
    const stale = Object.create(docker) as Docker;
    stale.getService = (serviceId: string) => Object.assign(docker.getService(serviceId), { inspect: async () => snapshot });
    const err = await createDockerodeSwarm(stale)
      .updateService(id, snapshot.Version.Index, { image: base, force: true })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmConflictError);
    expect((err as Error).message).toContain("update out of sequence");
  });
});

interface Recorded {
  method: string;
  url: URL;
  headers: IncomingMessage["headers"];
  body: unknown;
}

/** A stand-in Engine API on 127.0.0.1 that records requests: what goes over the wire, without Docker. */
async function startFakeEngine(answer: (req: Recorded, res: ServerResponse) => void) {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const recorded = {
        method: req.method ?? "",
        url: new URL(req.url ?? "/", "http://engine"),
        headers: req.headers,
        body: text ? (JSON.parse(text) as unknown) : undefined,
      };
      requests.push(recorded);
      answer(recorded, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { requests, docker: createDockerClient(`tcp://127.0.0.1:${port}`) };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

const SPEC = {
  Name: "web",
  Labels: { "com.docker.stack.namespace": "shop" },
  TaskTemplate: {
    ContainerSpec: { Image: "127.0.0.1:5000/web:v1@sha256:aaa", Env: ["A=1"], Init: true },
    ForceUpdate: 3,
    RestartPolicy: { Condition: "any" },
  },
  Mode: { Replicated: { Replicas: 2 } },
  UpdateConfig: { Parallelism: 1, FailureAction: "rollback", Monitor: 15_000_000_000, Order: "stop-first" },
  EndpointSpec: { Mode: "vip" },
};

/** Answers inspect of `web` (id svc1) at version 7 and update with `updateAnswer`. */
function engineWithService(updateAnswer: (res: ServerResponse) => void = (res) => json(res, 200, { Warnings: null })) {
  return startFakeEngine((req, res) => {
    if (req.method === "GET" && /^\/(v[\d.]+\/)?services\/(svc1|web)$/.test(req.url.pathname)) {
      return json(res, 200, { ID: "svc1", Version: { Index: 7 }, Spec: SPEC });
    }
    if (req.method === "POST" && req.url.pathname.endsWith("/services/svc1/update")) return updateAnswer(res);
    json(res, 404, { message: `no such route ${req.url.pathname}` });
  });
}

describe("createDockerodeSwarm on the wire", () => {
  it("sends the inspected spec with only the image changed, and only version and registryAuthFrom in the query", async () => {
    const engine = await engineWithService();
    const auth = Buffer.from(JSON.stringify({ username: "u", password: "p" })).toString("base64url");
    const result = await createDockerodeSwarm(engine.docker).updateService("web", 7, {
      image: "127.0.0.1:5000/web:v2@sha256:bbb",
      registryAuth: auth,
    });
    expect(result).toEqual({ warnings: [] });
    const update = engine.requests.find((r) => r.method === "POST");
    expect(update?.url.pathname).toMatch(/^(\/v[\d.]+)?\/services\/svc1\/update$/);
    expect([...(update?.url.searchParams ?? [])]).toEqual([
      ["version", "7"],
      ["registryAuthFrom", "spec"],
    ]);
    expect(update?.headers["x-registry-auth"]).toBe(auth);
    const expected = structuredClone(SPEC);
    expected.TaskTemplate.ContainerSpec.Image = "127.0.0.1:5000/web:v2@sha256:bbb";
    expect(update?.body).toEqual(expected);
  });

  it("increments ForceUpdate when forced and sends no X-Registry-Auth without auth", async () => {
    const engine = await engineWithService((res) => json(res, 200, { Warnings: ["image could not be accessed"] }));
    const result = await createDockerodeSwarm(engine.docker).updateService("svc1", 7, { image: "web:v1", force: true });
    expect(result.warnings).toEqual(["image could not be accessed"]);
    const update = engine.requests.find((r) => r.method === "POST");
    expect(update?.headers["x-registry-auth"]).toBeUndefined();
    expect(update?.body).toMatchObject({ TaskTemplate: { ForceUpdate: 4, ContainerSpec: { Image: "web:v1" } } });
  });

  it("lays UpdateConfig fields over the spec's in nanoseconds, and starts a missing RollbackConfig from swarm's defaults", async () => {
    const engine = await engineWithService();
    await createDockerodeSwarm(engine.docker).updateService("svc1", 7, {
      image: "web:v2",
      updateConfig: { parallelism: 3, delayMs: 2500, order: "start-first" },
      rollbackConfig: { monitorMs: 1500 },
    });
    const update = engine.requests.find((r) => r.method === "POST");
    expect(update?.body).toMatchObject({
      UpdateConfig: { Parallelism: 3, Delay: 2_500_000_000, FailureAction: "rollback", Monitor: 15_000_000_000, Order: "start-first" },
      RollbackConfig: { Parallelism: 1, FailureAction: "pause", Monitor: 1_500_000_000, MaxFailureRatio: 0, Order: "stop-first" },
    });
  });

  it("lists images by reference filter and removes a reference without force, mapping 409 to SwarmConflictError", async () => {
    const engine = await startFakeEngine((req, res) => {
      if (req.method === "GET" && req.url.pathname.endsWith("/images/json")) {
        return json(res, 200, [{ Id: "sha256:a", RepoTags: ["<none>:<none>"], RepoDigests: ["127.0.0.1:5000/app@sha256:d"], Created: 1700000000 }]);
      }
      if (req.method === "DELETE") return json(res, 409, { message: "conflict: unable to remove repository reference" });
      json(res, 404, { message: "no such route" });
    });
    const swarm = createDockerodeSwarm(engine.docker);
    expect(await swarm.listImages("127.0.0.1:5000/app")).toEqual([
      { id: "sha256:a", references: ["127.0.0.1:5000/app@sha256:d"], created: 1700000000 },
    ]);
    expect(engine.requests[0]?.url.searchParams.get("filters")).toBe(JSON.stringify({ reference: ["127.0.0.1:5000/app"] }));
    await expect(swarm.removeImageReference("127.0.0.1:5000/app@sha256:d")).rejects.toBeInstanceOf(SwarmConflictError);
    const removal = engine.requests.find((r) => r.method === "DELETE");
    expect([...(removal?.url.searchParams ?? [])]).toEqual([]);
  });

  it("refuses a stale version before sending anything", async () => {
    const engine = await engineWithService();
    await expect(createDockerodeSwarm(engine.docker).updateService("svc1", 6, { image: "web:v2" })).rejects.toBeInstanceOf(SwarmConflictError);
    expect(engine.requests.filter((r) => r.method === "POST")).toEqual([]);
  });

  it("maps a 500 'update out of sequence' to SwarmConflictError and other answers to SwarmUnavailableError", async () => {
    const conflict = await engineWithService((res) => json(res, 500, { message: "rpc error: code = Unknown desc = update out of sequence" }));
    await expect(createDockerodeSwarm(conflict.docker).updateService("svc1", 7, { image: "x" })).rejects.toBeInstanceOf(SwarmConflictError);
    const broken = await engineWithService((res) => json(res, 500, { message: "rpc error: code = Unavailable" }));
    await expect(createDockerodeSwarm(broken.docker).updateService("svc1", 7, { image: "x" })).rejects.toBeInstanceOf(SwarmUnavailableError);
    await expect(createDockerodeSwarm(broken.docker).updateService("gone", 7, { image: "x" })).rejects.toBeInstanceOf(SwarmNotFoundError);
  });

  it("asks for a server-side rollback with rollback=previous and the current spec", async () => {
    const engine = await engineWithService();
    await createDockerodeSwarm(engine.docker).rollbackService("svc1", 7);
    const update = engine.requests.find((r) => r.method === "POST");
    expect([...(update?.url.searchParams ?? [])]).toEqual([
      ["version", "7"],
      ["rollback", "previous"],
    ]);
    expect(update?.body).toEqual(SPEC);
  });

  it("maps the spec: Monitor in ms, FailureAction, PreviousSpec's image and the six update states", async () => {
    const engine = await startFakeEngine((req, res) =>
      json(res, 200, {
        ID: "svc2",
        Version: { Index: 9 },
        Spec: { Name: "api", TaskTemplate: { ContainerSpec: { Image: "api:2" } }, Mode: { Global: {} }, UpdateConfig: {} },
        PreviousSpec: { Name: "api", TaskTemplate: { ContainerSpec: { Image: "api:1" } } },
        UpdateStatus: {
          State: "rollback_paused",
          Message: "rollback paused",
          StartedAt: "2026-01-01T00:00:00Z",
          CompletedAt: "0001-01-01T00:00:00Z",
        },
      }),
    );
    expect(await createDockerodeSwarm(engine.docker).findService("api")).toEqual({
      id: "svc2",
      name: "api",
      version: 9,
      image: "api:2",
      labels: {},
      mode: "global",
      job: false,
      replicas: undefined,
      forceUpdate: 0,
      monitorMs: 5000,
      failureAction: "pause",
      previousImage: "api:1",
      updateStatus: { state: "rollback_paused", message: "rollback paused", startedAt: "2026-01-01T00:00:00Z", completedAt: undefined },
      updatePolicy: {},
      rollbackPolicy: {},
    });
  });

  it("does not take an ID-prefix match for the service asked for", async () => {
    const engine = await engineWithService();
    expect(await createDockerodeSwarm(engine.docker).findService("web")).toBeDefined();
    // The engine resolves unique ID prefixes; "svc" would find svc1 there.
    const prefix = await startFakeEngine((req, res) => json(res, 200, { ID: "svc1", Version: { Index: 7 }, Spec: SPEC }));
    expect(await createDockerodeSwarm(prefix.docker).findService("svc")).toBeUndefined();
  });

  it("lists tasks newest first, also when Go cut trailing zeros off the fraction", async () => {
    const task = (id: string, Timestamp: string) => ({ ID: id, ServiceID: "svc1", DesiredState: "running", Status: { State: "running", Timestamp } });
    const engine = await startFakeEngine((req, res) =>
      json(res, 200, [task("a", "2026-01-01T00:00:06.5965Z"), task("b", "2026-01-01T00:00:06.596519021Z"), task("c", "2026-01-01T00:00:06Z")]),
    );
    const tasks = await createDockerodeSwarm(engine.docker).listTasks("svc1");
    expect(tasks.map((t) => t.id)).toEqual(["b", "a", "c"]);
    expect(engine.requests[0]?.url.searchParams.get("filters")).toBe(JSON.stringify({ service: ["svc1"] }));
  });

  it("reports an engine that is not a swarm manager, or does not answer, as SwarmUnavailableError", async () => {
    const worker = await startFakeEngine((req, res) => json(res, 200, { Swarm: { LocalNodeState: "inactive", ControlAvailable: false } }));
    await expect(createDockerodeSwarm(worker.docker).ping()).rejects.toThrow(/not a swarm manager/);
    const hung = await startFakeEngine(() => {});
    const err = await createDockerodeSwarm(hung.docker, { requestTimeoutMs: 200 })
      .listServices()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmUnavailableError);
    const closed = createDockerodeSwarm(createDockerClient("unix:///nonexistent/docker.sock"));
    await expect(closed.ping()).rejects.toBeInstanceOf(SwarmUnavailableError);
  });
});
