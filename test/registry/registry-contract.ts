import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";
import type { ImageRef } from "../../server/domain/image-ref.js";
import { RegistryError, type RegistryPort } from "../../server/registry/registry-port.js";

export interface RegistryHarness {
  registry: RegistryPort;
  /** Pushes an image under `repository:tag` and returns its digest. */
  push(repository: string, tag: string): Promise<string>;
  /** Registry host the harness pushes to. */
  host: string;
  /** When the image a push returned the digest of was built, as its config says (epoch ms). */
  createdOf(digest: string): Promise<number>;
}

/**
 * What the engine relies on from the registry port, run against the fake and
 * against the real client talking to a real docker-registry, so the fake
 * cannot promise what the real thing does not do.
 */
export function runRegistryContract(setup: () => Promise<RegistryHarness>) {
  const ref = (h: RegistryHarness, repository: string, tag: string): Pick<ImageRef, "registry" | "repository" | "tag"> => ({
    registry: h.host,
    repository,
    tag,
  });

  it("resolves a pushed tag to the digest of the push", async () => {
    const h = await setup();
    const digest = await h.push("contract/app", "v1");
    const resolved = await h.registry.resolveDigest(ref(h, "contract/app", "v1"));
    expect(resolved.digest).toBe(digest);
  });

  it("follows a tag that was pushed again to its newer digest", async () => {
    const h = await setup();
    const first = await h.push("contract/moving", "live");
    const second = await h.push("contract/moving", "live");
    expect((await h.registry.resolveDigest(ref(h, "contract/moving", "live"))).digest).toBe(second);
    expect(second).not.toBe(first);
  });

  it("throws a not_found RegistryError for an unknown tag", async () => {
    const h = await setup();
    await h.push("contract/app", "v1");
    const err = await h.registry.resolveDigest(ref(h, "contract/app", "nope")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).kind).toBe("not_found");
  });

  it("lists every tag of a repository, across the pages of its tag list", async () => {
    const h = await setup();
    const repository = `contract/tags-${randomBytes(3).toString("hex")}`;
    for (const tag of ["1.4.2", "1.4.3", "2.0.0"]) await h.push(repository, tag);
    const tags = await h.registry.listTags({ registry: h.host, repository });
    expect([...tags].sort()).toEqual(["1.4.2", "1.4.3", "2.0.0"]);
  });

  it("throws a not_found RegistryError for the tag list of an unknown repository", async () => {
    const h = await setup();
    await h.push("contract/app", "v1");
    const err = await h.registry
      .listTags({ registry: h.host, repository: `contract/none-${randomBytes(3).toString("hex")}` })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).kind).toBe("not_found");
  });

  it("reads when a pushed image was built from its config, without pulling it", async () => {
    const h = await setup();
    const digest = await h.push("contract/created", "v1");
    expect(await h.registry.imageCreatedAt({ registry: h.host, repository: "contract/created" }, digest)).toBe(await h.createdOf(digest));
  });

  it("throws a not_found RegistryError for the creation time of a digest the repository does not hold", async () => {
    const h = await setup();
    await h.push("contract/created", "v1");
    const err = await h.registry
      .imageCreatedAt({ registry: h.host, repository: "contract/created" }, `sha256:${"0".repeat(64)}`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).kind).toBe("not_found");
  });
}
