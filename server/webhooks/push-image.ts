import { parseImageRef, splitName } from "../domain/image-ref.js";
import type { PushEvent } from "../domain/push-event.js";
import { invalidField } from "./validation.js";

type Path = readonly PropertyKey[];

/**
 * `host/repository:tag` from a sender's fields, each checked by the reference
 * grammar. The host must read as a registry (a dot, a port or `localhost`):
 * otherwise `host/repo` would be taken for a Docker Hub namespace, and the
 * payload could pick where the digest is looked up.
 */
export function pushImage(host: string, repository: string, tag: string, at: { host: Path; repository: Path; tag: Path }): PushEvent["image"] {
  if (!host || splitName(`${host}/a/b`).repository !== "a/b" || /[/@]/.test(host)) throw invalidField(at.host, "not a registry host");
  if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw invalidField(at.tag, "not a valid tag");
  try {
    if (/[:@]/.test(repository)) throw new Error("tag or digest in repository");
    const ref = parseImageRef(`${host.toLowerCase()}/${repository}:${tag}`);
    return { registry: ref.registry, repository: ref.repository, tag: ref.tag };
  } catch {
    throw invalidField(at.repository, "not a valid repository name");
  }
}

/** The digest a payload names, when it is one: a hint only, so a malformed one is dropped rather than refused. */
export function digestHintOf(value: string | null | undefined): { digestHint?: string } {
  return value && /^sha256:[0-9a-f]{64}$/.test(value) ? { digestHint: value } : {};
}
