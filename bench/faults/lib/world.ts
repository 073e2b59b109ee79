/**
 * The real parts every fault scenario stands on: a docker-registry, one
 * swarm service on an image in it, the deploy server as its own process
 * (the bundle `npm start` runs), and ways to move the service's tag to a
 * new digest cheaply. Each new digest is the same image's manifest with
 * trailing whitespace: the registry stores the bytes it was given, so the
 * digest differs while the image is the same, and a rollout costs no build.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import type Docker from "dockerode";
import { join } from "node:path";
import { fetchManifest, loadDockerHelpers, putTag, type DockerHelpers } from "../../lib/docker-world.js";
import type { BenchContext, Row } from "../../lib/scenario.js";
import { sleep, summarize } from "../../lib/stats.js";
import type { ServerProcess } from "../../../test/helpers/server-process.js";
import { registryPush } from "../../../test/helpers/test-server.js";
import { isEnvelope } from "./raw-http.js";

export interface World {
  h: DockerHelpers;
  api: Docker;
  id: string;
  registry: { host: string; port: number };
  repo: string;
  service: string;
  /** The repository as images name it: "127.0.0.1:<port>/fault/<id>". */
  repository: string;
  dbPath: string;
  serverPort: number;
  /** Moves `repo:live` to variant `n` of the image and returns its digest. */
  pushVariant(n: number, host?: string): Promise<string>;
  /** The digest variant `n` would get, without pushing it. */
  digestOfVariant(n: number): string;
  webhookToken: string;
}

export async function dockerHelpersOrReason(): Promise<DockerHelpers | string> {
  const loaded = await loadDockerHelpers();
  return "reason" in loaded ? loaded.reason : loaded.helpers;
}

/**
 * A registry that notifies the server at `serverPort` (when `notify`), the
 * base image pushed as `<repo>:live`, and a service running it pinned by digest.
 */
export async function buildWorld(
  ctx: BenchContext,
  h: DockerHelpers,
  /** `registryPort` and `imageHost`: where the registry listens and the host images name (a proxy in front of it), when the caller chose them. */
  opts: { name: string; notify?: boolean; replicas?: number; registryPort?: number; imageHost?: string },
): Promise<World> {
  const api = h.createDockerClient();
  const id = h.uniqueName(opts.name);
  const serverPort = await h.freePort();
  const registryPort = opts.registryPort ?? (await h.freePort());
  const imageHost = opts.imageHost ?? `127.0.0.1:${registryPort}`;
  const repo = `fault/${id}`;
  const webhookToken = await ctx.tokens.signWebhookToken({ sub: "fault-registry", repos: [`${imageHost}/fault/*`] });
  const notify = { url: `http://127.0.0.1:${serverPort}/hooks/registry`, authorization: `Bearer ${webhookToken}` };
  const reg = await h.startRegistry(opts.notify === false ? { port: registryPort } : { port: registryPort, notify });
  ctx.cleanup.add(`stop registry ${reg.host}`, () => reg.stop());
  // Images named through a proxy in front of the registry are not the registry's to remove when it stops.
  if (imageHost !== reg.host) ctx.cleanup.add(`remove images of ${imageHost}`, () => h.removeImagesOfRegistry(imageHost));
  const base = await h.ensureBaseImage();
  const local = `${reg.host}/${repo}:base`;
  await h.docker(["tag", base, local]);
  ctx.cleanup.add(`remove image ${local}`, () => h.removeImages(local));
  await h.pushImage(local);
  const manifest = await fetchManifest(reg.host, repo, "base");
  const variant = (n: number) => ({ body: Buffer.concat([manifest.body, Buffer.from(" ".repeat(n))]), type: manifest.type });
  const digestOfVariant = (n: number) => `sha256:${createHash("sha256").update(variant(n).body).digest("hex")}`;
  const repository = `${imageHost}/${repo}`;

  await putTag(reg.host, repo, "live", variant(0));
  const service = id;
  await h.createTestService({
    name: service,
    image: `${repository}:live@${digestOfVariant(0)}`,
    replicas: opts.replicas ?? 1,
    command: ["/bin/busybox", "sleep", "1000000"],
    stopGracePeriodMs: 300,
    updateConfig: { parallelism: 1, order: "stop-first", failureAction: "rollback", monitorMs: 500 },
  });
  ctx.cleanup.add(`remove service ${service}`, () => h.removeService(service));
  return {
    h,
    api,
    id,
    registry: { host: reg.host, port: reg.port },
    repo,
    service,
    repository,
    dbPath: join(ctx.tmp, `${id}.db`),
    serverPort,
    webhookToken,
    digestOfVariant,
    async pushVariant(n) {
      await putTag(reg.host, repo, "live", variant(n));
      return digestOfVariant(n);
    },
  };
}

/** The environment the server process runs with in a scenario. */
export function serverEnv(ctx: BenchContext, world: World, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DEPLOYER_DB: world.dbPath,
    DEPLOYER_SECRET: ctx.secret,
    DEPLOYER_INSECURE_REGISTRIES: world.repository.split("/")[0]!,
    DEPLOYER_POLL: "false",
    LOG_LEVEL: "warn",
    ...extra,
  };
}

export async function startServer(ctx: BenchContext, world: World, env: Record<string, string>): Promise<ServerProcess> {
  const server = await world.h.startServerUnmanaged(env, world.serverPort);
  ctx.cleanup.add(`stop server ${server.url}`, () => server.stop());
  return server;
}

/** The digest the service's spec is pinned to now. */
export async function serviceDigest(world: World): Promise<string | undefined> {
  const info = (await world.api.getService(world.service).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Image: string } } } };
  return /@(sha256:[0-9a-f]{64})$/.exec(info.Spec.TaskTemplate.ContainerSpec.Image)?.[1];
}

export interface DbFacts {
  deployments: number;
  triggers: number;
  /** Deployments not in a final status. */
  unfinished: Array<{ id: string; status: string }>;
  /** Digests more than one deployment sent to the engine. */
  sentTwice: string[];
  /** Digests of every trigger recorded. */
  triggerDigests: Set<string>;
  integrity: string;
}

/** What the database holds, read from the file (read-only) while the server may run. */
export function readDb(path: string, service: string): DbFacts {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    const unfinished = db.prepare(`select id, status from deployments where status in ('queued', 'running')`).all() as Array<{
      id: string;
      status: string;
    }>;
    const sentTwice = (
      db
        .prepare(
          `select digest from deployments where service = ? and update_sent_at is not null and digest is not null group by digest having count(*) > 1`,
        )
        .all(service) as Array<{ digest: string }>
    ).map((r) => r.digest);
    const triggerDigests = new Set(
      (db.prepare(`select digest_hint as digest from triggers where digest_hint is not null`).all() as Array<{ digest: string }>).map(
        (r) => r.digest,
      ),
    );
    return {
      deployments: n(`select count(*) as n from deployments`),
      triggers: n(`select count(*) as n from triggers`),
      unfinished,
      sentTwice,
      triggerDigests,
      integrity: (db.prepare("pragma integrity_check").get() as { integrity_check: string }).integrity_check,
    };
  } finally {
    db.close();
  }
}

/** Waits until no deployment of the database is queued or running (or the time is up); returns the last facts. */
export async function waitSettled(path: string, service: string, timeoutMs = 120_000): Promise<DbFacts> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const facts = readDb(path, service);
    if (facts.unfinished.length === 0 || Date.now() > deadline) return facts;
    await sleep(250);
  }
}

/** POSTs a registry notification for `digest` under `repo:live` and times the answer. */
export async function sendPush(
  server: { url: string },
  world: World,
  digest: string,
  timeoutMs = 10_000,
): Promise<{ ms: number; status: number; envelope: boolean }> {
  const [host, ...path] = world.repository.split("/");
  const body = registryPush({ host, repository: path.join("/"), tag: "live", digest });
  const started = performance.now();
  try {
    const res = await fetch(`${server.url}/hooks/registry`, {
      method: "POST",
      headers: { authorization: `Bearer ${world.webhookToken}`, "content-type": "application/vnd.docker.distribution.events.v1+json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const envelope = res.status < 400 || isEnvelope({ body: text, headers: { "content-type": res.headers.get("content-type") ?? "" } });
    return { ms: performance.now() - started, status: res.status, envelope };
  } catch {
    return { ms: performance.now() - started, status: 0, envelope: false };
  }
}

/** Times GET path (its status, 0 when there was no answer). */
export async function timeGet(url: string, timeoutMs = 10_000): Promise<{ ms: number; status: number }> {
  const started = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return { ms: performance.now() - started, status: res.status };
  } catch {
    return { ms: performance.now() - started, status: 0 };
  }
}

/** Waits until every digest has a trigger (the registry redelivers while the server is down); returns those still missing. */
export async function waitTriggers(path: string, service: string, digests: string[], timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const have = readDb(path, service).triggerDigests;
    const missing = digests.filter((d) => !have.has(d));
    if (missing.length === 0 || Date.now() > deadline) return missing;
    await sleep(250);
  }
}

/** The figures every fault scenario ends with: what was lost, what is stuck, what ran twice, where the service ended. */
export async function outcomeOf(world: World, pushed: string[], expectedFinal: string) {
  const lost = await waitTriggers(world.dbPath, world.service, pushed);
  const facts = await waitSettled(world.dbPath, world.service);
  // The server may still be sending the last update when its deployment row says succeeded: compare once the spec settled.
  let finalDigest = await serviceDigest(world);
  for (let i = 0; i < 40 && finalDigest !== expectedFinal; i++) {
    await sleep(250);
    finalDigest = await serviceDigest(world);
  }
  return {
    lostTriggers: lost.length,
    stuckDeployments: facts.unfinished.length,
    deployedTwice: facts.sentTwice.length,
    finalDigestIsLast: finalDigest === expectedFinal,
    integrity: facts.integrity,
    deployments: facts.deployments,
  };
}

/** Rows for the common outcome figures. */
export function outcomeRows(o: Awaited<ReturnType<typeof outcomeOf>>): Row[] {
  const one = (v: number) => summarize([v]);
  return [
    { metric: "lost triggers", unit: "", value: one(o.lostTriggers), target: "0", ok: o.lostTriggers === 0 },
    { metric: "stuck deployments", unit: "", value: one(o.stuckDeployments), target: "0", ok: o.stuckDeployments === 0 },
    { metric: "pushes deployed twice", unit: "", value: one(o.deployedTwice), target: "0", ok: o.deployedTwice === 0 },
    { metric: "final digest is the last push", unit: "", value: one(o.finalDigestIsLast ? 1 : 0), target: "1", ok: o.finalDigestIsLast },
    { metric: "database integrity ok", unit: "", value: one(o.integrity === "ok" ? 1 : 0), target: "1", ok: o.integrity === "ok" },
  ];
}
