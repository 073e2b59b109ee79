import { execFile } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";
import { parseCiPush } from "../../server/webhooks/ci.js";
import { tempDir } from "../helpers/temp-dir.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);
const image = "ghcr.io/acme/swarm-deployer/web-app";
const digest = `sha256:${"ab".repeat(32)}`;

/**
 * A folder holding a `docker` that answers `image inspect` with the given
 * RepoDigests and fails anything else, so the stages that only read the
 * engine's record run without an engine.
 */
function fakeDocker(repoDigests: string[]): string {
  const dir = tempDir("ci-docker-");
  const file = join(dir, "docker");
  writeFileSync(
    file,
    `#!/usr/bin/env bash\n[[ "$1 $2" == "image inspect" ]] || exit 1\nprintf '%s\\n' ${repoDigests.map((d) => `'${d}'`).join(" ")}\n`,
  );
  chmodSync(file, 0o755);
  return dir;
}

/** Runs a bash snippet (or a stage) in the repository with only the given variables and the fake docker first on PATH. */
async function bash(script: string, env: Record<string, string>, repoDigests: string[] = []) {
  const PATH = `${fakeDocker(repoDigests)}:${process.env.PATH ?? ""}`;
  try {
    const r = await run("bash", ["-c", script], { cwd: repoRoot, env: { PATH, DOCKER_BUILDKIT: "0", ...env }, encoding: "utf8" });
    return { code: 0, stdout: r.stdout.trim(), stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout.trim(), stderr: err.stderr };
  }
}

describe("the digest scripts/ci reports after a push", () => {
  it("is the engine's record for the pushed repository, not another one the image was pushed to", async () => {
    const r = await bash("source scripts/ci/lib.sh && ci_pushed_digest", { IMAGE: image, BUILD_NUMBER: "7" }, [
      `ghcr.io/acme/other@sha256:${"cd".repeat(32)}`,
      `${image}@${digest}`,
    ]);
    expect(r.stdout).toBe(digest);
  });

  it("finds a Docker Hub repository under the short name the engine keeps", async () => {
    const r = await bash("source scripts/ci/lib.sh && ci_pushed_digest", { IMAGE: "docker.io/acme/swarm-web-app", BUILD_NUMBER: "7" }, [
      `acme/swarm-web-app@${digest}`,
    ]);
    expect(r.stdout).toBe(digest);
  });

  it("is empty when the engine recorded none", async () => {
    const r = await bash("source scripts/ci/lib.sh && ci_pushed_digest", { IMAGE: image, BUILD_NUMBER: "7" });
    expect(r).toMatchObject({ code: 0, stdout: "" });
  });
});

interface Received {
  headers: IncomingHttpHeaders;
  url: string | undefined;
  body: unknown;
}

/** An HTTP server on 127.0.0.1 that records every request and answers 202. */
async function deployerStandIn(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk: Buffer) => (text += chunk.toString()));
    req.on("end", () => {
      received.push({ headers: req.headers, url: req.url, body: JSON.parse(text) });
      res.writeHead(202, { "content-type": "application/json" }).end('{"deployments":[],"ignored":[]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, received };
}

describe("scripts/ci/announce.sh", () => {
  const job = { IMAGE: image, BUILD_NUMBER: "42", BRANCH: "main", PULL_REQUEST: "false" };

  it("does nothing without DEPLOYER_URL and DEPLOYER_WEBHOOK_TOKEN", async () => {
    const r = await bash("bash scripts/ci/announce.sh", { ...job, DEPLOYER_URL: "http://127.0.0.1:9/" }, [`${image}@${digest}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("nothing announced");
  });

  it("announces every pushed tag with its digest, in a body and with a key POST /hooks/ci accepts", async () => {
    const deployer = await deployerStandIn();
    const env = { ...job, DEPLOYER_URL: deployer.url, DEPLOYER_WEBHOOK_TOKEN: "token-value" };
    const first = await bash("bash scripts/ci/announce.sh", env, [`${image}@${digest}`]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toContain("token-value");

    expect(deployer.received.map((r) => [r.url, r.body])).toEqual([
      ["/hooks/ci", { image: `${image}:42`, digest }],
      ["/hooks/ci", { image: `${image}:latest`, digest }],
    ]);
    for (const r of deployer.received) {
      expect(r.headers.authorization).toBe("Bearer token-value");
      expect(r.headers["content-type"]).toBe("application/json");
      const key = String(r.headers["idempotency-key"]);
      // A key the endpoint refuses would silently make every retry a new push.
      const parsed = parseCiPush(r.body, { dockerHubRegistry: "docker.io", idempotencyKey: key, caller: "token ci" });
      expect(parsed.events[0]).toMatchObject({ eventKey: expect.stringMatching(/^ci:key:/), digestHint: digest });
      expect(parsed.events[0]!.eventKey.endsWith(`:${key}`)).toBe(true);
    }

    // A retry of the same push carries the same keys; another digest gets new ones.
    await bash("bash scripts/ci/announce.sh", env, [`${image}@${digest}`]);
    await bash("bash scripts/ci/announce.sh", { ...env, DIGEST: `sha256:${"ef".repeat(32)}` });
    const keys = deployer.received.map((r) => r.headers["idempotency-key"]);
    expect(keys.slice(2, 4)).toEqual(keys.slice(0, 2));
    expect(new Set(keys).size).toBe(4);
  });

  it("fails the job when the server refuses the announcement", async () => {
    const r = await bash("bash scripts/ci/announce.sh", { ...job, DEPLOYER_URL: "http://127.0.0.1:9/", DEPLOYER_WEBHOOK_TOKEN: "t" }, [
      `${image}@${digest}`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("POST http://127.0.0.1:9/hooks/ci");
  }, 30_000);
});

describe("the two pipelines", () => {
  /** The scripts/ci stages a pipeline file runs, each once, in the order it first names them. */
  function stages(file: string): string[] {
    const text = readFileSync(join(repoRoot, file), "utf8").replace(/^\s*#.*$/gm, "");
    return [...new Set([...text.matchAll(/\bbash scripts\/ci\/([\w-]+)\.sh/g)].map((m) => String(m[1])))];
  }

  it("run the same scripts/ci stages in the same order, and every one exists", () => {
    const travis = stages(".travis.yml");
    expect(travis).toEqual(["install", "test", "build", "smoke", "tag", "push", "announce"]);
    expect(stages(".github/workflows/ship.yml")).toEqual(travis);
    for (const stage of travis) expect(existsSync(join(repoRoot, "scripts/ci", `${stage}.sh`)), stage).toBe(true);
  });
});
