import { serve } from "@hono/node-server";
import { spawn } from "node:child_process";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { onTestFinished } from "vitest";
import { repoRoot } from "./server-process.js";
import type { TestServer } from "./test-server.js";

/** The in-process test server's app on a real 127.0.0.1 port, so real HTTP clients (the CLI) reach it; closed when the test ends. */
export async function listenOnLoopback(server: TestServer, port = 0): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const http = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port }, () => resolve(s as Server)) as Server;
  });
  const actual = (http.address() as AddressInfo).port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  };
  onTestFinished(close);
  return { url: `http://127.0.0.1:${actual}`, port: actual, close };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `deployer ARGS…` as `npx deployer` would (bin/deployer.mjs), with only the given environment. */
export function runCli(args: string[], env: Record<string, string> = {}, opts: { onStdout?: (text: string) => void } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/deployer.mjs", ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => {
      stdout += c;
      opts.onStdout?.(stdout);
    });
    child.stderr.on("data", (c) => (stderr += c));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
