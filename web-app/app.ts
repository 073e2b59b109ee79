import { Hono } from "hono";
import { generateBuzz } from "./buzz.js";
import type { Render } from "./templates.js";

export interface AppDeps {
  version: string;
  /** The container's host name: under swarm it tells which replica answered. */
  hostname: string;
  render: Render;
  buzz?: () => string;
}

/** The sample app's routes; main.ts supplies the version, host name and templates. */
export function createApp(deps: AppDeps) {
  const buzz = deps.buzz ?? (() => generateBuzz());
  // Per replica and in memory, like the original's counter: it shows requests spreading over replicas, nothing more.
  let visits = 0;
  const app = new Hono();

  app.get("/", (c) => {
    visits += 1;
    return c.html(deps.render("index.html", { hostname: deps.hostname, version: deps.version, visits, buzz: buzz() }));
  });

  app.get("/hello", (c) => {
    const name = (c.req.query("name") ?? "").trim().slice(0, 100) || "world";
    return c.html(deps.render("hello.html", { hostname: deps.hostname, version: deps.version, name }));
  });

  app.get("/version", (c) => c.json({ version: deps.version, hostname: deps.hostname }));

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.notFound((c) => c.json({ error: { code: "NOT_FOUND", message: `no route for ${c.req.method} ${c.req.path.slice(0, 200)}` } }, 404));

  return app;
}
