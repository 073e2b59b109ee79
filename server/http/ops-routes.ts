import { Hono } from "hono";
import type { Metrics } from "../metrics.js";

export interface OpsDeps {
  metrics: Metrics;
  /** Each check resolves when its dependency answers and throws with the reason when it does not. */
  readiness: Record<string, () => Promise<void> | void>;
}

export function createOpsRoutes(deps: OpsDeps) {
  const app = new Hono();

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const checks: Record<string, string> = {};
    let ready = true;
    for (const [name, check] of Object.entries(deps.readiness)) {
      try {
        await check();
        checks[name] = "ok";
      } catch (err) {
        ready = false;
        checks[name] = `unavailable: ${(err as Error).message}`;
      }
    }
    return c.json({ status: ready ? "ready" : "not ready", checks }, ready ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    c.header("content-type", deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  });

  return app;
}
