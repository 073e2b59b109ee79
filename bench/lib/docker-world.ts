/**
 * Real-swarm plumbing for scenarios 5 and 6, on top of the e2e test helpers
 * (offline image builds, a local docker-registry, the server as a process).
 * Those helpers are imported lazily: loading them probes Docker.
 */
import type Docker from "dockerode";
import type { Cleanup } from "./cleanup.js";
import { sleep } from "./stats.js";

export type DockerHelpers = typeof import("../../test/helpers/docker-env.js") &
  typeof import("../../test/helpers/images.js") &
  typeof import("../../test/helpers/server-process.js");

/** The helpers, or the reason the Docker scenarios cannot run here (no engine, no swarm manager, no docker-registry). */
export async function loadDockerHelpers(): Promise<{ helpers: DockerHelpers } | { reason: string }> {
  const env = await import("../../test/helpers/docker-env.js");
  const status = await env.dockerStatus();
  if (!status.ok) return { reason: status.reason };
  const images = await import("../../test/helpers/images.js");
  const server = await import("../../test/helpers/server-process.js");
  return { helpers: { ...env, ...images, ...server } };
}

const manifestTypes = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
].join(", ");

/** The manifest bytes and media type of `repo:ref`, to be PUT under another tag. */
export async function fetchManifest(registry: string, repo: string, ref: string): Promise<{ body: Buffer; type: string }> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${ref}`, { headers: { accept: manifestTypes } });
  if (!res.ok) throw new Error(`GET manifest ${repo}:${ref} answered ${res.status}`);
  return {
    body: Buffer.from(await res.arrayBuffer()),
    type: res.headers.get("content-type") ?? "application/vnd.docker.distribution.manifest.v2+json",
  };
}

/**
 * What `docker push` does last, and the moment a push happens for the
 * registry: the manifest PUT by tag. Its layers are already there, so the
 * timed part is the push event itself, not the upload of layers.
 */
export async function putTag(registry: string, repo: string, tag: string, manifest: { body: Buffer; type: string }): Promise<void> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": manifest.type },
    body: new Uint8Array(manifest.body),
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`PUT manifest ${repo}:${tag} answered ${res.status}`);
}

interface TaskInfo {
  DesiredState: string;
  Status: { State: string };
  Spec: { ContainerSpec: { Image: string } };
}

/** Polls the engine until every replica of `service` runs `image` (and nothing else is meant to run); returns when that was first seen. */
export async function waitConverged(
  api: Docker,
  service: string,
  image: string,
  replicas: number,
  timeoutMs = 180_000,
  intervalMs = 25,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const tasks = (await api.listTasks({ filters: { service: [service], "desired-state": ["running"] } })) as TaskInfo[];
    const onImage = tasks.filter((t) => t.Spec.ContainerSpec.Image === image && t.Status.State === "running");
    if (onImage.length === replicas && tasks.every((t) => t.Spec.ContainerSpec.Image === image)) return performance.now();
    await sleep(intervalMs);
  }
  throw new Error(`${service} did not converge on ${image} within ${timeoutMs} ms`);
}

/** Waits for swarm to close the current update (completed, or stopped), so the next one starts from rest. */
export async function waitUpdateSettled(api: Docker, service: string, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = (await api.getService(service).inspect()) as { UpdateStatus?: { State?: string } };
    const state = info.UpdateStatus?.State;
    if (!state || !["updating", "rollback_started"].includes(state)) return state ?? "none";
    await sleep(100);
  }
  throw new Error(`${service} was still updating after ${timeoutMs} ms`);
}

/** Builds the fixture app as `tag` and registers its removal. */
export async function buildApp(h: DockerHelpers, cleanup: Cleanup, tag: string, version: string): Promise<void> {
  cleanup.add(`remove image ${tag}`, () => h.removeImages(tag));
  await h.buildAppImage({ tag, version });
}

/** Tags a local image into the registry, pushes it, registers the tag's removal; returns the digest. */
export async function publish(h: DockerHelpers, cleanup: Cleanup, local: string, target: string): Promise<string> {
  await h.docker(["tag", local, target]);
  cleanup.add(`remove image ${target}`, () => h.removeImages(target));
  return h.pushImage(target);
}

/**
 * When the engine applied each update of `service` (its event stream, the
 * daemon's clock in epoch ms): splits a run into the part before the update
 * call (the server's, or the CLI's) and swarm's own rollout after it.
 */
export async function watchServiceUpdates(api: Docker, service: string) {
  const stream = (await api.getEvents({ filters: { type: ["service"], service: [service] } })) as NodeJS.ReadableStream & { destroy(): void };
  const applied: number[] = [];
  let pending = "";
  stream.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const event = JSON.parse(line) as { Action?: string; timeNano?: number };
        if (event.Action === "update" && event.timeNano) applied.push(event.timeNano / 1e6);
      } catch {
        // a partial or foreign line: not an update event
      }
    }
  });
  return {
    /** The first update applied at or after `epochMs`. */
    async firstAfter(epochMs: number, timeoutMs = 30_000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = applied.find((t) => t >= epochMs);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`no update event for ${service} after ${new Date(epochMs).toISOString()}`);
        await sleep(20);
      }
    },
    close: () => stream.destroy(),
  };
}
