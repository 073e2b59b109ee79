/**
 * Shared plumbing for the suites that need a real Docker engine in swarm mode
 * and a local `docker-registry`.
 *
 * Facts these helpers are built around:
 * - Swarm's ingress routing mesh does not work on the test machines (no IPVS),
 *   so services publish with PublishMode "host" and are reached on 127.0.0.1.
 *   Consequence: two tasks of one service cannot hold the same published port
 *   at once, so start-first updates or replicas > 1 with a published port stall.
 * - The engine trusts 127.0.0.0/8 as an insecure registry by default, so a
 *   plain-HTTP registry on 127.0.0.1:<port> needs no daemon configuration.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { freePortOnLoopback } from "./ports.js";
import { randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Docker from "dockerode";
import { describe, it, type SuiteOptions } from "vitest";
import type { UpdatePolicy } from "../../server/engine/swarm-port.js";
import { docker as dockerCli, removeImagesOfRegistry } from "./images.js";

export type DockerStatus = { ok: true } | { ok: false; reason: string };

async function onPath(bin: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    try {
      await access(path.join(dir, bin), fsConstants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

async function probeDocker(): Promise<DockerStatus> {
  let info;
  try {
    info = await dockerCli(["info", "--format", "{{json .Swarm}}"], { allowFailure: true, timeoutMs: 15_000 });
  } catch (e) {
    return { ok: false, reason: `docker CLI not usable: ${(e as Error).message}` };
  }
  if (info.code !== 0) {
    const why = (info.stderr.trim() || info.stdout.trim()).split("\n")[0] ?? "";
    return { ok: false, reason: `docker info failed (is dockerd running?): ${why}` };
  }
  let swarm: { LocalNodeState?: string; ControlAvailable?: boolean };
  try {
    swarm = JSON.parse(info.stdout) as typeof swarm;
  } catch {
    return { ok: false, reason: `docker info printed unexpected output: ${info.stdout.slice(0, 200)}` };
  }
  if (swarm.LocalNodeState !== "active") {
    return {
      ok: false,
      reason: `swarm mode is not active (LocalNodeState=${swarm.LocalNodeState ?? "?"}); run: docker swarm init --advertise-addr 127.0.0.1`,
    };
  }
  if (!swarm.ControlAvailable) {
    return { ok: false, reason: "this node is a swarm worker, not a manager; the suites need a manager" };
  }
  if (!(await onPath("docker-registry"))) {
    return { ok: false, reason: "docker-registry is not on PATH (Debian package docker-registry)" };
  }
  return { ok: true };
}

let statusPromise: Promise<DockerStatus> | undefined;

export function dockerStatus(): Promise<DockerStatus> {
  statusPromise ??= probeDocker();
  return statusPromise;
}

// Computed at import time because vitest collects describe() blocks synchronously:
// the decision to run, skip or fail has to be known before the first describeDocker call.
const status = await dockerStatus();
const requireDocker = process.env.REQUIRE_DOCKER === "1";
let skipNoticePrinted = false;

/**
 * `describe` for suites that need Docker. Without a usable engine the suite is
 * skipped with one notice line, except under REQUIRE_DOCKER=1 (CI), where it
 * fails with the reason so a broken environment cannot pass as green.
 */
export const describeDocker = (name: string, fn: () => void, options: SuiteOptions = {}): void => {
  if (status.ok) {
    describe(name, options, fn);
    return;
  }
  const reason = status.reason;
  if (requireDocker) {
    describe(name, options, () => {
      it("has a usable Docker swarm environment (REQUIRE_DOCKER=1)", () => {
        throw new Error(`REQUIRE_DOCKER=1 but Docker is not usable: ${reason}`);
      });
    });
    return;
  }
  if (!skipNoticePrinted) {
    skipNoticePrinted = true;
    console.warn(`[docker suites skipped] ${reason}`);
  }
  describe.skip(name, options, fn);
};

/** A free port on 127.0.0.1 (the same helper the Docker-free tests use). */
export const freePort = freePortOnLoopback;

/**
 * A name valid both as a swarm service name and as a registry repository
 * (lowercase alphanumerics and single dashes), unique per call.
 */
export function uniqueName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  const suffix = randomBytes(4).toString("hex");
  return clean ? `${clean}-${suffix}` : `t-${suffix}`;
}

export interface TestRegistry {
  /** "127.0.0.1:<port>", the prefix for image references. */
  host: string;
  port: number;
  /** The registry's process id. */
  pid: number | undefined;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  notify?: { url: string; authorization?: string };
  port?: number;
  /** The address it listens on (127.0.0.1 unless given: a multi-node swarm's bridge address). */
  address?: string;
  /** An htpasswd file (bcrypt entries): the registry then requires a login for every request. */
  htpasswd?: string;
}

function registryConfig(opts: { port: number; root: string } & RegistryOptions): string {
  // Strings are JSON-quoted, which YAML reads verbatim, so URLs and tokens need no escaping rules of their own.
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${q(opts.root)}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${q(`${opts.address ?? "127.0.0.1"}:${opts.port}`)}`,
  ];
  if (opts.htpasswd) lines.push("auth:", "  htpasswd:", `    realm: ${q("deployer-tests")}`, `    path: ${q(opts.htpasswd)}`);
  if (opts.notify) {
    lines.push("notifications:", "  endpoints:", "    - name: deployer", `      url: ${q(opts.notify.url)}`);
    if (opts.notify.authorization !== undefined) {
      lines.push("      headers:", `        Authorization: [${q(opts.notify.authorization)}]`);
    }
    lines.push(
      "      timeout: 2s",
      "      threshold: 3",
      "      backoff: 1s",
      // Blob pushes carry this media type; only manifest events matter to the deployer.
      "      ignoredmediatypes:",
      "        - application/octet-stream",
    );
  }
  return lines.join("\n") + "\n";
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function launchRegistry(dir: string, port: number, opts: RegistryOptions): Promise<ChildProcess> {
  const config = path.join(dir, "config.yml");
  const root = path.join(dir, "data");
  const address = opts.address ?? "127.0.0.1";
  await mkdir(root, { recursive: true });
  await writeFile(config, registryConfig({ ...opts, port, root }));

  const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (b: Buffer) => {
    // Only the start-up output is kept, for the error message; later logs are drained and dropped.
    if (output.length < 8000) output += b.toString("utf8");
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let spawnError: Error | undefined;
  child.on("error", (e) => (spawnError = e));

  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`docker-registry could not be started: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) on port ${port}:\n${output.trim()}`);
    }
    try {
      const res = await fetch(`http://${address}:${port}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      // With a login required, the anonymous probe's 401 is the answer of a registry that is up.
      if (res.status === (opts.htpasswd ? 401 : 200)) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`docker-registry on ${address}:${port} did not answer /v2/ within 15s:\n${output.trim()}`);
}

/**
 * Starts a private `docker-registry` on 127.0.0.1 (or `address`) with its own
 * storage and, when `notify` is given, a notification endpoint pointing at the deployer.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(tmpdir(), "deployer-registry-"));
  let child: ChildProcess | undefined;
  let port = 0;
  try {
    // A port from freePort() can be taken by someone else before the registry binds it; retry with a fresh one.
    const attempts = opts.port ? 1 : 3;
    for (let i = 1; i <= attempts; i++) {
      port = opts.port ?? (await freePort());
      try {
        child = await launchRegistry(dir, port, opts);
        break;
      } catch (e) {
        if (i === attempts) throw e;
      }
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const proc = child!;
  let stopped: Promise<void> | undefined;
  const host = `${opts.address ?? "127.0.0.1"}:${port}`;
  return {
    host,
    port,
    pid: proc.pid,
    stop() {
      stopped ??= (async () => {
        proc.kill("SIGTERM");
        if (!(await waitExit(proc, 5000))) {
          proc.kill("SIGKILL");
          await waitExit(proc, 5000);
        }
        await rm(dir, { recursive: true, force: true });
        await removeImagesOfRegistry(host);
      })();
      return stopped;
    },
  };
}

export function createDockerClient(): Docker {
  // Honours DOCKER_HOST when set, else the local socket.
  return new Docker();
}

let sharedClient: Docker | undefined;
function client(): Docker {
  sharedClient ??= createDockerClient();
  return sharedClient;
}

/** The server's update policy type. `order: "start-first"` cannot work with a host-mode published port on one node; see the module comment. */
export type TestUpdateConfig = UpdatePolicy;

export interface TestHealthcheck {
  /** e.g. ["CMD", "node", "-e", "..."], or ["NONE"] to disable the image's check. */
  test: string[];
  intervalMs?: number;
  timeoutMs?: number;
  startPeriodMs?: number;
  retries?: number;
}

const ms = (n: number | undefined) => (n === undefined ? undefined : Math.round(n * 1_000_000));

function toUpdateConfig(u: TestUpdateConfig): Docker.UpdateConfig {
  return {
    Parallelism: u.parallelism ?? 1,
    Delay: ms(u.delayMs),
    FailureAction: u.failureAction,
    Monitor: ms(u.monitorMs),
    MaxFailureRatio: u.maxFailureRatio,
    Order: u.order ?? "stop-first",
  };
}

/** Creates a replicated swarm service through the Engine API and returns its id. */
export async function createTestService(opts: {
  name: string;
  image: string;
  publishedPort?: number;
  targetPort?: number;
  replicas?: number;
  env?: string[];
  labels?: Record<string, string>;
  command?: string[];
  updateConfig?: TestUpdateConfig;
  rollbackConfig?: TestUpdateConfig;
  healthcheck?: TestHealthcheck;
  stopGracePeriodMs?: number;
  /** Default "any" (swarm's own): failed tasks are replaced forever; failure-path tests may want "none". */
  restartCondition?: "none" | "on-failure" | "any";
  /** A replicated-job of one completion (restart "on-failure", as swarm wants for jobs). */
  job?: boolean;
}): Promise<string> {
  const spec: Docker.CreateServiceOptions = {
    Name: opts.name,
    Labels: opts.labels ?? {},
    TaskTemplate: {
      ContainerSpec: {
        Image: opts.image,
        Env: opts.env,
        Args: opts.command,
        StopGracePeriod: ms(opts.stopGracePeriodMs),
        HealthCheck: opts.healthcheck && {
          Test: opts.healthcheck.test,
          Interval: ms(opts.healthcheck.intervalMs),
          Timeout: ms(opts.healthcheck.timeoutMs),
          StartPeriod: ms(opts.healthcheck.startPeriodMs),
          Retries: opts.healthcheck.retries,
        },
      },
      // Swarm's default 5 s restart delay would dominate the runtime of failure-path tests.
      RestartPolicy: { Condition: opts.restartCondition ?? (opts.job ? "on-failure" : "any"), Delay: ms(500) },
    },
    Mode: opts.job ? { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } } : { Replicated: { Replicas: opts.replicas ?? 1 } },
    UpdateConfig: opts.updateConfig && toUpdateConfig(opts.updateConfig),
    RollbackConfig: opts.rollbackConfig && toUpdateConfig(opts.rollbackConfig),
  };
  if (opts.publishedPort !== undefined) {
    spec.EndpointSpec = {
      Ports: [
        {
          Protocol: "tcp",
          TargetPort: opts.targetPort ?? 8000,
          PublishedPort: opts.publishedPort,
          PublishMode: "host",
        },
      ],
    };
  }
  const service = await client().createService(spec);
  return service.id as string;
}

/**
 * Removes a service (best effort) and waits briefly for its containers to go,
 * so the next test can reuse the port and remove the image.
 */
export async function removeService(idOrName: string): Promise<void> {
  const docker = client();
  let id = idOrName;
  try {
    const info = (await docker.getService(idOrName).inspect()) as { ID: string };
    id = info.ID;
    await docker.getService(id).remove();
  } catch {
    return;
  }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`com.docker.swarm.service.id=${id}`] },
      });
      if (left.length === 0) return;
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Polls `fn` until it returns something other than undefined/null/false.
 * Errors thrown by `fn` count as "not yet"; the last one is quoted on timeout.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false>,
  opts: { timeoutMs: number; intervalMs?: number; what: string },
): Promise<T> {
  const started = Date.now();
  const interval = opts.intervalMs ?? 250;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    const elapsed = Date.now() - started;
    if (elapsed >= opts.timeoutMs) {
      const last = lastError instanceof Error ? `; last error: ${lastError.message}` : lastError ? `; last error: ${String(lastError)}` : "";
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${last}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(interval, Math.max(0, opts.timeoutMs - elapsed))));
  }
}
