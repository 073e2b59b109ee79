import { createAdaptorServer } from "@hono/node-server";
import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RunningServer {
  port: number;
  /**
   * Stops accepting connections, lets every request already received finish
   * (its response asks the client to close the connection), closes idle
   * keep-alive connections and resolves once the last one is gone. After
   * `timeoutMs` the remaining connections are cut so the process exits
   * before swarm's stop grace period ends in a SIGKILL.
   */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Listens with the fetch handler and keeps what a drain without dropped requests needs. */
export async function startServer(opts: {
  fetch: (request: Request) => Response | Promise<Response>;
  port: number;
  hostname: string;
}): Promise<RunningServer> {
  const server = createAdaptorServer({ fetch: opts.fetch }) as Server;
  const inFlight = new Set<ServerResponse>();
  let draining = false;

  // Prepended so it runs before the adaptor's handler has had a chance to send headers.
  server.prependListener("request", (_req, res: ServerResponse) => {
    // A keep-alive client would otherwise send its next request into a socket we are about to close.
    if (draining) res.setHeader("connection", "close");
    inFlight.add(res);
    res.once("close", () => inFlight.delete(res));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });

  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    shutdown(timeoutMs) {
      closed ??= new Promise<void>((resolve) => {
        draining = true;
        for (const res of inFlight) {
          if (!res.headersSent) res.setHeader("connection", "close");
        }
        const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
        deadline.unref();
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
