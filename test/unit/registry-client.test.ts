import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { createRegistryClient, registryOrigin, type RegistryClientOptions } from "../../server/registry/registry-client.js";
import { parseAuthChallenges } from "../../server/registry/registry-headers.js";
import { RegistryError, type RegistryCredentials } from "../../server/registry/registry-port.js";

const DIGEST = `sha256:${"a".repeat(64)}`;
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
];
const MANIFEST_PATH = "/v2/acme/web/manifests/1.2";

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

type Handler = (req: Recorded, res: http.ServerResponse, base: string) => void;

/** A real HTTP server on 127.0.0.1 that records every request and closes when the test ends. */
async function startServer(handler: Handler) {
  const requests: Recorded[] = [];
  let base = "";
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", base);
    const recorded = { method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers };
    requests.push(recorded);
    handler(recorded, res, base);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => closeServer(server));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  base = `http://${host}`;
  return { host, base, requests, server };
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function describeRequests(requests: Recorded[]): string {
  return JSON.stringify(requests.map((r) => ({ method: r.method, path: r.path, query: `${r.query}`, auth: r.headers.authorization })));
}

function clientFor(host: string, overrides: Partial<RegistryClientOptions> = {}) {
  return createRegistryClient({ insecureRegistries: [host], credentialsFor: () => undefined, ...overrides });
}

const ref = (registry: string) => ({ registry, repository: "acme/web", tag: "1.2" });

function answerManifest(res: http.ServerResponse, headers: Record<string, string> = {}) {
  res.writeHead(200, { "Content-Type": INDEX_TYPE, "Docker-Content-Digest": DIGEST, "Content-Length": "0", ...headers });
  res.end();
}

function bearerChallenge(base: string): string {
  // The quoted scope holds a comma, which a naive split(",") would cut in two.
  return `Bearer realm="${base}/token",service="test-registry",scope="repository:acme/web:pull,push"`;
}

/** A registry that wants `Bearer <token>` and a token service that hands it out. */
function bearerRegistry(tokenBody: () => object, expectedAuth?: string): Handler {
  return (req, res, base) => {
    if (req.path === "/token") {
      if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(tokenBody()));
      return;
    }
    const body = tokenBody() as { token?: string; access_token?: string };
    if (req.headers.authorization !== `Bearer ${body.token ?? body.access_token}`) {
      res.writeHead(401, { "WWW-Authenticate": bearerChallenge(base) }).end();
      return;
    }
    answerManifest(res);
  };
}

async function resolveError(promise: Promise<unknown>): Promise<RegistryError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error(`expected a RegistryError, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error, String(outcome.error)).toBeInstanceOf(RegistryError);
  return outcome.error as RegistryError;
}

const basic = (c: RegistryCredentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;

describe("registry client", () => {
  it("asks with one Accept header listing all four manifest types and returns the top-level digest", async () => {
    const { host, requests } = await startServer((req, res) => answerManifest(res, { "Content-Type": `${INDEX_TYPE}; charset=utf-8` }));
    const client = clientFor(host);

    const resolved = await client.resolveDigest(ref(host));

    expect(resolved).toEqual({ digest: DIGEST, mediaType: INDEX_TYPE });
    expect(
      requests.map((r) => `${r.method} ${r.path}`),
      describeRequests(requests),
    ).toEqual([`HEAD ${MANIFEST_PATH}`]);
    const accept = requests[0]?.headers.accept ?? "";
    expect(
      accept
        .split(",")
        .map((t) => t.trim())
        .sort(),
      accept,
    ).toEqual([...MANIFEST_TYPES].sort());
    expect(client.requestCount()).toEqual({ head: 1, get: 0 });
  });

  it("uses https for registries not listed as insecure", async () => {
    const { host, requests } = await startServer((req, res) => answerManifest(res));
    const client = createRegistryClient({ insecureRegistries: [], credentialsFor: () => undefined, timeoutMs: 2000 });

    const error = await resolveError(client.resolveDigest(ref(host)));

    // A TLS handshake against a plain-http server fails before any HTTP request is parsed.
    expect(error.kind, error.message).toBe("unreachable");
    expect(requests, describeRequests(requests)).toHaveLength(0);
  });

  it("reaches Docker Hub at registry-1.docker.io over https", () => {
    expect(registryOrigin("docker.io", [])).toBe("https://registry-1.docker.io");
    expect(registryOrigin("ghcr.io", [])).toBe("https://ghcr.io");
    expect(registryOrigin("127.0.0.1:5000", ["127.0.0.1:5000"])).toBe("http://127.0.0.1:5000");
    expect(registryOrigin("127.0.0.1:5001", ["127.0.0.1:5000"])).toBe("https://127.0.0.1:5001");
  });

  it("resolves a tag through the bearer-token flow anonymously", async () => {
    const { host, requests } = await startServer(bearerRegistry(() => ({ token: "anon-token" })));
    const client = clientFor(host);

    const resolved = await client.resolveDigest(ref(host));

    expect(resolved.digest).toBe(DIGEST);
    const log = describeRequests(requests);
    expect(
      requests.map((r) => `${r.method} ${r.path}`),
      log,
    ).toEqual([`HEAD ${MANIFEST_PATH}`, "GET /token", `HEAD ${MANIFEST_PATH}`]);
    const tokenRequest = requests[1]!;
    expect(tokenRequest.query.get("service"), log).toBe("test-registry");
    expect(tokenRequest.query.get("scope"), log).toBe("repository:acme/web:pull");
    expect(tokenRequest.headers.authorization, log).toBeUndefined();
    expect(requests[2]?.headers.authorization, log).toBe("Bearer anon-token");
    expect(client.requestCount()).toEqual({ head: 2, get: 0 });
  });

  it("sends configured credentials as HTTP Basic to the token service", async () => {
    const credentials = { username: "deployer", password: "pa:ss word" };
    const { host, requests } = await startServer(bearerRegistry(() => ({ token: "user-token" }), basic(credentials)));
    const client = clientFor(host, { credentialsFor: (registry) => (registry === host ? credentials : undefined) });

    const resolved = await client.resolveDigest(ref(host));

    expect(resolved.digest, describeRequests(requests)).toBe(DIGEST);
    expect(requests[1]?.headers.authorization).toBe(basic(credentials));
  });

  it("reuses a token until it expires and then fetches a new one", async () => {
    let clock = 1_000_000;
    const { host, requests } = await startServer(bearerRegistry(() => ({ token: "t", expires_in: 300 })));
    const client = clientFor(host, { now: () => clock });
    const tokenCalls = () => requests.filter((r) => r.path === "/token").length;

    await client.resolveDigest(ref(host));
    await client.resolveDigest(ref(host));
    expect(tokenCalls(), describeRequests(requests)).toBe(1);
    expect(requests[3]?.headers.authorization, "the second resolve sends the cached token at once").toBe("Bearer t");

    clock += 300_000;
    await client.resolveDigest(ref(host));
    expect(tokenCalls(), describeRequests(requests)).toBe(2);
  });

  it("keeps a token for at least 60 seconds whatever expires_in says", async () => {
    let clock = 0;
    const { host, requests } = await startServer(bearerRegistry(() => ({ token: "t", expires_in: 5 })));
    const client = clientFor(host, { now: () => clock });
    const tokenCalls = () => requests.filter((r) => r.path === "/token").length;

    await client.resolveDigest(ref(host));
    clock = 30_000;
    await client.resolveDigest(ref(host));
    expect(tokenCalls(), describeRequests(requests)).toBe(1);
    clock = 61_000;
    await client.resolveDigest(ref(host));
    expect(tokenCalls(), describeRequests(requests)).toBe(2);
  });

  it("accepts a token service that answers with access_token", async () => {
    const { host, requests } = await startServer(bearerRegistry(() => ({ access_token: "oauth-token" })));

    const resolved = await clientFor(host).resolveDigest(ref(host));

    expect(resolved.digest, describeRequests(requests)).toBe(DIGEST);
    expect(requests.at(-1)?.headers.authorization).toBe("Bearer oauth-token");
  });

  it("answers a Basic challenge with the configured credentials", async () => {
    const credentials = { username: "ci", password: "basic-secret" };
    const { host, requests } = await startServer((req, res) => {
      if (req.headers.authorization !== basic(credentials)) {
        res.writeHead(401, { "WWW-Authenticate": 'Basic realm="Registry Realm, private"' }).end();
        return;
      }
      answerManifest(res);
    });
    const client = clientFor(host, { credentialsFor: () => credentials });

    expect((await client.resolveDigest(ref(host))).digest, describeRequests(requests)).toBe(DIGEST);
    await client.resolveDigest(ref(host));
    expect(client.requestCount(), "the second resolve sends Basic auth at once").toEqual({ head: 3, get: 0 });
  });

  it("reports unauthorized when a Basic registry has no credentials configured", async () => {
    const { host } = await startServer((req, res) => res.writeHead(401, { "WWW-Authenticate": 'Basic realm="r"' }).end());

    const error = await resolveError(clientFor(host).resolveDigest(ref(host)));

    expect(error.kind, error.message).toBe("unauthorized");
    expect(error.message).toContain("no credentials");
  });

  it("reports unauthorized on a second 401 without revealing the password or the token", async () => {
    const credentials = { username: "deployer", password: "hunter2-very-secret" };
    const { host, requests } = await startServer((req, res, base) => {
      if (req.path === "/token") {
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: "tok-never-shown" }));
        return;
      }
      res.writeHead(401, { "WWW-Authenticate": bearerChallenge(base) }).end();
    });
    const client = clientFor(host, { credentialsFor: () => credentials });

    const error = await resolveError(client.resolveDigest(ref(host)));

    expect(error.kind, error.message).toBe("unauthorized");
    expect(error.message).toContain(`${host}/acme/web:1.2`);
    expect(error.message).not.toContain(credentials.password);
    expect(error.message).not.toContain("tok-never-shown");
    expect(
      requests.map((r) => r.method),
      describeRequests(requests),
    ).toEqual(["HEAD", "GET", "HEAD"]);
  });

  it("reports unauthorized when the token service rejects the credentials", async () => {
    const credentials = { username: "deployer", password: "wrong-password" };
    const { host } = await startServer(bearerRegistry(() => ({ token: "t" }), "Basic something-else"));

    const error = await resolveError(clientFor(host, { credentialsFor: () => credentials }).resolveDigest(ref(host)));

    expect(error.kind, error.message).toBe("unauthorized");
    expect(error.message).not.toContain(credentials.password);
  });

  it("falls back to GET and hashes the body when HEAD carries no digest header", async () => {
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [] });
    const { host, requests } = await startServer((req, res) => {
      res.writeHead(200, { "Content-Type": INDEX_TYPE, "Content-Length": Buffer.byteLength(manifest) });
      res.end(req.method === "GET" ? manifest : undefined);
    });
    const client = clientFor(host);

    const resolved = await client.resolveDigest(ref(host));

    const expected = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
    expect(resolved, describeRequests(requests)).toEqual({ digest: expected, mediaType: INDEX_TYPE });
    expect(requests[1]?.headers.accept?.split(",").length).toBe(4);
    expect(client.requestCount()).toEqual({ head: 1, get: 1 });
  });

  it("asks with GET when the registry refuses HEAD (405, 501), and hashes the manifest it sends", async () => {
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [] });
    for (const status of [405, 501]) {
      const { host, requests } = await startServer((req, res) => {
        if (req.method === "HEAD") res.writeHead(status).end();
        else res.writeHead(200, { "Content-Type": INDEX_TYPE, "Content-Length": Buffer.byteLength(manifest) }).end(manifest);
      });
      const resolved = await clientFor(host).resolveDigest(ref(host));
      expect(resolved.digest, describeRequests(requests)).toBe(`sha256:${createHash("sha256").update(manifest).digest("hex")}`);
      expect(requests.map((r) => r.method)).toEqual(["HEAD", "GET"]);
    }
  });

  it("reports not_found naming repo:tag when the registry answers 404", async () => {
    const { host } = await startServer((req, res) => res.writeHead(404).end());

    const error = await resolveError(clientFor(host).resolveDigest(ref(host)));

    expect(error.kind, error.message).toBe("not_found");
    expect(error.message).toContain("acme/web:1.2");
  });

  it("reports rate_limited on 429 and records Docker Hub's ratelimit headers", async () => {
    let remaining = 76;
    const { host } = await startServer((req, res) => {
      const limits = { "ratelimit-limit": "100;w=21600", "ratelimit-remaining": `${remaining};w=21600` };
      if (remaining === 0) res.writeHead(429, limits).end();
      else answerManifest(res, limits);
    });
    const client = clientFor(host);
    expect(client.lastRateLimit(host)).toBeUndefined();

    await client.resolveDigest(ref(host));
    expect(client.lastRateLimit(host)).toEqual({ limit: 100, remaining: 76, windowSeconds: 21600 });

    remaining = 0;
    const error = await resolveError(client.resolveDigest(ref(host)));
    expect(error.kind, error.message).toBe("rate_limited");
    expect(client.lastRateLimit(host)).toEqual({ limit: 100, remaining: 0, windowSeconds: 21600 });
    expect(client.lastRateLimit("docker.io")).toBeUndefined();
  });

  it("reports a 5xx as unreachable (tried again), a 403 as unauthorized (DENIED), and protocol with the status on other errors", async () => {
    for (const status of [500, 502, 503, 504]) {
      const { host } = await startServer((req, res) => res.writeHead(status).end());
      const error = await resolveError(clientFor(host).resolveDigest(ref(host)));
      expect(error.kind, error.message).toBe("unreachable");
      expect(error.message).toContain(`HTTP ${status}`);
    }
    for (const [status, kind] of [
      [403, "unauthorized"],
      [400, "protocol"],
    ] as const) {
      const { host } = await startServer((req, res) => res.writeHead(status).end());
      const error = await resolveError(clientFor(host).resolveDigest(ref(host)));
      expect(error.kind, error.message).toBe(kind);
      expect(error.message).toContain(`HTTP ${status}`);
    }
  });

  it("reports a token service that cannot answer (5xx) as unreachable, to be tried again", async () => {
    for (const status of [502, 503]) {
      const { host } = await startServer((req, res, base) => {
        if (req.path === "/token") return void res.writeHead(status).end();
        res.writeHead(401, { "WWW-Authenticate": bearerChallenge(base) }).end();
      });
      const error = await resolveError(clientFor(host).resolveDigest(ref(host)));
      expect(error.kind, error.message).toBe("unreachable");
      expect(error.message).toBe(`token service http://${host} could not answer for repository:acme/web:pull (HTTP ${status})`);
    }
  });

  it("refuses a Docker schema 1 manifest, which Docker no longer pulls, rather than pin it", async () => {
    for (const type of ["application/vnd.docker.distribution.manifest.v1+prettyjws", "application/vnd.docker.distribution.manifest.v1+json"]) {
      const { host } = await startServer((req, res) => answerManifest(res, { "Content-Type": type }));
      const error = await resolveError(clientFor(host).resolveDigest(ref(host)));
      expect(error.kind, error.message).toBe("protocol");
      expect(error.message).toContain("schema 1");
    }
  });

  it("gives up on a manifest body past 4 MiB as it arrives, declared or not, without reading the rest", async () => {
    for (const declared of [true, false]) {
      let sent = 0;
      const { host } = await startServer((req, res) => {
        res.writeHead(200, { "Content-Type": INDEX_TYPE, ...(declared ? { "Content-Length": String(64 * 1024 * 1024) } : {}) });
        if (req.method === "HEAD") return void res.end();
        const chunk = Buffer.alloc(256 * 1024, 0x20);
        const more = () => {
          while (sent < 64 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once("drain", more);
          }
          res.end();
        };
        res.on("error", () => undefined);
        more();
      });
      const error = await resolveError(clientFor(host).resolveDigest(ref(host)));
      expect(error.kind, error.message).toBe("protocol");
      expect(error.message).toContain("exceeds 4 MiB");
      // The registry could send little more than what the client read before it gave up: not the 64 MiB.
      expect(sent, declared ? "declared" : "streamed").toBeLessThan(32 * 1024 * 1024);
    }
  });

  it("reports protocol when the digest header is malformed", async () => {
    const { host } = await startServer((req, res) => answerManifest(res, { "Docker-Content-Digest": "sha256:nothex" }));

    const error = await resolveError(clientFor(host).resolveDigest(ref(host)));

    expect(error.kind, error.message).toBe("protocol");
  });

  it("reports unreachable when nothing listens on the port", async () => {
    const { host, server } = await startServer(() => undefined);
    await closeServer(server);

    const error = await resolveError(clientFor(host).resolveDigest(ref(host)));

    expect(error.kind, error.message).toBe("unreachable");
    expect(error.message).toContain(host);
  });

  it("reports unreachable when the registry does not answer in time", async () => {
    const { host } = await startServer(() => undefined);

    const error = await resolveError(clientFor(host, { timeoutMs: 200 }).resolveDigest(ref(host)));

    expect(error.kind, error.message).toBe("unreachable");
    expect(error.message).toContain("200 ms");
  });
});

describe("parseAuthChallenges", () => {
  it("keeps commas inside quoted values and reads every parameter", () => {
    expect(
      parseAuthChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'),
    ).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:samalba/my-app:pull,push",
        },
      },
    ]);
  });

  it("separates several challenges and handles escapes, spaces and unquoted values", () => {
    expect(parseAuthChallenges('Basic realm="say \\"hi\\", please" , BEARER Realm=https://x/token, error=insufficient_scope')).toEqual([
      { scheme: "basic", params: { realm: 'say "hi", please' } },
      { scheme: "bearer", params: { realm: "https://x/token", error: "insufficient_scope" } },
    ]);
  });
});

describe("registry client: when an image was built", () => {
  const imageDigest = `sha256:${"b".repeat(64)}`;
  const configDigest = `sha256:${"c".repeat(64)}`;
  const attestation = `sha256:${"d".repeat(64)}`;
  const arm = `sha256:${"e".repeat(64)}`;

  /** An index of an attestation, an arm64 image and the amd64 one, each image with a config of `created`. */
  function multiArch(created: unknown): Handler {
    const bodies: Record<string, object> = {
      [`/v2/acme/web/manifests/${DIGEST}`]: {
        mediaType: INDEX_TYPE,
        manifests: [
          { digest: attestation, platform: { os: "unknown", architecture: "unknown" } },
          { digest: arm, platform: { os: "linux", architecture: "arm64" } },
          { digest: imageDigest, platform: { os: "linux", architecture: "amd64" } },
        ],
      },
      [`/v2/acme/web/manifests/${imageDigest}`]: { config: { digest: configDigest } },
      [`/v2/acme/web/blobs/${configDigest}`]: { created, architecture: "amd64" },
    };
    return (req, res) => {
      const body = bodies[req.path];
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    };
  }

  it("follows an index to its linux/amd64 image and reads the config's created, with GETs only", async () => {
    const { host, requests } = await startServer(multiArch("2026-11-30T08:15:00.123456789Z"));
    const client = clientFor(host, { now: () => Date.UTC(2026, 11, 1) });
    expect(await client.imageCreatedAt({ registry: host, repository: "acme/web" }, DIGEST)).toBe(Date.parse("2026-11-30T08:15:00.123Z"));
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /v2/acme/web/manifests/${DIGEST}`,
      `GET /v2/acme/web/manifests/${imageDigest}`,
      `GET /v2/acme/web/blobs/${configDigest}`,
    ]);
    expect(requests[0]?.headers.accept?.split(",").length).toBe(4);
    expect(client.requestCount()).toEqual({ head: 0, get: 2 });
  });

  it("has no creation time for a config without one, one before 2000 (a reproducible build's) or one in the future", async () => {
    for (const created of [undefined, "1970-01-01T00:00:00Z", "1980-01-01T00:00:01Z", "2027-01-01T00:00:00Z", "yesterday", 42]) {
      const { host } = await startServer(multiArch(created));
      const client = clientFor(host, { now: () => Date.UTC(2026, 11, 1) });
      expect(await client.imageCreatedAt({ registry: host, repository: "acme/web" }, DIGEST), String(created)).toBeUndefined();
    }
  });

  it("reports protocol for a manifest that is not JSON, and refuses a malformed digest before asking", async () => {
    const { host, requests } = await startServer((_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end("<html>"));
    const client = clientFor(host);
    await expect(client.imageCreatedAt({ registry: host, repository: "acme/web" }, DIGEST)).rejects.toMatchObject({ kind: "protocol" });
    await expect(client.imageCreatedAt({ registry: host, repository: "acme/web" }, "sha256:nope")).rejects.toMatchObject({ kind: "protocol" });
    expect(requests).toHaveLength(1);
  });
});
