import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleServer } from "../../scripts/build-server.js";
import type { DeployerChildConfig } from "../servers/deployer-child.js";
import type { ReadyMessage } from "../servers/child-ipc.js";
import type { Cleanup } from "./cleanup.js";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface Child {
  url: string;
  pid: number;
  extra: Record<string, unknown>;
  rpc<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

/** Resident set size of a process in MB, from /proc (Linux); undefined elsewhere. */
export function rssMbOfPid(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Stops a child with SIGTERM, and SIGKILL when it has not exited after `graceMs`; a no-op once it has exited. */
export function stopper(proc: ChildProcess, graceMs: number): () => Promise<void> {
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(t);
  };
}

/** CPU time (user + system) a process has used, in ms, from /proc (Linux; 10 ms ticks); undefined elsewhere. */
export function cpuMsOfPid(pid: number): number | undefined {
  try {
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

export async function childRssMb(child: Child): Promise<number> {
  return rssMbOfPid(child.pid) ?? (await child.rpc<number>("rss")) / 2 ** 20;
}

export function startDeployerChild(cleanup: Cleanup, config: DeployerChildConfig, nodeArgs: string[] = []): Promise<Child> {
  return startChild(cleanup, "bench/servers/deployer-child.ts", { BENCH_CHILD: JSON.stringify(config) }, nodeArgs);
}

/** The HTTP client of bench/servers/probe-client.ts, in its own process. */
export function startProbeClient(cleanup: Cleanup): Promise<Child> {
  return startChild(cleanup, "bench/servers/probe-client.ts", {});
}

/** The bare hono route; with `commitDb`, also the route that commits one SQLite row per request. */
export function startBaselineChild(cleanup: Cleanup, opts: { commitDb?: string } = {}): Promise<Child> {
  return startChild(cleanup, "bench/servers/baseline-child.ts", opts.commitDb ? { BENCH_BASELINE_DB: opts.commitDb } : {});
}

const bundles = new Map<string, Promise<string>>();

/**
 * A server module bundled the way `npm start` bundles the deploy server
 * (scripts/build-server.ts), once per run. Inside the repository, so that
 * the migrations and node_modules are found as they are from dist/.
 */
export function bundled(file: string): Promise<string> {
  let out = bundles.get(file);
  if (!out) {
    const outfile = join(repoRoot, ".tmp-bench", "bundles", basename(file).replace(/\.ts$/, ".mjs"));
    out = bundleServer(join(repoRoot, file), outfile).then(() => outfile);
    bundles.set(file, out);
  }
  return out;
}

/** Runs a server module as its own plain Node process, bundled the way `npm start` runs the deploy server. */
async function startChild(cleanup: Cleanup, file: string, env: Record<string, string>, nodeArgs: string[] = [], timeoutMs = 30_000): Promise<Child> {
  const proc = spawn(process.execPath, [...nodeArgs, await bundled(file)], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", NODE_ENV: "production", ...env },
    // Logs go nowhere, as they would to a log driver; stderr is kept for crash reports.
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  proc.stderr!.on("data", (b: Buffer) => {
    if (stderr.length < 20_000) stderr += b.toString("utf8");
  });
  const stop = stopper(proc, 3000);
  cleanup.add(`stop ${file} (pid ${proc.pid})`, stop);
  const ready = await waitReady(proc, timeoutMs, () => stderr).catch(async (err: Error) => {
    await stop();
    throw err;
  });
  return { url: `http://127.0.0.1:${ready.port}`, pid: proc.pid!, extra: ready.extra ?? {}, rpc: makeRpc(proc, () => stderr), stop };
}

function waitReady(proc: ChildProcess, timeoutMs: number, stderr: () => string): Promise<ReadyMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not start within ${timeoutMs} ms: ${stderr()}`)), timeoutMs);
    proc.on("message", (m) => {
      if ((m as ReadyMessage).type !== "ready") return;
      clearTimeout(timer);
      resolve(m as ReadyMessage);
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? signal}) before it was ready: ${stderr()}`));
    });
  });
}

function makeRpc(proc: ChildProcess, stderr: () => string) {
  let next = 0;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  proc.on("message", (raw) => {
    const m = raw as { id?: number; result?: unknown; error?: string };
    const p = typeof m.id === "number" ? pending.get(m.id) : undefined;
    if (!p) return;
    pending.delete(m.id!);
    if (m.error) p.reject(new Error(m.error));
    else p.resolve(m.result);
  });
  proc.once("exit", () => {
    for (const p of pending.values()) p.reject(new Error(`child exited: ${stderr()}`));
    pending.clear();
  });
  return <T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60_000) =>
    new Promise<T>((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`child did not answer ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      proc.send({ id, cmd, args });
    });
}
