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

/** tag → digest, without pulling. Throws RegistryError. */
export interface RegistryPort {
  resolveDigest(ref: Pick<ImageRef, "registry" | "repository" | "tag">): Promise<ResolvedManifest>;
}
