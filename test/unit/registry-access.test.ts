import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../server/logger.js";
import { createRegistryAccess, registryAuthHeader } from "../../server/registry/registry-access.js";
import { FakeRegistry } from "../helpers/fake-registry.js";
import { createTestServer, pushAcmeWeb, sha, waitForFinal } from "../helpers/test-server.js";

const decode = (header: string | undefined) => header && JSON.parse(Buffer.from(header, "base64url").toString("utf8"));

function access(withRegistryAuth = true) {
  const lines: string[] = [];
  const log = createLogger("info", new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) }));
  const made = createRegistryAccess({
    entries: [{ registry: "docker.io", username: "default-user", password: "p0" }],
    fileEntries: [
      { id: "team-a", registry: "docker.io", username: "alice", password: "p1" },
      { id: "team-b", registry: "https://index.docker.io/v1/", username: "bob", password: "p2" },
    ],
    insecureRegistries: [],
    fallbackToHttp: false,
    withRegistryAuth,
    log,
  });
  return { ...made, lines };
}

describe("X-Registry-Auth", () => {
  it("is URL-safe base64 with its padding, which the nodes' decoder needs to read the whole login", () => {
    // Logins of every length modulo 3: only a multiple of 3 needs no padding.
    for (const password of ["p", "pw", "pwd"]) {
      const header = registryAuthHeader({ username: "u", password }, "reg.example:5000");
      expect(header.length % 4, header).toBe(0);
      expect(header).toMatch(/^[A-Za-z0-9_-]+={0,2}$/);
      expect(decode(header)).toEqual({ username: "u", password, serveraddress: "reg.example:5000" });
    }
  });
});

describe("shepherd.auth.config", () => {
  it("passes the login of the labelled REGISTRIES_FILE id to the nodes, and the default one without a label", () => {
    const a = access();
    expect(decode(a.registryAuthFor!("docker.io", "team-b"))).toEqual({ username: "bob", password: "p2", serveraddress: "docker.io" });
    expect(decode(a.registryAuthFor!("docker.io"))).toMatchObject({ username: "default-user" });
    expect(a.registryFor("team-a")).toBe(a.registryFor("team-a"));
    expect(a.registryFor("team-a")).not.toBe(a.registry);
  });

  it("gives an id the file does not have no login, and says so once", () => {
    const a = access();
    expect(a.registryAuthFor!("docker.io", "nobody")).toBeUndefined();
    a.registryAuthFor!("docker.io", "nobody");
    expect(a.lines.filter((l) => l.includes("REGISTRIES_FILE does not have"))).toHaveLength(1);
  });

  it("passes nothing to the nodes without WITH_REGISTRY_AUTH", () => {
    expect(access(false).registryAuthFor).toBeUndefined();
  });

  it("makes the poller look a tag up once per login, and the update carry the label's login", async () => {
    const teamA = new FakeRegistry();
    const server = createTestServer(
      {},
      {
        access: {
          registryFor: (id) => (id === "team-a" ? teamA : new FakeRegistry()),
          registryAuthFor: (registry, id) => `${registry}/${id ?? "default"}`,
        },
      },
    );
    const image = "acme/private:latest";
    server.swarm.addService({ name: "plain", image: `${image}@${sha(1)}` });
    server.swarm.addService({ name: "labelled", image: `${image}@${sha(1)}`, labels: { "shepherd.auth.config": "team-a" } });
    const ref = { registry: "docker.io", repository: "acme/private", tag: "latest" };
    server.registry.push(ref, sha(1));
    teamA.push(ref, sha(2));
    const { deployments } = await server.poller.runOnce();
    expect(server.registry.lookups).toEqual(["docker.io/acme/private:latest"]);
    expect(teamA.lookups).toEqual(["docker.io/acme/private:latest"]);
    const done = await waitForFinal(server, deployments[0]!);
    expect(done.service).toBe("labelled");
    expect(server.swarm.callsOf("updateService")[0]?.[2]).toMatchObject({ registryAuth: "docker.io/team-a" });
  });

  it("makes a webhook's deployment look its tag up, and read its build time, with the login of its service's label", async () => {
    const teamA = new FakeRegistry();
    const server = createTestServer({}, { access: { registryFor: (id) => (id === "team-a" ? teamA : new FakeRegistry()), labelledLogins: true } });
    const image = "127.0.0.1:5000/acme/web";
    server.swarm.addService({ name: "labelled", image: `${image}:live`, labels: { "shepherd.auth.config": "team-a", "deployer.min-age": "1m" } });
    const ref = { registry: "127.0.0.1:5000", repository: "acme/web", tag: "live" };
    // Only team-a's login sees the image: the default one finds no such tag.
    teamA.push(ref, sha(3), { createdAt: server.clock.now() - 3_600_000 });
    const { deployments } = await pushAcmeWeb(server, "live", sha(3));
    const done = await waitForFinal(server, deployments[0]!.id);
    expect(
      done.status,
      server.store
        .listEvents(done.id)
        .map((e) => e.message)
        .join("\n"),
    ).toBe("succeeded");
    expect(teamA.lookups).toContain("127.0.0.1:5000/acme/web:live");
    expect(server.registry.lookups).toEqual([]);
  });
});
