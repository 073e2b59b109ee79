import { repoTagKey, type ImageRef } from "../../server/domain/image-ref.js";
import { RegistryError, type RegistryPort, type ResolvedManifest } from "../../server/registry/registry-port.js";

/**
 * A registry that knows only the tags a test pushed into it, recording every
 * lookup. It runs the same contract suite as the real client against a real
 * docker-registry (test/registry/registry-contract.ts).
 */
export class FakeRegistry implements RegistryPort {
  readonly lookups: string[] = [];
  private readonly tags = new Map<string, string>();
  private failure?: RegistryError;

  /** Points `registry/repo:tag` at a digest, as a push would. */
  push(image: Pick<ImageRef, "registry" | "repository" | "tag">, digest: string): void {
    this.tags.set(repoTagKey(image), digest);
  }

  /** Every lookup fails with this error until cleared with undefined. */
  failWith(error: RegistryError | undefined): void {
    this.failure = error;
  }

  async resolveDigest(ref: Pick<ImageRef, "registry" | "repository" | "tag">): Promise<ResolvedManifest> {
    const key = repoTagKey(ref);
    this.lookups.push(key);
    if (this.failure) throw this.failure;
    const digest = this.tags.get(key);
    if (!digest) throw new RegistryError("not_found", `${ref.repository}:${ref.tag} was not found on ${ref.registry}`);
    return { digest, mediaType: "application/vnd.docker.distribution.manifest.v2+json" };
  }
}
