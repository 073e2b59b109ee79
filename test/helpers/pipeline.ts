/**
 * Runs the repository's shipping files for real: the scripts/ci stages with
 * their environment, `docker stack deploy` of stack.yml, and the clean-up of
 * everything a stack leaves behind.
 */
import { cp, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { docker, runCommand, type RunResult } from "./images.js";
import { repoRoot } from "./server-process.js";

export type CiStep = "build" | "smoke" | "tag" | "push";

export interface CiJob {
  component: "web-app" | "server";
  /** Repository with its registry, e.g. 127.0.0.1:5000/acme/web-app. */
  image: string;
  buildNumber: string;
  baseImage: string;
  branch?: string;
  /** A checkout other than this repository (see copyCheckout). */
  checkout?: string;
}

export interface StepTiming {
  step: string;
  ms: number;
}

export const timings: StepTiming[] = [];

/**
 * Runs scripts/ci/<step>.sh as Travis would, with the job's variables and
 * none inherited from a real Travis environment.
 */
export async function runCiStep(step: CiStep, job: CiJob, opts: { allowFailure?: boolean } = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("TRAVIS_") && !["IMAGE", "COMPONENT", "BUILD_NUMBER", "APP_VERSION", "REGISTRY_USER", "REGISTRY_PASSWORD"].includes(k))
      env[k] = v;
  }
  Object.assign(env, {
    COMPONENT: job.component,
    IMAGE: job.image,
    BUILD_NUMBER: job.buildNumber,
    BASE_IMAGE: job.baseImage,
    BRANCH: job.branch ?? "main",
    DEFAULT_BRANCH: "main",
    PULL_REQUEST: "false",
  });
  const started = Date.now();
  const cwd = job.checkout ?? repoRoot;
  const result = await runCommand("bash", [path.join(cwd, "scripts/ci", `${step}.sh`)], {
    env,
    cwd,
    allowFailure: opts.allowFailure,
    timeoutMs: 300_000,
  });
  timings.push({ step: `${job.component} #${job.buildNumber} ${step}`, ms: Date.now() - started });
  return result;
}

/** The build, smoke, tag and push stages of one job, in Travis's order. */
export async function shipBuild(job: CiJob): Promise<void> {
  for (const step of ["build", "smoke", "tag", "push"] as const) await runCiStep(step, job);
}

/**
 * A second checkout of what the pipeline builds, sharing this one's
 * node_modules, so a test can commit a change (a broken health check) without
 * touching the working tree others are testing.
 */
export async function copyCheckout(dir: string, patch: { file: string; from: string; to: string }): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const entry of [
    "scripts",
    "web-app",
    "Dockerfile.app",
    "Dockerfile.server",
    ".dockerignore",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
  ]) {
    await cp(path.join(repoRoot, entry), path.join(dir, entry), { recursive: true });
  }
  await symlink(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
  const file = path.join(dir, patch.file);
  const text = await readFile(file, "utf8");
  if (!text.includes(patch.from)) throw new Error(`${patch.file} no longer contains ${JSON.stringify(patch.from)}`);
  await writeFile(file, text.replace(patch.from, patch.to));
}

/** The digest a registry serves for repo:tag, from the manifest's Docker-Content-Digest. */
export async function registryDigest(registryHost: string, repository: string, tag: string): Promise<string> {
  const res = await fetch(`http://${registryHost}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: {
      accept: [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
      ].join(", "),
    },
  });
  const digest = res.headers.get("docker-content-digest");
  if (res.status !== 200 || !digest) throw new Error(`HEAD ${repository}:${tag} on ${registryHost} answered ${res.status}`);
  return digest;
}

export async function deployStack(name: string, files: string[], env: Record<string, string>): Promise<RunResult> {
  const args = ["stack", "deploy"];
  for (const f of files) args.push("--compose-file", path.join(repoRoot, f));
  args.push(name);
  return runCommand("docker", args, { env: { ...process.env, ...env }, cwd: repoRoot, timeoutMs: 120_000 });
}

/**
 * `docker stack rm` returns before the containers are gone, and a volume in
 * use cannot be removed: wait for the stack's containers, then remove its
 * volumes (named <stack>_<volume>) and wait for its networks.
 */
export async function removeStack(api: Docker, name: string): Promise<void> {
  await docker(["stack", "rm", name], { allowFailure: true, timeoutMs: 60_000 });
  const label = `com.docker.stack.namespace=${name}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const containers = await api.listContainers({ all: true, filters: { label: [label] } });
    const networks = await api.listNetworks({ filters: { label: [label] } });
    if (containers.length === 0 && networks.length === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const { Volumes } = await api.listVolumes({ filters: { label: [label] } });
  for (const v of Volumes ?? [])
    await api
      .getVolume(v.Name)
      .remove()
      .catch(() => undefined);
}
