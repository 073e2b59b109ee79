import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";
import { freePortOnLoopback } from "../helpers/ports.js";
import { runServerToExit, startServer } from "../helpers/server-process.js";

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
});
