/**
 * No Engine API request path is built from unescaped input, and no answer of
 * the engine can crash the process. The real dockerode adapter talks to a
 * recording Engine API on a unix socket, which checks every path it is sent;
 * the same hostile inputs then go to the real engine (describeDocker).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { join, posix } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDockerClient } from "../../server/engine/docker-client.js";
import { createDockerodeSwarm } from "../../server/engine/dockerode-swarm.js";
import { SwarmConflictError, SwarmNotFoundError, SwarmUnavailableError, type SwarmPort } from "../../server/engine/swarm-port.js";
import { describeDocker } from "../helpers/docker-env.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Names a hostile client sent in the fault run, and their cousins. */
const HOSTILE = [
  "x/../..",
  "../../info",
  "..%2F..%2Finfo",
  "..",
  ".",
  "",
  "a b",
  " OR 1=1",
  "a\0b",
  "a\r\nX-Injected: 1",
  "é",
  "\u{1F600}",
  "a?b=c",
  "a#b",
  "a/b",
  "web/update",
  "-web",
  "web-",
  "a".repeat(64),
];

/** The paths the adapter may send, with the one part taken from input. */
const ALLOWED = [
  /^\/info$/,
  /^\/services$/,
  /^\/services\/(?<ref>[^/]+)$/,
  /^\/services\/(?<ref>[^/]+)\/update$/,
  /^\/tasks$/,
  /^\/images\/json$/,
  /^\/containers\/json$/,
  /^\/images\/(?<image>.+)$/,
];
const SERVICE_REF = /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$/;

interface Recorded {
  method: string;
  url: string;
}

/** Why a raw request path is unsafe, or undefined when it is fine. */
function unsafe(url: string): string | undefined {
  const path = url.split("?")[0]!;
  if (!/^[A-Za-z0-9/%._~!*'()-]+$/.test(path)) return "raw characters outside the escaped set";
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return "bad percent-escape";
  }
  // The engine decodes, then cleans; a path that cleaning changes reaches another endpoint.
  if (posix.normalize(decoded) !== decoded || decoded.endsWith("/")) return `cleaned by the engine to ${posix.normalize(decoded)}`;
  const match = ALLOWED.map((re) => re.exec(path)).find(Boolean);
  if (!match) return "not an endpoint the adapter uses";
  const ref = match.groups?.ref;
  if (ref !== undefined && !SERVICE_REF.test(decodeURIComponent(ref))) return `service segment ${ref} is not a service name`;
  return undefined;
}

/**
 * A stand-in for the Engine API that records every request; `redirect` answers everything with a 301, and
 * `update` says how an update is answered: as the engine does, with its error, by a dropped connection, or never.
 */
async function recordingEngine(mode: Mode, requestTimeoutMs = 2000) {
  const requests: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "" });
    req.resume();
    if (mode.redirect) {
      res.writeHead(301, { location: "/" }).end();
      return;
    }
    const path = (req.url ?? "").split("?")[0]!;
    if (path.endsWith("/update") && mode.update === "drop") return void req.on("end", () => req.socket.destroy());
    if (path.endsWith("/update") && mode.update === "never") return;
    if (path.endsWith("/update") && mode.update === "gateway") {
      return void res.writeHead(504, { "content-type": "text/plain" }).end("upstream timed out");
    }
    if (path.endsWith("/update") && mode.update === "refuse") {
      return void res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ message: "rpc error: code = Unknown desc = no" }));
    }
    const service = /^\/services\/([^/]+)$/.exec(path);
    const json = (body: unknown, status = 200) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (path === "/info") return json({ Swarm: { LocalNodeState: "active", ControlAvailable: true } });
    if (service) {
      const id = decodeURIComponent(service[1]!);
      return json({ ID: id, Version: { Index: 7 }, Spec: { Name: id, TaskTemplate: { ContainerSpec: { Image: "app:1" } } } });
    }
    if (path.endsWith("/update")) return json({ Warnings: null });
    if (["/services", "/tasks", "/images/json", "/containers/json"].includes(path)) return json([]);
    if (req.method === "DELETE" && path.startsWith("/images/")) return json([]);
    return json({ message: "page not found" }, 404);
  });
  const socket = join(tempDir("engine-paths-"), "docker.sock");
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const swarm = createDockerodeSwarm(createDockerClient(`unix://${socket}`), { requestTimeoutMs });
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { swarm, requests, close };
}

interface Mode {
  redirect: boolean;
  update?: "drop" | "never" | "refuse" | "gateway";
}

/** Every port method called with `input` wherever it takes a name, id or reference. */
function callsWith(swarm: SwarmPort, input: string): Array<[string, () => Promise<unknown>]> {
  return [
    ["findService", () => swarm.findService(input)],
    ["updateService", () => swarm.updateService(input, 7, { image: "app:2" })],
    ["rollbackService", () => swarm.rollbackService(input, 7)],
    ["listTasks", () => swarm.listTasks(input)],
    ["listImages", () => swarm.listImages(input)],
    ["removeImageReference", () => swarm.removeImageReference(input)],
  ];
}

describe("Engine API request paths", () => {
  let engine: Awaited<ReturnType<typeof recordingEngine>>;
  const mode: Mode = { redirect: false };
  beforeEach(async () => {
    mode.redirect = false;
    mode.update = undefined;
    engine = await recordingEngine(mode);
  });
  afterEach(() => engine.close());

  it("carry no hostile name, id or reference unescaped, whatever each method is given", async () => {
    for (const input of HOSTILE) {
      for (const [method, call] of callsWith(engine.swarm, input)) {
        const before = engine.requests.length;
        const outcome = await call().then(
          (value) => ({ value }),
          (err: unknown) => ({ err }),
        );
        // Either refused without a request, or sent with every part escaped.
        for (const r of engine.requests.slice(before)) {
          expect(unsafe(r.url), `${method}(${JSON.stringify(input)}) sent ${r.method} ${r.url}`).toBeUndefined();
        }
        if ("err" in outcome) {
          expect(outcome.err, `${method}(${JSON.stringify(input)})`).toBeInstanceOf(SwarmNotFoundError);
        }
      }
    }
    // Services are never asked for by a hostile name at all.
    const serviceRequests = engine.requests.filter((r) => r.url.startsWith("/services/"));
    expect(serviceRequests).toEqual([]);
  });

  it("send valid names and references, escaped, to the endpoints they name", async () => {
    await engine.swarm.findService("stack_web-1");
    await engine.swarm.updateService("abcdefghijklmnopqrstuvwxy", 7, { image: "app:2" });
    await engine.swarm.removeImageReference("127.0.0.1:5000/acme/web:1.0@sha256:" + "a".repeat(64));
    expect(engine.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`)).toEqual([
      "GET /services/stack_web-1",
      "GET /services/abcdefghijklmnopqrstuvwxy",
      "POST /services/abcdefghijklmnopqrstuvwxy/update",
      `DELETE /images/127.0.0.1%3A5000/acme/web%3A1.0%40sha256%3A${"a".repeat(64)}`,
    ]);
    for (const r of engine.requests) expect(unsafe(r.url), r.url).toBeUndefined();
  });

  it("update from the spec read at the same version without reading it again, and read again for another version", async () => {
    const found = await engine.swarm.findService("svc-a");
    expect(found?.version).toBe(7);
    await engine.swarm.updateService("svc-a", 7, { image: "app:2" });
    await engine.swarm.rollbackService("svc-a", 7);
    // A caller that holds another version than the one read last: read again (the engine is at 7, so it is refused).
    await expect(engine.swarm.updateService("svc-a", 6, { image: "app:3" })).rejects.toBeInstanceOf(SwarmConflictError);
    expect(engine.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`)).toEqual([
      "GET /services/svc-a",
      "POST /services/svc-a/update",
      "POST /services/svc-a/update",
      "GET /services/svc-a",
    ]);
  });

  it("answer a redirect from the engine as an error of the call, and the process goes on", async () => {
    mode.redirect = true;
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["ping", () => engine.swarm.ping()],
      ["listServices", () => engine.swarm.listServices()],
      ["listContainerImageIds", () => engine.swarm.listContainerImageIds()],
      ...callsWith(engine.swarm, "web"),
    ];
    for (const [method, call] of calls) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, method).toBeInstanceOf(SwarmUnavailableError);
      expect((err as Error).message, method).toContain("301");
    }
    expect(engine.requests.length).toBeGreaterThanOrEqual(calls.length);
  });
});

describe("an update the engine may have taken without an answer", () => {
  const lost = async (update: Mode["update"], requestTimeoutMs = 2000) => {
    const engine = await recordingEngine({ redirect: false, update }, requestTimeoutMs);
    try {
      await engine.swarm.findService("svc-a");
      return await engine.swarm.updateService("svc-a", 7, { image: "app:2" }).then(
        () => undefined,
        (err: unknown) => err as SwarmUnavailableError,
      );
    } finally {
      await engine.close();
    }
  };

  it("fails as unavailable with its answer lost when the connection drops or the deadline passes after the request was sent", async () => {
    const dropped = await lost("drop");
    expect(dropped).toBeInstanceOf(SwarmUnavailableError);
    expect(dropped).toMatchObject({ answerLost: true, message: expect.stringContaining("cannot reach the Docker engine") });
    // A proxy in front of the engine that gave up waiting on it.
    expect(await lost("gateway")).toMatchObject({ answerLost: true, message: expect.stringContaining("answered 504") });
    const unanswered = await lost("never", 50);
    expect(unanswered).toBeInstanceOf(SwarmUnavailableError);
    expect(unanswered).toMatchObject({ answerLost: true, message: expect.stringContaining("did not answer within 50 ms") });
  });

  it("fails with no answer lost when the engine answers with an error, or cannot be reached at all", async () => {
    const refused = await lost("refuse");
    expect(refused).toBeInstanceOf(SwarmUnavailableError);
    expect(refused).toMatchObject({ answerLost: false, message: expect.stringContaining("answered 500") });
    const nowhere = createDockerodeSwarm(createDockerClient(`unix://${join(tempDir("engine-paths-"), "none.sock")}`));
    const unreachable = await nowhere.updateService("svc-a", 7, { image: "app:2" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(unreachable).toBeInstanceOf(SwarmUnavailableError);
    expect(unreachable).toMatchObject({ answerLost: false });
  });
});

describeDocker("hostile names against the real engine", () => {
  it("find nothing, update nothing and leave the engine answering", async () => {
    const swarm = createDockerodeSwarm(createDockerClient());
    for (const input of HOSTILE) {
      expect(await swarm.findService(input), JSON.stringify(input)).toBeUndefined();
      await expect(swarm.updateService(input, 1, { image: "app:2" }), JSON.stringify(input)).rejects.toBeInstanceOf(SwarmNotFoundError);
      await expect(swarm.rollbackService(input, 1), JSON.stringify(input)).rejects.toBeInstanceOf(SwarmNotFoundError);
      await expect(swarm.removeImageReference(input), JSON.stringify(input)).rejects.toSatisfy(
        (e) => e instanceof SwarmNotFoundError || e instanceof SwarmUnavailableError,
      );
    }
    await expect(swarm.ping()).resolves.toBeUndefined();
  });
});
