/**
 * When an image was built, for deployer.min-age: its config's `created`,
 * read from the registry without pulling. A digest naming an index (a
 * multi-arch image) is followed to its linux/amd64 image, else to its first
 * one that names a platform (attestations say `unknown`). Three GETs at
 * most, each bounded in size.
 */
import { isDigest, repoKey, type ImageRef } from "../domain/image-ref.js";
import { readRegistryJson } from "./read-json.js";
import { RegistryError, usableCreatedAt } from "./registry-port.js";

type RepoRef = Pick<ImageRef, "registry" | "repository">;

export interface ImageCreatedDeps {
  request(method: "GET", ref: RepoRef, path: string, accept: string, count?: "get"): Promise<Response>;
  ensureOk(res: Response, method: string, ref: RepoRef, what?: string): Promise<void>;
  manifestAccept: string;
  now(): number;
}

interface Descriptor {
  digest?: unknown;
  platform?: { os?: unknown; architecture?: unknown };
}

async function readJson(res: Response, ref: RepoRef, what: string): Promise<Record<string, unknown>> {
  const body = await readRegistryJson(res, ref.registry, what);
  if (body !== null && typeof body === "object" && !Array.isArray(body)) return body as Record<string, unknown>;
  throw new RegistryError("protocol", `registry ${ref.registry} answered ${what} with something other than a JSON object`);
}

/** The image of an index the server would take: linux/amd64, else the first with a real platform, else the first. */
function pickImage(manifests: readonly Descriptor[]): string | undefined {
  const named = manifests.filter((m) => typeof m.digest === "string" && isDigest(m.digest));
  const real = named.filter((m) => m.platform?.os !== "unknown" && m.platform?.architecture !== "unknown");
  const amd64 = real.find((m) => m.platform?.os === "linux" && m.platform?.architecture === "amd64");
  return (amd64 ?? real[0] ?? named[0])?.digest as string | undefined;
}

export async function imageCreatedAt(ref: RepoRef, digest: string, deps: ImageCreatedDeps): Promise<number | undefined> {
  if (!isDigest(digest)) throw new RegistryError("protocol", `not a digest: ${JSON.stringify(digest)}`);
  const manifest = async (d: string) => {
    const what = `${repoKey(ref)}@${d}`;
    const res = await deps.request("GET", ref, `/v2/${ref.repository}/manifests/${d}`, deps.manifestAccept, "get");
    await deps.ensureOk(res, "GET", ref, what);
    return readJson(res, ref, what);
  };
  let body = await manifest(digest);
  if (Array.isArray(body.manifests)) {
    const image = pickImage(body.manifests as Descriptor[]);
    if (!image) return undefined;
    body = await manifest(image);
  }
  const config = body.config as Descriptor | undefined;
  if (!config || typeof config.digest !== "string" || !isDigest(config.digest)) return undefined;
  const what = `the config of ${repoKey(ref)}@${digest}`;
  const res = await deps.request("GET", ref, `/v2/${ref.repository}/blobs/${config.digest}`, "application/json, */*");
  await deps.ensureOk(res, "GET", ref, what);
  return usableCreatedAt((await readJson(res, ref, what)).created, deps.now());
}
