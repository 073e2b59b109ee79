import { describe } from "vitest";
import { FakeRegistry } from "../helpers/fake-registry.js";
import { sha } from "../helpers/test-server.js";
import { runRegistryContract } from "./registry-contract.js";

describe("registry port contract: FakeRegistry", () => {
  let n = 0;
  const created = new Map<string, number>();
  runRegistryContract(async () => {
    const registry = new FakeRegistry();
    const host = "127.0.0.1:5000";
    return {
      registry,
      host,
      async push(repository, tag) {
        const digest = sha(++n);
        const createdAt = Date.UTC(2026, 10, 1) + n * 1000;
        created.set(digest, createdAt);
        registry.push({ registry: host, repository, tag }, digest, { createdAt });
        return digest;
      },
      createdOf: async (digest) => created.get(digest)!,
    };
  });
});
