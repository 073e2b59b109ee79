import { connect } from "node:net";
import { createServer, type Server, type ServerResponse } from "node:http";
import { existsSync, statSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it, onTestFinished } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";
import { freePortOnLoopback } from "../helpers/ports.js";
import { runServerToExit, startServer } from "../helpers/server-process.js";
import { registryPush } from "../helpers/test-server.js";
import { createTokenService } from "../../server/auth/tokens.js";

/** POSTs over a real socket; `chunked` sends the body without a Content-Length. */
function postRaw(url: string, token: string, body: string, chunked: boolean): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/hooks/registry`,
      { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    if (!chunked) req.setHeader("content-length", Buffer.byteLength(body));
    // Several writes, so a chunked body really arrives in chunks.
    for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.slice(i, i + 64 * 1024));
    req.end();
  });
}

/** A server process without a Docker engine, and a webhook token it accepts. */
async function serverWithWebhookToken() {
  const dir = tempDir("deployer-proc-");
  const port = await freePortOnLoopback();
  const secret = "server-process-secret-server-process-secret";
  const server = await startServer(
    { DEPLOYER_DB: join(dir, "deployer.db"), DEPLOYER_SECRET: secret, DOCKER_HOST: `unix://${join(dir, "no-docker.sock")}` },
    port,
  );
  const token = await createTokenService({ secret, dockerHubRegistry: "docker.io" }).signWebhookToken({
    sub: "ci",
    repos: ["127.0.0.1:5000/acme/*"],
  });
  return { server, port, token };
}

/**
 * An engine on a unix socket that answers pings and records every path asked for. It knows one service; once
 * `changeOutside()` is called someone else changes its image, and the event stream, which stays open, says so.
 */
async function recordingEngine(socketPath: string): Promise<{ paths: string[]; server: Server; changeOutside(): void }> {
  const paths: string[] = [];
  let changed = false;
  const streams: ServerResponse[] = [];
  const service = () => ({
    ID: "svc1",
    Version: { Index: changed ? 12 : 11 },
    Spec: {
      Name: "web",
      Labels: {},
      TaskTemplate: { ContainerSpec: { Image: changed ? "127.0.0.1:5000/acme/web:hand" : "127.0.0.1:5000/acme/web:1" } },
    },
  });
  const server = createServer((req, res) => {
    const [path, query] = (req.url ?? "").replace(/^\/v[0-9.]+/, "").split("?") as [string, string | undefined];
    paths.push(query ? `${path}?${decodeURIComponent(query)}` : path);
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (path === "/_ping") res.writeHead(200, { "content-type": "text/plain" }).end("OK");
    else if (path === "/events") {
      res.writeHead(200, { "content-type": "application/json" }).write("");
      streams.push(res);
    } else if (path === "/services") json(200, [service()]);
    else json(404, { message: "not here" });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const changeOutside = () => {
    changed = true;
    const event = { Type: "service", Action: "update", Actor: { ID: "svc1", Attributes: { name: "web" } }, time: Math.floor(Date.now() / 1000) };
    for (const s of streams) s.write(`${JSON.stringify(event)}\n`);
  };
  return { paths, server, changeOutside };
}

/** The service version the drift watcher last saw of a service, from the server's record; undefined before its first look. */
function versionSeen(dbPath: string, serviceId: string): number | undefined {
  if (!existsSync(dbPath)) return undefined;
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("select version from service_versions where service_id = ?").get(serviceId) as { version: number } | undefined)?.version;
  } finally {
    db.close();
  }
}

/** Deployments of a trigger kind in the server's record, read beside the running process. */
function countTrigger(dbPath: string, trigger: string): number {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("select count(*) as n from deployments where trigger = ?").get(trigger) as { n: number }).n;
  } finally {
    db.close();
  }
}

describe("the server process", () => {
  it("exits 2 naming every bad variable", async () => {
    const result = await runServerToExit(
      { PORT: "eighty", DEPLOYER_POLL: "maybe", DEPLOYER_SECRET: "short", SLEEP_TIME: "soon", DEPLOYER_DB: join(tempDir("deployer-proc-"), "d.db") },
      0,
    );
    expect(result.code, result.stderr).toBe(2);
    for (const name of ["PORT", "DEPLOYER_POLL", "DEPLOYER_SECRET", "SLEEP_TIME"]) expect(result.stderr).toContain(name);
  });

  it("starts without a Docker engine: healthz 200, readyz 503 naming docker, a clear log line, a generated 0600 secret", async () => {
    const dir = tempDir("deployer-proc-");
    const port = await freePortOnLoopback();
    const server = await startServer({ DEPLOYER_DB: join(dir, "data", "deployer.db"), DOCKER_HOST: `unix://${join(dir, "no-docker.sock")}` }, port);
    const ready = await fetch(`${server.url}/readyz`);
    const body = await ready.json();
    expect(ready.status, JSON.stringify(body)).toBe(503);
    expect(body.checks.database).toBe("ok");
    expect(body.checks.docker).toMatch(/unavailable/);
    await expect.poll(() => server.logs().map((l) => l.msg)).toContainEqual(expect.stringContaining("Docker engine not reachable"));
    expect(statSync(join(dir, "data", "secret")).mode & 0o777).toBe(0o600);
    expect(await server.stop()).toBe(0);
  });

  it("reaches an ssh:// DOCKER_HOST through ssh2, which the bundle loads only on first use", async () => {
    const dir = tempDir("deployer-proc-");
    const port = await freePortOnLoopback();
    const sshPort = await freePortOnLoopback(); // nothing listens: the ssh connection is refused
    const server = await startServer({ DEPLOYER_DB: join(dir, "deployer.db"), DOCKER_HOST: `ssh://deployer@127.0.0.1:${sshPort}` }, port);
    const ready = await fetch(`${server.url}/readyz`);
    const body = await ready.json();
    expect(ready.status, JSON.stringify(body)).toBe(503);
    // A connection attempt, not a missing module: ssh2 was found and ran.
    await expect.poll(() => server.logs().find((l) => l.msg?.toString().includes("Docker engine not reachable"))?.reason).toMatch(/ECONNREFUSED/);
    expect(server.stderr()).not.toMatch(/Cannot find module|is not defined/);
    expect(await server.stop()).toBe(0);
  });

  it("answers what the HTTP parser refuses (huge headers, broken framing, an odd Expect) in the error envelope", async () => {
    const dir = tempDir("deployer-proc-");
    const port = await freePortOnLoopback();
    const server = await startServer({ DEPLOYER_DB: join(dir, "deployer.db"), DOCKER_HOST: `unix://${join(dir, "no-docker.sock")}` }, port);
    /** Sends raw bytes and returns the status and parsed body of what comes back before the server closes. */
    const raw = (bytes: string) =>
      new Promise<{ status: number; body: any }>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
        socket.on("data", (d) => chunks.push(d));
        socket.on("error", reject);
        socket.on("close", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const [head, ...rest] = text.split("\r\n\r\n");
          resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? "")?.[1]), body: JSON.parse(rest.join("\r\n\r\n")) });
        });
      });
    const cases = [
      { bytes: `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, status: 431, code: "HEADERS_TOO_LARGE" },
      { bytes: "NOT HTTP AT ALL\r\n\r\n", status: 400, code: "BAD_REQUEST" },
      {
        bytes: "POST /hooks/registry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        status: 400,
        code: "BAD_REQUEST",
      },
      { bytes: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n", status: 417, code: "EXPECTATION_FAILED" },
    ];
    for (const c of cases) {
      const res = await raw(c.bytes);
      expect(res.status, c.bytes.slice(0, 40)).toBe(c.status);
      expect(res.body.error, c.bytes.slice(0, 40)).toMatchObject({ code: c.code, message: expect.any(String), requestId: expect.any(String) });
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it("logs a client that hangs up mid-body at info, as the client's doing, not as an error", async () => {
    const { server, port, token } = await serverWithWebhookToken();
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.write(
          `POST /hooks/registry HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"events": [`,
        );
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 200);
      });
      socket.on("error", reject);
    });
    await expect.poll(() => server.logs().map((l) => l.msg)).toContainEqual("the client closed the connection before its request was read");
    expect(server.logs().filter((l) => l.msg === "unhandled error")).toEqual([]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it("reads webhook bodies over HTTP with and without a Content-Length, and refuses either over 1 MiB", async () => {
    const { server, token } = await serverWithWebhookToken();
    const push = (n: number) =>
      JSON.stringify(registryPush({ id: `evt-${n}`, repository: "acme/web", tag: "v1", digest: `sha256:${String(n).repeat(64).slice(0, 64)}` }));
    for (const chunked of [false, true]) {
      const ok = await postRaw(server.url, token, push(chunked ? 1 : 2), chunked);
      expect(ok.status, JSON.stringify(ok.json)).toBe(202);
      expect(ok.json.ignored).toEqual([expect.objectContaining({ reason: "engine_unavailable" })]);
      const big = await postRaw(server.url, token, JSON.stringify({ events: [], pad: "x".repeat(1024 * 1024) }), chunked);
      expect(big.status, JSON.stringify(big.json)).toBe(413);
      expect(big.json.error.code).toBe("PAYLOAD_TOO_LARGE");
    }
    expect(await server.stop()).toBe(0);
  });

  it("records a change made outside the server unless DEPLOYER_DRIFT=false; the service index follows the events either way", async () => {
    for (const drift of [undefined, "false"]) {
      const dir = tempDir("deployer-proc-");
      const engine = await recordingEngine(join(dir, "engine.sock"));
      const dbPath = join(dir, "deployer.db");
      const env: Record<string, string> = { DEPLOYER_DB: dbPath, DOCKER_HOST: `unix://${join(dir, "engine.sock")}` };
      if (drift) env.DEPLOYER_DRIFT = drift;
      const server = await startServer(env, await freePortOnLoopback());
      // Each listener has had its first look (for the drift watcher, what it compares with: the record has it); then the change.
      await expect
        .poll(() => engine.paths.filter((p) => p.startsWith("/services") && !p.includes("filters")).length, { timeout: 10_000 })
        .toBeGreaterThan(0);
      if (drift === undefined) await expect.poll(() => versionSeen(dbPath, "svc1"), { timeout: 10_000 }).toBe(11);
      expect(engine.paths.filter((p) => p.startsWith("/events")).length).toBeGreaterThan(0);
      engine.changeOutside();
      // The index inspects the service the event names: the change has reached the server.
      await expect.poll(() => engine.paths.some((p) => p.startsWith("/services?") && p.includes("svc1")), { timeout: 10_000 }).toBe(true);
      if (drift === undefined) {
        await expect.poll(() => countTrigger(dbPath, "external")).toBe(1);
        expect(await server.stop()).toBe(0);
      } else {
        expect(server.logs().map((l) => l.msg)).toContainEqual(expect.stringContaining("DEPLOYER_DRIFT=false"));
        // Counted once the process has shut down, so a recording under way would have been written by then.
        expect(await server.stop()).toBe(0);
        expect(countTrigger(dbPath, "external")).toBe(0);
      }
    }
  });
});
