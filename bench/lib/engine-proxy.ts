import { createServer, request } from "node:http";
import { rmSync } from "node:fs";

/**
 * A pass-through proxy on a unix socket in front of the Docker engine's,
 * counting the Engine API requests that reach it: by method and path
 * template (ids and names as `{id}`, the API version dropped) and per second.
 * The server under test gets `DOCKER_HOST=unix://<path>`; the benchmark's own
 * reads go to the engine directly, so they are not counted.
 */
export async function startEngineProxy(path: string, upstream = "/var/run/docker.sock") {
  const log: Array<{ at: number; key: string }> = [];
  rmSync(path, { force: true });
  const server = createServer((req, res) => {
    log.push({ at: performance.now(), key: `${req.method} ${templateOf(req.url ?? "/")}` });
    const up = request({ socketPath: upstream, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(err.message);
    });
    // A client that goes (the server's event stream when it stops) ends its request to the engine too, or the bench never exits.
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    host: `unix://${path}`,
    /** Requests since `from` (performance.now()), by template, with the busiest second and the mean rate to `to`. */
    since(from: number, to = performance.now()) {
      const within = log.filter((r) => r.at >= from && r.at <= to);
      const byPath: Record<string, number> = {};
      const perSecond = new Map<number, number>();
      for (const r of within) {
        byPath[r.key] = (byPath[r.key] ?? 0) + 1;
        const s = Math.floor((r.at - from) / 1000);
        perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
      }
      const seconds = Math.max((to - from) / 1000, 0.001);
      return {
        total: within.length,
        byPath: Object.fromEntries(Object.entries(byPath).sort(([, a], [, b]) => b - a)),
        meanRps: within.length / seconds,
        maxRps: Math.max(0, ...perSecond.values()),
        /** Requests in each whole second from `from`, in order. */
        perSecond: Array.from({ length: Math.ceil(seconds) }, (_, i) => perSecond.get(i) ?? 0),
      };
    },
    /** When each request matching `key` (a template, `POST /services/{id}/update`) came, from `from`. */
    times(key: string, from: number): number[] {
      return log.filter((r) => r.key === key && r.at >= from).map((r) => r.at);
    },
    /** Resolves once no request came for `quietMs` (the server's start and the index's events are over). */
    async quiet(quietMs: number, timeoutMs = 120_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const last = log.at(-1)?.at ?? 0;
        if (performance.now() - last >= quietMs) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `/v1.41/services/abc123/update?version=5` → `/services/{id}/update`; a query's keys are kept, for `/events` and `/tasks`. */
export function templateOf(url: string): string {
  const [path, query] = url.split("?") as [string, string | undefined];
  const parts = path.replace(/^\/v\d+\.\d+/, "").split("/");
  const templ = parts.map((p, i) => (i >= 2 && p && !["update", "json", "logs", "tag", "push", "history"].includes(p) ? "{id}" : p)).join("/");
  const keys = query ? [...new URLSearchParams(query).keys()].filter((k) => k === "filters") : [];
  return keys.length ? `${templ}?filters` : templ;
}
