import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { expect, onTestFinished } from "vitest";
import { composeServer, type ComposeOptions } from "../../server/compose.js";
import { loadConfig } from "../../server/config/config.js";
import { isTerminal } from "../../server/domain/deployment.js";
import { createLogger } from "../../server/logger.js";
import { openDatabase } from "../../server/store/database.js";
import type { DeploymentRecord } from "../../server/store/deployment-store.js";
import { FakeClock } from "./fake-clock.js";
import { FakeRegistry } from "./fake-registry.js";
import { FakeSwarm } from "./fake-swarm.js";

export const testSecret = "test-secret-that-is-long-enough-for-hs256-0123456789";

/** How often the test server polls a rollout, in fake time; the fake swarm takes as long for a step. */
export const ROLLOUT_POLL_MS = 2;

/**
 * The real app over a real SQLite file built by the real migrations, with
 * recording fakes at the swarm, registry and clock ports. Torn down when the
 * test ends.
 *
 * Time is fake: by default a clock on which a rollout's poll passes on its own
 * (and the swarm steps as it does) while the longer waits, SLEEP_TIME and
 * TIMEOUT, wait for `clock.advance`. A test that passes a clock of its own
 * gets the swarm on that clock: with a plain `new FakeClock()` nothing moves
 * until the test ticks the swarm or advances the clock.
 */
export function createTestServer(
  env: Record<string, string> = {},
  opts: {
    fetch?: typeof fetch;
    dbPath?: string;
    swarm?: FakeSwarm;
    clock?: FakeClock;
    /** A registry of the test's own (a FakeRegistry that holds its answers, say). */
    registry?: FakeRegistry;
    /** Registry access per login (shepherd.auth.config), as main.ts wires it. */
    access?: Pick<ComposeOptions, "registryFor" | "registryAuthFor" | "labelledLogins">;
    /** The event streams' bounds (maxStreams, bufferEvents, heartbeatMs). */
    events?: ComposeOptions["events"];
    /**
     * Start the service index, as main.ts does. Off by default: its resync sleeps on the fake clock, and the tests
     * that count the engine's calls or the clock's sleeps count what a webhook that lists the swarm does.
     */
    serviceIndex?: boolean;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "deployer-test-"));
  const dbPath = opts.dbPath ?? join(dir, "deployer.db");
  const config = loadConfig({ DEPLOYER_DB: dbPath, DEPLOYER_SECRET: testSecret, DEPLOYER_DOCKERHUB_REGISTRY: "docker.io", ...env });
  const database = openDatabase(dbPath);
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const log = createLogger("debug", sink);
  const clock = opts.clock ?? new FakeClock(undefined, { autoAdvanceUpToMs: ROLLOUT_POLL_MS });
  const swarm = opts.swarm ?? new FakeSwarm({ clock, stepMs: ROLLOUT_POLL_MS });
  const registry = opts.registry ?? new FakeRegistry();
  const server = composeServer({
    config,
    secret: testSecret,
    db: database.db,
    sqlite: database.sqlite,
    swarm,
    registry,
    log,
    fetch: opts.fetch,
    rolloutPollMs: ROLLOUT_POLL_MS,
    readyDeadlineMs: 50,
    clock,
    events: opts.events,
    ...opts.access,
  });
  if (opts.serviceIndex) server.serviceIndex.start();
  onTestFinished(async () => {
    await server.poller.stop();
    await server.unmatched.stop();
    await server.drift.stop();
    await server.serviceIndex.stop();
    server.deployer.stop();
    swarm.stop();
    database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const request = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (json !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
    return server.app.request(path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
  };

  return { ...server, config, database, dbPath, swarm, registry, clock, logLines, request };
}

export type TestServer = ReturnType<typeof createTestServer>;

/** Counts rows, to show a rejected request wrote nothing. */
export function countRows(server: TestServer, table: "deployments" | "triggers" | "deployment_events" | "sources" | "dashboard_sessions"): number {
  return (server.database.sqlite.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
}

export function sha(n: number | string): string {
  return `sha256:${String(n).padStart(64, "0")}`;
}

export const MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";

/** A CNCF registry notification for one tagged manifest push, shaped like registry 2.8's. */
export function registryPush(opts: {
  id?: string;
  host?: string;
  repository: string;
  tag?: string;
  digest: string;
  mediaType?: string;
  action?: string;
}) {
  const host = opts.host ?? "127.0.0.1:5000";
  return {
    events: [
      {
        id: opts.id ?? crypto.randomUUID(),
        timestamp: new Date().toISOString(),
        action: opts.action ?? "push",
        target: {
          mediaType: opts.mediaType ?? MANIFEST_V2,
          size: 528,
          digest: opts.digest,
          length: 528,
          repository: opts.repository,
          url: `http://${host}/v2/${opts.repository}/manifests/${opts.digest}`,
          ...(opts.tag === undefined ? {} : { tag: opts.tag }),
        },
        request: { id: crypto.randomUUID(), addr: "127.0.0.1:40000", host, method: "PUT", useragent: "docker/20.10.24" },
        actor: {},
        source: { addr: "deployer-test:5000", instanceID: "8c5a1ad6-0000-4000-8000-000000000000" },
      },
    ],
  };
}

/** Docker Hub's push payload for `repo_name:tag`. */
export function dockerHubPush(opts: { repoName: string; tag: string; pushedAt?: number; callbackUrl?: string }) {
  const [namespace, name] = opts.repoName.includes("/") ? opts.repoName.split("/") : ["library", opts.repoName];
  return {
    ...(opts.callbackUrl ? { callback_url: opts.callbackUrl } : {}),
    push_data: { pushed_at: opts.pushedAt ?? 1700000000, pusher: "ci", tag: opts.tag, images: [] },
    repository: {
      repo_name: opts.repoName,
      name,
      namespace,
      owner: namespace,
      status: "Active",
      is_private: false,
      is_official: false,
      is_trusted: false,
      star_count: 0,
      date_created: 1600000000,
      description: "",
      full_description: null,
      repo_url: `https://hub.docker.com/r/${opts.repoName}`,
    },
  };
}

/** Waits until the deployment reached a final status (the deployer announces each one) and returns it. */
export interface WebhookAnswer {
  deployments: Array<{ id: string; service: string; status: string }>;
  ignored: Array<{ reason: string; [key: string]: unknown }>;
}

/** The registry's notification of a push of `127.0.0.1:5000/acme/web:<tag>`, with a webhook token for `acme/*`; expects 202. */
export async function pushAcmeWeb(server: TestServer, tag: string, digest: string): Promise<WebhookAnswer> {
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: ["127.0.0.1:5000/acme/*"] });
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    json: registryPush({ repository: "acme/web", tag, digest }),
  });
  const body = (await res.json()) as WebhookAnswer;
  expect(res.status, JSON.stringify(body)).toBe(202);
  return body;
}

/**
 * For a test whose clock stands still: moves it on by the rollout's poll
 * interval, settling the fake swarm each time, until the deployment ends
 * (its tag's second looks and its rollout then pass in fake time).
 */
export async function runToFinal(server: TestServer, id: string, maxSteps = 500): Promise<DeploymentRecord> {
  for (let i = 0; i < maxSteps && !isTerminal(server.store.getDeployment(id).status); i++) {
    server.clock.advance(ROLLOUT_POLL_MS);
    await server.swarm.settle(1);
    await new Promise((r) => setImmediate(r));
  }
  return waitForFinal(server, id);
}

export async function waitForFinal(server: TestServer, id: string, timeoutMs = 5000): Promise<DeploymentRecord> {
  const finalOrUndefined = () => {
    const dep = server.store.getDeployment(id);
    return isTerminal(dep.status) ? dep : undefined;
  };
  const already = finalOrUndefined();
  if (already) return already;
  let unsubscribe = () => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<DeploymentRecord>((resolve, reject) => {
      unsubscribe = server.deployer.onFinished((done) => {
        if (done.id === id) resolve(server.store.getDeployment(id));
      });
      timer = setTimeout(() => {
        const dep = server.store.getDeployment(id);
        reject(new Error(`deployment ${id} still ${dep.status} after ${timeoutMs} ms: ${JSON.stringify(server.store.listEvents(id))}`));
      }, timeoutMs);
    });
  } finally {
    unsubscribe();
    clearTimeout(timer);
  }
}
