import type { ImageRef } from "../domain/image-ref.js";

export interface ResolvedManifest {
  digest: string;
  mediaType?: string;
}

export type RegistryErrorKind = "not_found" | "unauthorized" | "rate_limited" | "unreachable" | "protocol";

export class RegistryError extends Error {
  override readonly name = "RegistryError";
  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Credentials for one registry host. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** tag → digest, without pulling, and a repository's tags. Throws RegistryError. */
export interface RegistryPort {
  resolveDigest(ref: Pick<ImageRef, "registry" | "repository" | "tag">): Promise<ResolvedManifest>;
  /**
   * The repository's tags (`GET /v2/<repository>/tags/list`, every page of
   * its `Link` pagination up to a bound), in the registry's order. A
   * repository the registry does not know is `not_found`.
   */
  listTags(ref: Pick<ImageRef, "registry" | "repository">): Promise<string[]>;
  /**
   * When the image `digest` names was built, from its config's `created`
   * (for an index, that of its linux/amd64 image, else its first one), in
   * epoch milliseconds; undefined when the config has no usable time (none,
   * unparsable, before 2000 as reproducible builds stamp, or in the future).
   * Costs manifest GETs, which Docker Hub counts as pulls, and a blob GET.
   */
  imageCreatedAt(ref: Pick<ImageRef, "registry" | "repository">, digest: string): Promise<number | undefined>;
}

/** The earliest creation time taken as real: reproducible builds stamp 1970 or another fixed date. */
export const EARLIEST_CREATED_AT = Date.UTC(2000, 0, 1);
/** Clocks differ: a creation time this far ahead of ours is still taken (as now). */
const CREATED_SKEW_MS = 5 * 60_000;

/** A config's `created` as epoch ms, or undefined when it is not a time an image can have been built at. */
export function usableCreatedAt(created: unknown, now: number): number | undefined {
  if (typeof created !== "string") return undefined;
  const at = Date.parse(created);
  if (!Number.isFinite(at) || at < EARLIEST_CREATED_AT || at > now + CREATED_SKEW_MS) return undefined;
  return Math.min(at, now);
}
