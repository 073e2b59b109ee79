/**
 * Offline image building for the Docker test suites.
 *
 * Nothing can be pulled on the machines these tests run on, so every image is
 * derived from a base assembled from what the host already has: its own `node`
 * binary (plus the shared libraries it links) and Debian's static busybox.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, chown, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BUSYBOX_PATH = "/bin/busybox";
export const BASE_IMAGE_REPO = "deployer-test-base";
export const APP_CONTEXT = fileURLToPath(new URL("../fixtures/app/", import.meta.url));

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs a program from an argv array (never through a shell, so tags and
 * build args cannot be reinterpreted). Rejects on a non-zero exit unless
 * `allowFailure` is set, with the command and the tail of its output.
 */
export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; allowFailure?: boolean; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    }
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${cmd} could not be started: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = {
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code: code ?? -1,
      };
      if (result.code === 0 || opts.allowFailure) {
        resolve(result);
        return;
      }
      const tail = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-15).join("\n");
      const how = signal ? `signal ${signal}` : `exit code ${result.code}`;
      reject(new Error(`${cmd} ${args.join(" ")} failed with ${how}:\n${tail}`));
    });
  });
}

/**
 * The legacy builder is forced because the docker CLI here may be a recent
 * client without the buildx plugin, which refuses to build at all when
 * BuildKit is selected; the legacy path works with every client/daemon pair.
 */
function dockerEnv(): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_BUILDKIT: "0" };
}

export function docker(args: readonly string[], opts: { allowFailure?: boolean; timeoutMs?: number } = {}) {
  return runCommand("docker", args, { ...opts, env: dockerEnv() });
}

async function hashFile(hash: ReturnType<typeof createHash>, file: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    createReadStream(file)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", resolve)
      .on("error", reject);
  });
}

/** Shared libraries `ldd` resolves for a binary, by absolute path. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await runCommand("ldd", [binary]);
  const libs = new Set<string>();
  for (const line of stdout.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)";
    // the vdso has no file and is skipped.
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [...libs];
}

async function copyInto(root: string, hostPath: string, targetPath = hostPath, mode?: number): Promise<void> {
  const dest = path.join(root, targetPath);
  await mkdir(path.dirname(dest), { recursive: true });
  // copyFile follows symlinks, so versioned library links become real files at the linked name.
  await copyFile(hostPath, dest);
  if (mode !== undefined) await chmod(dest, mode);
}

async function imageExists(ref: string): Promise<boolean> {
  const r = await docker(["image", "inspect", "--format", "{{.Id}}", ref], { allowFailure: true });
  return r.code === 0;
}

async function assembleBaseRootfs(root: string): Promise<void> {
  const node = process.execPath;
  await copyInto(root, node, "/usr/local/bin/node", 0o755);
  const libs = await sharedLibraries(node);
  const loader = "/lib64/ld-linux-x86-64.so.2";
  if (!libs.includes(loader)) libs.push(loader);
  for (const lib of libs) await copyInto(root, lib, lib, 0o755);

  await copyInto(root, BUSYBOX_PATH, "/bin/busybox", 0o755);
  const { stdout } = await runCommand(BUSYBOX_PATH, ["--list"]);
  const applets = new Set(
    stdout
      .split("\n")
      .map((s) => s.trim())
      .filter(Boolean),
  );
  for (const a of ["sh", "sleep", "cat", "echo", "wget", "ls", "env", "true", "false", "kill"]) applets.add(a);
  applets.delete("busybox");
  for (const applet of applets) {
    if (applet.includes("/")) continue;
    await symlink("busybox", path.join(root, "bin", applet));
  }
  await mkdir(path.join(root, "usr/bin"), { recursive: true });

  await mkdir(path.join(root, "etc"), { recursive: true });
  await writeFile(
    path.join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
  );
  await writeFile(path.join(root, "etc/group"), "root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n");
  await writeFile(path.join(root, "etc/nsswitch.conf"), "hosts: files dns\n");

  await mkdir(path.join(root, "root"), { recursive: true, mode: 0o700 });
  await mkdir(path.join(root, "home/node"), { recursive: true });
  try {
    await chown(path.join(root, "home/node"), 1000, 1000);
  } catch {
    // Without root the owner cannot be set; a world-writable home still lets the app user write.
    await chmod(path.join(root, "home/node"), 0o777);
  }
  await mkdir(path.join(root, "tmp"), { recursive: true });
  // mkdir's mode is filtered by the umask, so the sticky bit is applied explicitly.
  await chmod(path.join(root, "tmp"), 0o1777);
}

let basePromise: Promise<string> | undefined;

/**
 * Builds (once per content of node + busybox) and returns the tag of the
 * offline base image. Concurrent callers share one build; other processes
 * find the tag with `docker image inspect` and skip the work.
 */
export function ensureBaseImage(): Promise<string> {
  basePromise ??= buildBaseImage().catch((e: unknown) => {
    basePromise = undefined;
    throw e;
  });
  return basePromise;
}

async function buildBaseImage(): Promise<string> {
  const hash = createHash("sha256");
  await hashFile(hash, process.execPath);
  await hashFile(hash, BUSYBOX_PATH);
  // Bumped when the rootfs layout changes so stale caches are not reused.
  hash.update("layout-v1");
  const tag = `${BASE_IMAGE_REPO}:${hash.digest("hex").slice(0, 12)}`;
  if (await imageExists(tag)) return tag;

  const work = await mkdtemp(path.join(tmpdir(), "deployer-base-"));
  try {
    const root = path.join(work, "rootfs");
    await mkdir(root);
    await assembleBaseRootfs(root);
    const tarball = path.join(work, "rootfs.tar");
    await runCommand("tar", ["--numeric-owner", "-C", root, "-cf", tarball, "."]);
    await docker(["import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", tarball, tag]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return tag;
}

export async function buildImage(opts: { tag: string; context: string; dockerfile?: string; buildArgs?: Record<string, string> }): Promise<void> {
  // --network none: the build must never reach out; a step that tries fails loudly instead of hanging.
  const args = ["build", "--network", "none", "--tag", opts.tag];
  if (opts.dockerfile) args.push("--file", opts.dockerfile);
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
  args.push(opts.context);
  await docker(args, { timeoutMs: 300_000 });
}

/** Pushes a tag and returns the manifest digest the registry stored it under. */
export async function pushImage(tag: string): Promise<string> {
  const { stdout, stderr } = await docker(["push", tag], { timeoutMs: 300_000 });
  const m = /digest:\s*(sha256:[0-9a-f]{64})/.exec(stdout) ?? /digest:\s*(sha256:[0-9a-f]{64})/.exec(stderr);
  if (!m?.[1]) throw new Error(`docker push ${tag} printed no digest:\n${stdout}\n${stderr}`);
  return m[1];
}

/**
 * Best effort: missing tags and images still used by a dying container are ignored. A tag that was pushed or
 * pulled by digest leaves `repo@sha256:…` references behind (`<none>` in `docker images`): those of the same
 * repositories go too.
 */
export async function removeImages(...tags: string[]): Promise<void> {
  const wanted = tags.filter(Boolean);
  if (wanted.length === 0) return;
  const repositories = new Set(wanted.map((t) => t.replace(/@.*$/, "").replace(/:[^/:]+$/, "")));
  const inspected = await docker(["image", "inspect", "--format", "{{json .RepoDigests}}", ...wanted], { allowFailure: true });
  const digests = inspected.stdout
    .split("\n")
    .filter((line) => line.startsWith("["))
    .flatMap((line) => JSON.parse(line) as string[])
    .filter((ref) => repositories.has(ref.split("@")[0]!));
  await docker(["image", "rm", "--force", ...wanted, ...new Set(digests)], { allowFailure: true });
}

/**
 * Every reference the local engine holds to images of a registry: its tags, and the `repo@digest` references a
 * pull by digest leaves (swarm pulls pinned images that way), which outlive the tags a test removes. A test
 * registry's port is its own, so this touches only what its tests made; nothing when there is no Docker.
 */
export async function removeImagesOfRegistry(host: string): Promise<void> {
  const listed = await docker(["image", "ls", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"], { allowFailure: true }).catch(() => ({
    stdout: "",
  }));
  const refs = new Set<string>();
  for (const line of listed.stdout.split("\n")) {
    const [repository, tag, digest] = line.split(" ");
    if (!repository?.startsWith(`${host}/`)) continue;
    if (tag && tag !== "<none>") refs.add(`${repository}:${tag}`);
    if (digest && digest !== "<none>") refs.add(`${repository}@${digest}`);
  }
  if (refs.size > 0) await docker(["image", "rm", "--force", ...refs], { allowFailure: true });
}

/**
 * Builds the fixture app (test/fixtures/app) on the offline base.
 * `healthy: false` bakes in an app whose HEALTHCHECK fails.
 */
export async function buildAppImage(opts: { tag: string; version: string; healthy?: boolean }): Promise<void> {
  const base = await ensureBaseImage();
  await buildImage({
    tag: opts.tag,
    context: APP_CONTEXT,
    buildArgs: {
      BASE: base,
      APP_VERSION: opts.version,
      HEALTHY: opts.healthy === false ? "false" : "true",
    },
  });
}
