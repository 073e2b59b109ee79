import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Structured log lines printed so far. */
  logs: () => Array<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

/** Runs the bundle `npm start` runs (dist/server.mjs, built by the tests' global setup) as its own process on the given port. */
export function spawnServer(env: Record<string, string>, port: number): ServerProcess {
  // A docker CLI config of nobody's: the logins of this machine's ~/.docker/config.json are not the server's here.
  // Made by hand, not by tempDir(): the benchmarks and the fault suite spawn servers outside any test.
  const dockerConfig = mkdtempSync(join(tmpdir(), "deployer-docker-config-"));
  const child = spawn(process.execPath, ["dist/server.mjs"], {
    cwd: repoRoot,
    // The poller is off unless a test asks for it: on a shared engine it would touch every service there.
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/root",
      DOCKER_CONFIG: dockerConfig,
      HOST: "127.0.0.1",
      PORT: String(port),
      DEPLOYER_POLL: "false",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (c) => (out += c));
  child.stderr!.on("data", (c) => (err += c));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      rmSync(dockerConfig, { recursive: true, force: true });
      resolve(code);
    }),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    return exited;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop,
  };
}

/** Starts the server and waits for /healthz; stopped when the test ends. */
export async function startServer(env: Record<string, string>, port: number, timeoutMs = 20_000): Promise<ServerProcess> {
  const server = spawnServer(env, port);
  onTestFinished(async () => {
    await server.stop();
  });
  return waitUntilHealthy(server, timeoutMs);
}

/** Starts the server for a whole suite; the caller stops it (afterAll). */
export async function startServerUnmanaged(env: Record<string, string>, port: number, timeoutMs = 20_000): Promise<ServerProcess> {
  const server = spawnServer(env, port);
  try {
    return await waitUntilHealthy(server, timeoutMs);
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function waitUntilHealthy(server: ServerProcess, timeoutMs: number): Promise<ServerProcess> {
  const started = Date.now();
  for (;;) {
    if (server.child.exitCode !== null) {
      throw new Error(`server exited with ${server.child.exitCode}: ${server.stderr()}${server.stdout()}`);
    }
    try {
      const res = await fetch(`${server.url}/healthz`);
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > timeoutMs) throw new Error(`server did not answer /healthz within ${timeoutMs} ms: ${server.stdout()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs the server to its exit (for configuration errors). */
export async function runServerToExit(env: Record<string, string>, port: number) {
  const server = spawnServer(env, port);
  const code = await new Promise<number | null>((resolve) => server.child.once("exit", resolve));
  return { code, stdout: server.stdout(), stderr: server.stderr() };
}
