import { repoKey, repoTagKey, type ImageRef } from "../../server/domain/image-ref.js";
import type { RateLimit } from "../../server/registry/registry-headers.js";
import { RegistryError, type RegistryPort, type ResolvedManifest } from "../../server/registry/registry-port.js";

/**
 * A registry that knows only the tags a test pushed into it, recording every
 * lookup. It runs the same contract suite as the real client against a real
 * docker-registry (test/registry/registry-contract.ts).
 */
export class FakeRegistry implements RegistryPort {
  readonly lookups: string[] = [];
  /** `registry/repo` of every tag list asked for, in order. */
  readonly tagLists: string[] = [];
  private readonly tags = new Map<string, string>();
  private readonly created = new Map<string, number>();
  /** `registry/repo` of every creation time asked for, in order. */
  readonly createdLookups: string[] = [];
  private failure?: RegistryError;
  private readonly failures = new Map<string, RegistryError>();
  private readonly rateLimits = new Map<string, RateLimit>();

  /** Points `registry/repo:tag` at a digest, as a push would. */
  push(image: Pick<ImageRef, "registry" | "repository" | "tag">, digest: string, opts: { createdAt?: number } = {}): void {
    this.tags.set(repoTagKey(image), digest);
    if (opts.createdAt !== undefined) this.created.set(`${repoKey(image)}@${digest}`, opts.createdAt);
  }

  /** Every lookup fails with this error until cleared with undefined. */
  failWith(error: RegistryError | undefined): void {
    this.failure = error;
  }

  /** Lookups of this one `registry/repo:tag` fail with `error` until cleared with undefined. */
  failTagWith(image: Pick<ImageRef, "registry" | "repository" | "tag">, error: RegistryError | undefined): void {
    if (error) this.failures.set(repoTagKey(image), error);
    else this.failures.delete(repoTagKey(image));
  }

  /** What the registry's `ratelimit-*` headers report from now on, as the real client keeps it. */
  setRateLimit(registry: string, rate: RateLimit | undefined): void {
    if (rate) this.rateLimits.set(registry, rate);
    else this.rateLimits.delete(registry);
  }

  lastRateLimit(registry: string): RateLimit | undefined {
    const rate = this.rateLimits.get(registry);
    return rate && { ...rate };
  }

  async resolveDigest(ref: Pick<ImageRef, "registry" | "repository" | "tag">): Promise<ResolvedManifest> {
    const key = repoTagKey(ref);
    this.lookups.push(key);
    if (this.failure) throw this.failure;
    const failure = this.failures.get(key);
    if (failure) throw failure;
    const digest = this.tags.get(key);
    if (!digest) throw new RegistryError("not_found", `${ref.repository}:${ref.tag} was not found on ${ref.registry}`);
    return { digest, mediaType: "application/vnd.docker.distribution.manifest.v2+json" };
  }

  /** The repository's tags in lexical order, as distribution lists them; a repository with none is unknown. */
  async listTags(ref: Pick<ImageRef, "registry" | "repository">): Promise<string[]> {
    const name = repoKey(ref);
    this.tagLists.push(name);
    if (this.failure) throw this.failure;
    const tags = [...this.tags.keys()].filter((k) => k.startsWith(`${name}:`)).map((k) => k.slice(name.length + 1));
    if (tags.length === 0) throw new RegistryError("not_found", `repository ${ref.repository} was not found on ${ref.registry}`);
    return tags.sort();
  }

  /** The creation time given with the push; a digest pushed without one has none, one never pushed is unknown. */
  async imageCreatedAt(ref: Pick<ImageRef, "registry" | "repository">, digest: string): Promise<number | undefined> {
    const name = repoKey(ref);
    this.createdLookups.push(name);
    if (this.failure) throw this.failure;
    const known = [...this.tags.entries()].some(([k, d]) => k.startsWith(`${name}:`) && d === digest);
    if (!known) throw new RegistryError("not_found", `${ref.repository}@${digest} was not found on ${ref.registry}`);
    return this.created.get(`${name}@${digest}`);
  }
}
