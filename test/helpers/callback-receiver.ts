import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A local HTTP endpoint that records the JSON bodies POSTed to it (Docker Hub callbacks, notifications). */
export async function startCallbackReceiver(status = 200) {
  const received: Array<{ path: string; body: Record<string, unknown> }> = [];
  const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      try {
        received.push({ path: req.url ?? "", body: JSON.parse(data) });
      } catch {
        received.push({ path: req.url ?? "", body: { unparsable: data } });
      }
      res.writeHead(status, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    url: (path = "/callback") => `http://127.0.0.1:${port}${path}`,
    received,
    async waitForCount(n: number, timeoutMs = 5000) {
      const started = Date.now();
      while (received.length < n) {
        if (Date.now() - started > timeoutMs) throw new Error(`expected ${n} callbacks, got ${JSON.stringify(received)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
