import { repoKey, repoTagKey, type ImageRef } from "../../server/domain/image-ref.js";
import type { RegistryPort, ResolvedManifest } from "../../server/registry/registry-port.js";

/**
 * The registry port for the in-process scenarios. A pinned tag always
 * resolves to its digest (the burst: one push, many notifications); any other
 * tag to the digest the latest push of it announced (`announced`, read from
 * the server's record, which is what a registry's tag names once the push is
 * done), or, when none did, to a new digest on every lookup, so every
 * deployment really reaches the update call.
 */
export class BenchRegistry implements RegistryPort {
  private readonly pinned: Map<string, string>;
  private counter = 0;
  lookups = 0;

  constructor(
    pinned: Record<string, string> = {},
    private readonly announced: (imageKey: string) => string | undefined = () => undefined,
  ) {
    this.pinned = new Map(Object.entries(pinned));
  }

  async resolveDigest(ref: Pick<ImageRef, "registry" | "repository" | "tag">): Promise<ResolvedManifest> {
    this.lookups++;
    const key = repoTagKey(ref);
    const digest = this.pinned.get(key) ?? this.announced(key) ?? `sha256:${(++this.counter).toString(16).padStart(64, "f")}`;
    return { digest, mediaType: "application/vnd.docker.distribution.manifest.v2+json" };
  }

  /** The pinned tags of the repository: the scenarios follow no versions. */
  async listTags(ref: Pick<ImageRef, "registry" | "repository">): Promise<string[]> {
    const prefix = `${repoKey(ref)}:`;
    return [...this.pinned.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** The scenarios set no deployer.min-age, so no creation time is asked for; none is known. */
  async imageCreatedAt(): Promise<number | undefined> {
    return undefined;
  }
}
