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
}
