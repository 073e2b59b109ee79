import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface RegistryCounts {
  manifestHead: number;
  manifestGet: number;
  blobGet: number;
  other: number;
}

/**
 * A pass-through HTTP proxy in front of a local registry that counts what
 * reaches it, so the poller (through its registry client) and the Docker
 * engine (Shepherd's way) are counted by the same wire-level meter. Clients
 * use the proxy's address as the registry host; the Host header is passed on,
 * so the registry's own redirects come back through the proxy.
 */
export async function startCountingProxy(upstreamPort: number) {
  const counts: RegistryCounts = { manifestHead: 0, manifestGet: 0, blobGet: 0, other: 0 };
  /** Manifest requests by method and path (`HEAD /v2/reg/app/manifests/live`): which tag or digest was asked for. */
  const manifests = new Map<string, number>();
  const server = createServer((req, res) => {
    if (/\/manifests\//.test(req.url ?? "")) {
      const key = `${req.method} ${(req.url ?? "").split("?")[0]}`;
      manifests.set(key, (manifests.get(key) ?? 0) + 1);
    }
    const manifest = /\/manifests\//.test(req.url ?? "");
    if (manifest && req.method === "HEAD") counts.manifestHead++;
    else if (manifest && req.method === "GET") counts.manifestGet++;
    else if (/\/blobs\/sha256:/.test(req.url ?? "") && req.method === "GET") counts.blobGet++;
    else counts.other++;
    const upstream = request({ host: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", (err) => {
      res.writeHead(502);
      res.end(err.message);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    snapshot: (): RegistryCounts => ({ ...counts }),
    /** How often `method path` was asked for a manifest, since the start. */
    manifestRequests: (key: string): number => manifests.get(key) ?? 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined),
    closeAll: () => server.closeAllConnections(),
  };
}

export function countsSince(before: RegistryCounts, after: RegistryCounts): RegistryCounts {
  return {
    manifestHead: after.manifestHead - before.manifestHead,
    manifestGet: after.manifestGet - before.manifestGet,
    blobGet: after.blobGet - before.blobGet,
    other: after.other - before.other,
  };
}
