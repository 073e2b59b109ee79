import { Hono } from "hono";
import http from "node:http";
import { describe, expect, it, onTestFinished } from "vitest";
import { startServer } from "./graceful-server.js";

/** A raw http.request (not fetch) so the test sees the connection header and a refused connect as they are. */
function get(port: number, path: string, agent?: http.Agent): Promise<{ status: number; body: string; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.on("error", reject);
  });
}

async function startSlowServer() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const started = new Promise<void>((r) => (entered = r));
  const app = new Hono();
  app.get("/fast", (c) => c.text("fast"));
  app.get("/slow", async (c) => {
    entered();
    await gate;
    return c.text("slow done");
  });
  const server = await startServer({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  onTestFinished(() => server.shutdown(100));
  return { server, release, started };
}

describe("startServer's shutdown", () => {
  it("finishes a request in flight, refuses new connections, then resolves", async () => {
    const { server, release, started } = await startSlowServer();
    const slow = get(server.port, "/slow");
    await started;

    let stopped = false;
    const stopping = server.shutdown(5000).then(() => (stopped = true));
    await expect(get(server.port, "/fast")).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(stopped).toBe(false);

    release();
    const res = await slow;
    expect(res).toMatchObject({ status: 200, body: "slow done", connection: "close" });
    await stopping;
    expect(stopped).toBe(true);
  });

  it("closes idle keep-alive connections at once instead of waiting for their timeout", async () => {
    const { server } = await startSlowServer();
    const agent = new http.Agent({ keepAlive: true });
    onTestFinished(() => agent.destroy());
    expect((await get(server.port, "/fast", agent)).status).toBe(200);
    const started = Date.now();
    await server.shutdown(5000);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("cuts connections still open when the timeout ends", async () => {
    const { server, started } = await startSlowServer();
    const slow = get(server.port, "/slow");
    await started;
    const t0 = Date.now();
    await server.shutdown(300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await expect(slow).rejects.toThrow();
  });
});
