import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import type { Logger } from "pino";
import type { TokenService } from "./auth/tokens.js";
import type { IngestDeps } from "./operations/ingest-push.js";
import { createApiRoutes, type ApiDeps } from "./http/api/api-routes.js";
import { createErrorHandler, respondError } from "./http/errors.js";
import { createHooksRoutes, type HooksDeps } from "./http/hooks-routes.js";
import { createOpsRoutes } from "./http/ops-routes.js";
import { createDashboardRoutes } from "./http/dashboard/dashboard-routes.js";
import type { Sessions } from "./http/dashboard/sessions.js";
import type { Metrics } from "./metrics.js";
import type { DeploymentStore } from "./store/deployment-store.js";

export interface AppDeps {
  tokens: TokenService;
  store: DeploymentStore;
  api: ApiDeps;
  ingest: IngestDeps;
  metrics: Metrics;
  log: Logger;
  dockerHubRegistry: string;
  readiness: Record<string, () => Promise<void> | void>;
  sourceHooks: HooksDeps["sourceHooks"];
  /** The dashboard's sign-in sessions (also read by the API's event routes). */
  sessions: Sessions;
}

/** Docker Hub's token and Quay's secret ride in the path: a 404 does not echo them. */
function secretPath(path: string): string | undefined {
  if (path.startsWith("/hooks/dockerhub/")) return "/hooks/dockerhub/…";
  if (path.startsWith("/hooks/quay/")) return "/hooks/quay/…";
  return undefined;
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/;

/** The whole HTTP surface, built from its dependencies; tests call this with a real store and fake ports. */
export function createApp(deps: AppDeps) {
  const app = new Hono<{ Variables: { requestId: string } }>();

  app.use(async (c, next) => {
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && requestIdPattern.test(incoming) ? incoming : randomUUID();
    c.set("requestId", requestId);
    c.header("x-request-id", requestId);
    const started = performance.now();
    await next();
    // Hono answers HEAD from the GET route with the body dropped, not cancelled: an event stream would hold
    // its place for ever, a file its descriptor. Cancelling it ends either.
    if (c.req.method === "HEAD") await c.res.body?.cancel();
    // The line is built only when it is written: every webhook passes here.
    if (!deps.log.isLevelEnabled("debug")) return;
    // routePath is the pattern (`/hooks/dockerhub/:token`), so a token in the URL never reaches the log.
    deps.log.debug(
      { requestId, method: c.req.method, route: c.req.routePath, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 },
      "request",
    );
  });

  app.route("/", createOpsRoutes(deps));
  app.route("/hooks", createHooksRoutes(deps));
  app.route("/api", createApiRoutes(deps.api));
  app.route("/", createDashboardRoutes({ ...deps.api, sessions: deps.sessions, log: deps.log }));

  app.notFound((c) => respondError(c, "NOT_FOUND", `no route for ${c.req.method} ${secretPath(c.req.path) ?? c.req.path.slice(0, 200)}`));
  app.onError(createErrorHandler(deps.log));
  return app;
}
