import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * How the proxy treats a connection:
 *  - pass: bytes flow both ways;
 *  - refuse: nothing listens on the port (connect fails with ECONNREFUSED);
 *  - reset: a connection is accepted and answered with a TCP reset;
 *  - hang: a connection is accepted, its bytes are read and never answered.
 * Switching mode ends every connection open at that moment (with a reset),
 * so keep-alive connections cannot carry the old mode over.
 */
export type FaultMode = "pass" | "refuse" | "reset" | "hang";

export interface FaultProxy {
  port: number;
  mode(): FaultMode;
  set(mode: FaultMode): Promise<void>;
  /** Connections accepted so far, by the mode they met. */
  counts(): Record<FaultMode, number>;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of `upstream` (a unix socket path or a port on 127.0.0.1), whose failures the caller switches. */
export async function startFaultProxy(upstream: { socketPath: string } | { port: number }, port = 0): Promise<FaultProxy> {
  let mode: FaultMode = "pass";
  const open = new Set<Socket>();
  const counts: Record<FaultMode, number> = { pass: 0, refuse: 0, reset: 0, hang: 0 };
  let server: Server | undefined;

  const onConnection = (client: Socket) => {
    counts[mode]++;
    open.add(client);
    client.once("close", () => open.delete(client));
    client.on("error", () => undefined);
    if (mode === "reset") return void client.resetAndDestroy();
    if (mode === "hang") return void client.resume();
    const up = "socketPath" in upstream ? connect(upstream.socketPath) : connect(upstream.port, "127.0.0.1");
    open.add(up);
    up.once("close", () => {
      open.delete(up);
      client.destroy();
    });
    up.on("error", () => client.destroy());
    client.once("close", () => up.destroy());
    client.pipe(up);
    up.pipe(client);
  };

  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      const s = createServer(onConnection);
      s.once("error", reject);
      s.listen(p, "127.0.0.1", () => {
        server = s;
        resolve((s.address() as { port: number }).port);
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      if (!s) return resolve();
      s.close(() => resolve());
    });
  // A reset for TCP peers; a unix socket (the engine's) has no reset, only a close.
  const endAll = () => {
    for (const s of open) {
      if (s.remoteFamily) s.resetAndDestroy();
      else s.destroy();
    }
    open.clear();
  };

  const bound = await listen(port);
  return {
    port: bound,
    mode: () => mode,
    async set(next) {
      if (next === mode) return;
      endAll();
      if (next === "refuse") await unlisten();
      else if (!server) await listen(bound);
      mode = next;
    },
    counts: () => ({ ...counts }),
    async close() {
      endAll();
      await unlisten();
    },
  };
}
