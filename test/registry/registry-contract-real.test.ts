import { afterAll, beforeAll } from "vitest";
import { createRegistryClient } from "../../server/registry/registry-client.js";
import { describeDocker, startRegistry, uniqueName, type TestRegistry } from "../helpers/docker-env.js";
import { buildAppImage, docker, pushImage, removeImages } from "../helpers/images.js";
import { runRegistryContract } from "./registry-contract.js";

describeDocker(
  "registry port contract: registry client against a real docker-registry",
  () => {
    let registry: TestRegistry;
    const local = { a: `${uniqueName("regcontract")}:a`, b: `${uniqueName("regcontract")}:b` };
    const pushed: string[] = [];
    const sourceOf = new Map<string, string>();
    let flip = 0;

    beforeAll(async () => {
      registry = await startRegistry();
      await buildAppImage({ tag: local.a, version: "a" });
      await buildAppImage({ tag: local.b, version: "b" });
    });

    afterAll(async () => {
      await removeImages(local.a, local.b, ...pushed);
      await registry?.stop();
    });

    runRegistryContract(async () => ({
      host: registry.host,
      // Two tags a page, so that the tag list's Link pagination is followed against the real registry.
      registry: createRegistryClient({ insecureRegistries: [registry.host], credentialsFor: () => undefined, tagsPageSize: 2 }),
      async push(repository, tag) {
        // Alternate between two builds so that pushing a tag again moves it to other content.
        const source = flip++ % 2 === 0 ? local.a : local.b;
        const target = `${registry.host}/${repository}:${tag}`;
        await docker(["tag", source, target]);
        pushed.push(target);
        const digest = await pushImage(target);
        sourceOf.set(digest, source);
        return digest;
      },
      async createdOf(digest) {
        const created = await docker(["image", "inspect", "--format", "{{.Created}}", sourceOf.get(digest)!]);
        return Date.parse(created.stdout.trim());
      },
    }));
  },
  { timeout: 60_000 },
);
