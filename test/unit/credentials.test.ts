import { describe, expect, it } from "vitest";
import {
  createCredentialStore,
  loadRegistryLogins,
  normalizeRegistryHost,
  parseDockerConfig,
  parseRegistriesFile,
} from "../../server/registry/credentials.js";

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

    expect(parseRegistriesFile(text)).toEqual({
      entries: [
        { id: "hub", registry: "docker.io", username: "hubuser", password: "hub pass with spaces" },
        { id: "local", registry: "127.0.0.1:5000", username: "ci", password: "p@ssword" },
      ],
      skipped: [],
    });
  });

  it("merges runs of tabs the way Shepherd's bash read does", () => {
    expect(parseRegistriesFile("cfg\t\tghcr.io\tuser\t\tsecret\t\n").entries).toEqual([
      { id: "cfg", registry: "ghcr.io", username: "user", password: "secret" },
    ]);
  });

  it("skips an invalid line as Shepherd does, and names it by number only, never echoing it", () => {
    const text = "# header\nok\tdocker.io\tu\tp\nbroken docker.io user topsecret-password\na\tdocker.io\tuser\tpass\twith-tab-secret\n";
    const read = parseRegistriesFile(text);
    expect(read.entries).toEqual([{ id: "ok", registry: "docker.io", username: "u", password: "p" }]);
    expect(read.skipped.map((s) => s.line)).toEqual([3, 4]);
    expect(read.skipped[1]!.reason).toMatch(/expected 4 tab-separated fields.*found 5/);
    expect(JSON.stringify(read.skipped)).not.toMatch(/topsecret|with-tab-secret/);
  });

  it('takes a line whose id holds a # for a comment, as Shepherd\'s =~ "#" does', () => {
    expect(parseRegistriesFile("team#a\tdocker.io\tu\tp\n")).toEqual({ entries: [], skipped: [] });
  });

  it("returns no entries for an empty file", () => {
    expect(parseRegistriesFile("").entries).toEqual([]);
    expect(parseRegistriesFile("\n# only a comment\n").entries).toEqual([]);
  });
});

const b64 = (text: string) => Buffer.from(text).toString("base64");

describe("a docker CLI config", () => {
  it("gives the logins docker login wrote, by auth or by username and password", () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          "https://index.docker.io/v1/": { auth: b64("hubuser:pa:ss") },
          "ghcr.io": { username: "gh", password: "ghp_x" },
          "acr.example.io": { identitytoken: "refresh-token" },
        },
        credHelpers: { "123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login" },
      }),
    );
    expect(config.entries).toEqual([
      { registry: "https://index.docker.io/v1/", username: "hubuser", password: "pa:ss" },
      { registry: "ghcr.io", username: "gh", password: "ghp_x" },
    ]);
    expect(config.unusable).toEqual(["acr.example.io"]);
    expect(config.helpers).toEqual(["ecr-login"]);
    expect(createCredentialStore(config.entries)("registry-1.docker.io")).toEqual({ username: "hubuser", password: "pa:ss" });
  });

  it("refuses what is not a JSON object", () => {
    expect(() => parseDockerConfig("[]")).toThrow();
    expect(() => parseDockerConfig("{")).toThrow();
  });
});

describe("the logins the server starts with", () => {
  const files = (contents: Record<string, string>) => ({ exists: (p: string) => p in contents, read: (p: string) => contents[p]! });
  const sources = { passwordFile: "/run/secrets/shepherd_registry_password", dockerConfigFile: "/root/.docker/config.json" };

  it("read the password from the Docker secret before REGISTRY_PASSWORD, as Shepherd does", () => {
    const warnings: string[] = [];
    const logins = loadRegistryLogins(
      { ...sources, user: "ci", password: "from-env", host: "ghcr.io" },
      files({ "/run/secrets/shepherd_registry_password": "from-secret\n" }),
      (_f, m) => void warnings.push(m),
    );
    expect(logins.entries).toEqual([{ registry: "ghcr.io", username: "ci", password: "from-secret" }]);
    expect(warnings).toEqual([]);
  });

  it("give a service without shepherd.auth.config REGISTRY_USER's login and the docker config's, and REGISTRIES_FILE's lines only to labelled ones", () => {
    const warnings: Array<Record<string, unknown>> = [];
    const logins = loadRegistryLogins(
      { ...sources, user: "ci", password: "pw", registriesFile: "/etc/registries" },
      files({
        "/root/.docker/config.json": JSON.stringify({ auths: { "docker.io": { auth: b64("mounted:old") }, "ghcr.io": { auth: b64("gh:tok") } } }),
        "/etc/registries": "team-a\tquay.io\talice\tp1\nbad line\n",
      }),
      (fields) => void warnings.push(fields),
    );
    const unlabelled = createCredentialStore(logins.entries);
    expect(unlabelled("docker.io"), "docker login's own wins over the file's entry").toEqual({ username: "ci", password: "pw" });
    expect(unlabelled("ghcr.io")).toEqual({ username: "gh", password: "tok" });
    expect(unlabelled("quay.io"), "a REGISTRIES_FILE line is its id's alone").toBeUndefined();
    expect(logins.fileEntries).toEqual([{ id: "team-a", registry: "quay.io", username: "alice", password: "p1" }]);
    expect(warnings).toEqual([expect.objectContaining({ file: "/etc/registries", line: 2 })]);
  });

  it("go on without a docker config that cannot be read, saying why", () => {
    const warnings: string[] = [];
    const logins = loadRegistryLogins(sources, files({ "/root/.docker/config.json": "not json" }), (_f, m) => void warnings.push(m));
    expect(logins).toEqual({ entries: [], fileEntries: [] });
    expect(warnings).toEqual([expect.stringContaining("cannot be read")]);
  });
});
