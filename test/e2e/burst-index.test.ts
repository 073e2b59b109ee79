/**
 * A multi-platform push on the real registry, announced as a burst: each
 * platform's manifest is put under the tag, then the index that lists both.
 * The registry sends a real notification for each; they reach the server
 * only once the push is whole (a relay holds them while the test pushes, as
 * a registry's queue does under load), so the tag names the index when the
 * first deployment resolves it. One rollout, to the index; the other events
 * are coalesced into it, or (when the first had resolved already) wait their
 * turn and end skipped without touching the service.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTokenService } from "../../server/auth/tokens.js";
import {
  createDockerClient,
  createTestService,
  describeDocker,
  freePort,
  removeService,
  startRegistry,
  uniqueName,
  waitFor,
} from "../helpers/docker-env.js";
import { buildAppImage, docker, pushImage, removeImages } from "../helpers/images.js";
import { startServerUnmanaged } from "../helpers/server-process.js";

const secret = "e2e-burst-secret-e2e-burst-secret-e2e-burst";
const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];
const sha256 = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Forwards the registry's notifications to the server; while held, it keeps them until released, in order. */
async function startRelay(target: string) {
  let held: Array<() => void> | undefined;
  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const answer = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers: { "content-type": req.headers["content-type"] ?? "application/json", authorization: req.headers.authorization ?? "" },
      body: new Uint8Array(Buffer.concat(chunks)),
    });
    res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "text/plain" });
    res.end(Buffer.from(await answer.arrayBuffer()));
  };
  const server = createServer((req, res) => {
    const go = () => void forward(req, res).catch(() => res.writeHead(502).end());
    if (held) held.push(go);
    else go();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: () => (held = []),
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const go of waiting) go();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describeDocker("a multi-platform push announced as a burst, on the real registry", () => {
  const id = uniqueName("burst");
  const dir = mkdtempSync(join(tmpdir(), "deployer-burst-"));
  const cleanup: Array<() => Promise<unknown>> = [];
  let registry: { host: string };
  let serverUrl: string;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  const dbPath = join(dir, "deployer.db");

  beforeAll(async () => {
    const tokens = createTokenService({ secret, dockerHubRegistry: "docker.io" });
    const serverPort = await freePort();
    const registryPort = await freePort();
    relay = await startRelay(`http://127.0.0.1:${serverPort}`);
    cleanup.push(() => relay.close());
    const token = await tokens.signWebhookToken({ sub: "local-registry", repos: [`127.0.0.1:${registryPort}/burst/*`] });
    registry = await startRegistry({ port: registryPort, notify: { url: `${relay.url}/hooks/registry`, authorization: `Bearer ${token}` } });
    cleanup.push(() => (registry as Awaited<ReturnType<typeof startRegistry>>).stop());
    const server = await startServerUnmanaged(
      { DEPLOYER_DB: dbPath, DEPLOYER_SECRET: secret, DEPLOYER_INSECURE_REGISTRIES: registry.host, DEPLOYER_POLL: "false", TIMEOUT: "120" },
      serverPort,
    );
    cleanup.push(() => server.stop());
    serverUrl = server.url;
  });

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const query = <T>(sql: string, ...params: unknown[]): T[] => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };

  async function put(path: string, body: Buffer, type: string): Promise<void> {
    const res = await fetch(`http://${registry.host}/v2/burst/app/${path}`, {
      method: "PUT",
      headers: { "content-type": type },
      body: new Uint8Array(body),
    });
    expect(res.status, await res.text()).toBe(201);
  }

  /** A second platform's manifest: the same layers with a config that says arm64, uploaded as a blob of its own. */
  async function arm64Twin(manifest: { config: { digest: string; size: number } }) {
    const config = JSON.parse(
      Buffer.from(await (await fetch(`http://${registry.host}/v2/burst/app/blobs/${manifest.config.digest}`)).arrayBuffer()).toString(),
    );
    const twin = Buffer.from(JSON.stringify({ ...config, architecture: "arm64" }));
    const start = await fetch(`http://${registry.host}/v2/burst/app/blobs/uploads/`, { method: "POST" });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get("location")!, `http://${registry.host}`);
    location.searchParams.set("digest", sha256(twin));
    const done = await fetch(location, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: new Uint8Array(twin) });
    expect(done.status, await done.text()).toBe(201);
    return { ...manifest, config: { ...manifest.config, digest: sha256(twin), size: twin.length } };
  }

  it("rolls the service out once, to the index, and accounts for every event", async () => {
    const [v1, v2] = [`${id}-app:v1`, `${id}-app:v2`];
    await buildAppImage({ tag: v1, version: "v1" });
    await buildAppImage({ tag: v2, version: "v2" });
    const live = `${registry.host}/burst/app:live`;
    const source = `${registry.host}/burst/app:v2-source`;
    cleanup.push(() => removeImages(v1, v2, live, source));
    await docker(["tag", v1, live]);
    const v1Digest = await pushImage(live);
    await docker(["tag", v2, source]);
    await pushImage(source);

    const name = `${id}-web`;
    const port = await freePort();
    await createTestService({ name, image: `${live}@${v1Digest}`, publishedPort: port, updateConfig: { parallelism: 1, order: "stop-first" } });
    cleanup.push(() => removeService(name));
    // The push of v1 and of the source tag are announced too; nothing deploys from them (the service runs v1, no service runs v2-source).
    await waitFor(
      async () =>
        query("select id from triggers").length >= 2 && query("select id from deployments where status in ('queued','running')").length === 0,
      {
        timeoutMs: 30_000,
        what: "the first pushes' notifications",
      },
    );
    const before = query<{ id: string }>("select id from deployments").map((d) => d.id);

    const got = await fetch(`http://${registry.host}/v2/burst/app/manifests/v2-source`, { headers: { accept: MANIFEST_TYPES.join(", ") } });
    const amd64Bytes = Buffer.from(await got.arrayBuffer());
    const childType = got.headers.get("content-type")!.split(";")[0]!;
    const amd64 = JSON.parse(amd64Bytes.toString()) as { config: { digest: string; size: number } };
    const arm64Bytes = Buffer.from(JSON.stringify(await arm64Twin(amd64)));
    const indexType = childType.includes("oci") ? MANIFEST_TYPES[2]! : MANIFEST_TYPES[3]!;
    const indexBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: indexType,
        manifests: [
          { mediaType: childType, digest: sha256(amd64Bytes), size: amd64Bytes.length, platform: { architecture: "amd64", os: "linux" } },
          { mediaType: childType, digest: sha256(arm64Bytes), size: arm64Bytes.length, platform: { architecture: "arm64", os: "linux" } },
        ],
      }),
    );
    const index = sha256(indexBytes);

    relay.hold();
    await put("manifests/live", amd64Bytes, childType);
    await put("manifests/live", arm64Bytes, childType);
    await put("manifests/live", indexBytes, indexType);
    relay.release();

    const dockerApi = createDockerClient();
    const image = async () =>
      ((await dockerApi.getService(name).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Image: string } } } }).Spec.TaskTemplate
        .ContainerSpec.Image;
    type Row = { id: string; status: string; digest: string | null; update_sent_at: number | null; message: string };
    const settled = await waitFor(
      async () => {
        const rows = query<Row>("select id, status, digest, update_sent_at, message from deployments order by id").filter(
          (d) => !before.includes(d.id),
        );
        const events = query<{ n: number }>(
          "select count(*) n from triggers where image_key like '%/burst/app:live' and digest_hint in (?, ?, ?)",
          sha256(amd64Bytes),
          sha256(arm64Bytes),
          index,
        )[0]!.n;
        return events === 3 && rows.length > 0 && rows.every((d) => !["queued", "running"].includes(d.status)) && rows;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: "the burst's three events recorded and their deployments ended" },
    );
    const rollouts = settled.filter((d) => d.update_sent_at !== null);
    expect(
      rollouts.map((d) => [d.status, d.digest]),
      JSON.stringify(settled, null, 1),
    ).toEqual([["succeeded", index]]);
    for (const other of settled.filter((d) => d.update_sent_at === null)) {
      expect([other.status, other.message]).toEqual(["skipped", `the service already runs ${index}`]);
    }
    // Every event is a deployment of its own or coalesced into one of them.
    const coalesced = query<{ n: number }>(
      `select count(*) n from coalesced_events where deployment_id in (${settled.map(() => "?").join(",")})`,
      ...settled.map((d) => d.id),
    )[0]!.n;
    expect(settled.length + coalesced).toBe(3);
    expect(coalesced).toBeGreaterThanOrEqual(1);
    expect(await image()).toBe(`${live}@${index}`);
    // What the node runs is the amd64 manifest the index lists: the v2 build.
    await waitFor(
      async () =>
        (
          await fetch(`http://127.0.0.1:${port}/`)
            .then((r) => r.text())
            .catch(() => "")
        ).includes("version=v2"),
      {
        timeoutMs: 60_000,
        what: `${name} answering v2`,
      },
    );
    const res = await fetch(`${serverUrl}/healthz`);
    expect(res.status).toBe(200);
  });
});
