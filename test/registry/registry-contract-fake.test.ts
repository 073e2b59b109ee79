import { describe } from "vitest";
import { FakeRegistry } from "../helpers/fake-registry.js";
import { sha } from "../helpers/test-server.js";
import { runRegistryContract } from "./registry-contract.js";

describe("registry port contract: FakeRegistry", () => {
  let n = 0;
  runRegistryContract(async () => {
    const registry = new FakeRegistry();
    const host = "127.0.0.1:5000";
    return {
      registry,
      host,
      async push(repository, tag) {
        const digest = sha(++n);
        registry.push({ registry: host, repository, tag }, digest);
        return digest;
      },
    };
  });
});
