import { describe, expect, it } from "vitest";
import { createCredentialStore, normalizeRegistryHost, parseRegistriesFile } from "../../server/registry/credentials.js";

function thrownMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected the call to throw");
}

describe("createCredentialStore", () => {
  it("treats every Docker Hub spelling as docker.io", () => {
    const lookup = createCredentialStore([{ registry: "https://index.docker.io/v1/", username: "hubuser", password: "p1" }]);

    for (const registry of ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"]) {
      expect(lookup(registry), registry).toEqual({ username: "hubuser", password: "p1" });
    }
  });

  it("matches other registries by host and port, ignoring scheme, path and case", () => {
    const lookup = createCredentialStore([
      { registry: "HTTPS://Registry.Example.com:5000/some/path", username: "a", password: "p" },
      { registry: "127.0.0.1:5000", username: "b", password: "q" },
    ]);

    expect(lookup("registry.example.com:5000")).toEqual({ username: "a", password: "p" });
    expect(lookup("127.0.0.1:5000")).toEqual({ username: "b", password: "q" });
    expect(lookup("registry.example.com"), "another port is another registry").toBeUndefined();
    expect(lookup("docker.io")).toBeUndefined();
  });

  it("keeps the first entry when a registry is listed twice", () => {
    const lookup = createCredentialStore([
      { registry: "ghcr.io", username: "first", password: "1" },
      { registry: "https://ghcr.io", username: "second", password: "2" },
    ]);

    expect(lookup("ghcr.io")?.username).toBe("first");
  });

  it("normalizes hosts", () => {
    expect(normalizeRegistryHost(" registry-1.docker.io ")).toBe("docker.io");
    expect(normalizeRegistryHost("http://localhost:5000/v2/")).toBe("localhost:5000");
  });
});

describe("parseRegistriesFile", () => {
  it("reads tab-separated lines and skips blank lines and comments", () => {
    const text = [
      "# id\tregistry\tuser\tpassword",
      "",
      "hub\tdocker.io\thubuser\thub pass with spaces",
      "   ",
      "  # indented comment",
      "local\t127.0.0.1:5000\tci\tp@ssword\r",
    ].join("\n");

    expect(parseRegistriesFile(text)).toEqual([
      { id: "hub", registry: "docker.io", username: "hubuser", password: "hub pass with spaces" },
      { id: "local", registry: "127.0.0.1:5000", username: "ci", password: "p@ssword" },
    ]);
  });

  it("merges runs of tabs the way Shepherd's bash read does", () => {
    expect(parseRegistriesFile("cfg\t\tghcr.io\tuser\t\tsecret\t\n")).toEqual([
      { id: "cfg", registry: "ghcr.io", username: "user", password: "secret" },
    ]);
  });

  it("throws naming the line number but not the password for a malformed line", () => {
    const text = "# header\nok\tdocker.io\tu\tp\nbroken docker.io user topsecret-password\n";

    const message = thrownMessage(() => parseRegistriesFile(text));

    expect(message).toMatch(/line 3/);
    expect(message).not.toContain("topsecret-password");
  });

  it("throws for a line with too many fields without echoing it", () => {
    const text = "a\tdocker.io\tuser\tpass\twith-tab-secret";

    const message = thrownMessage(() => parseRegistriesFile(text));

    expect(message).toMatch(/line 1: expected 4 tab-separated fields.*found 5/);
    expect(message).not.toContain("with-tab-secret");
  });

  it("returns no entries for an empty file", () => {
    expect(parseRegistriesFile("")).toEqual([]);
    expect(parseRegistriesFile("\n# only a comment\n")).toEqual([]);
  });
});
