import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { createRegistryClient } from "../../server/registry/registry-client.js";
import { RegistryError } from "../../server/registry/registry-port.js";

const DIGEST = `sha256:${"c".repeat(64)}`;

/** A plain-http registry on 127.0.0.1 that answers every manifest HEAD with DIGEST. */
async function plainRegistry() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "docker-content-digest": DIGEST, "content-type": "application/vnd.oci.image.index.v1+json" }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A raw TCP server on 127.0.0.1 (closed when the test ends), and a client with the fallback on and a login for it. */
async function fallingBackClientOf(server: net.Server) {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = createRegistryClient({
    insecureRegistries: [],
    fallbackToHttp: true,
    credentialsFor: () => ({ username: "ci", password: "a-password-never-sent-in-clear" }),
  });
  return { registry, client };
}

describe("WITH_INSECURE_REGISTRY", () => {
  it("falls back to plain http for a registry that does not speak https, then stays there", async () => {
    const registry = await plainRegistry();
    const client = createRegistryClient({ insecureRegistries: [], fallbackToHttp: true, credentialsFor: () => undefined });
    const ref = { registry, repository: "acme/web", tag: "live" };
    expect((await client.resolveDigest(ref)).digest).toBe(DIGEST);
    expect(client.requestCount()).toEqual({ head: 2, get: 0 });
    await client.resolveDigest(ref);
    expect(client.requestCount(), "the second lookup goes straight to http").toEqual({ head: 3, get: 0 });
  });

  it("does not fall back for a registry whose https connection breaks: nothing, and no credentials, go out in clear text", async () => {
    // Drops every connection once the client has spoken: a registry (or a proxy before it) in trouble, not one that speaks http.
    const received: string[] = [];
    const silent = net.createServer((socket) => {
      socket.once("data", (chunk) => {
        received.push(chunk.toString("latin1"));
        socket.destroy();
      });
    });
    const { registry, client } = await fallingBackClientOf(silent);
    for (let i = 0; i < 2; i++) {
      const err = await client.resolveDigest({ registry, repository: "acme/web", tag: "live" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).kind).toBe("unreachable");
    }
    expect(client.requestCount(), "one https attempt per lookup, no http one").toEqual({ head: 2, get: 0 });
    expect(received.join("")).not.toMatch(/HEAD |GET |Authorization/i);
  });

  it("does not fall back for a registry that speaks TLS and refuses the handshake (a TLS alert)", async () => {
    // Answers a ClientHello with a fatal protocol_version alert, as a TLS 1.0-only server does; plain text gets a registry answer.
    const plain: string[] = [];
    const strict = net.createServer((socket) => {
      socket.once("data", (chunk) => {
        if (chunk[0] === 0x16) socket.end(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]));
        else {
          plain.push(chunk.toString("latin1"));
          socket.end(`HTTP/1.1 200 OK\r\ndocker-content-digest: ${DIGEST}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
        }
      });
    });
    const { registry, client } = await fallingBackClientOf(strict);
    const err = await client.resolveDigest({ registry, repository: "acme/web", tag: "live" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(plain).toEqual([]);
  });

  it("does not fall back without it", async () => {
    const registry = await plainRegistry();
    const client = createRegistryClient({ insecureRegistries: [], credentialsFor: () => undefined });
    const err = await client.resolveDigest({ registry, repository: "acme/web", tag: "live" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).kind).toBe("unreachable");
  });
});
