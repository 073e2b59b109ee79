import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ApiClaims, TokenService } from "../../auth/tokens.js";
import { AppError } from "../../domain/app-error.js";
import { deployService } from "../../operations/deploy-service.js";
import { listServices, type ManagedService } from "../../operations/list-services.js";
import type { OperationsDeps } from "../../operations/operations-deps.js";
import { resumeService } from "../../operations/resume-service.js";
import { rollbackService } from "../../operations/rollback-service.js";
import { asUnauthorized, bearerToken } from "../bearer.js";
import { coalescedJson, toDeploymentJson, toEventJson } from "../deployment-json.js";
import { assertJsonDepth, bodyLimitBytes } from "../read-json.js";
import * as s from "./schemas.js";
import { decodeCursor, encodeCursor } from "./cursor.js";

export { encodeCursor };
import { registerApprovalRoutes } from "./approval-routes.js";
import { registerSourceRoutes, requireSourcesAdmin, type SourceAdminDeps } from "./source-routes.js";
import { registerEventRoutes, type EventStreamDeps } from "./event-routes.js";
import { registerBackupRoutes, type BackupDeps } from "./backup-routes.js";
import type { Sessions } from "../dashboard/sessions.js";

export interface ApiDeps extends OperationsDeps {
  tokens: TokenService;
  sourceAdmin: SourceAdminDeps;
  events: Omit<EventStreamDeps, "store" | "stillAuthorized">;
  backup: Omit<BackupDeps, "tokens">;
  /** The dashboard's sessions: their cookie stands in for the header on the event routes (EventSource sends no header). */
  sessions?: Pick<Sessions, "tokenOf">;
}

type Env = { Variables: { requestId: string; apiClaims: ApiClaims } };

const errors = (...codes: Array<400 | 401 | 403 | 404 | 413 | 415 | 422 | 503>) =>
  Object.fromEntries(codes.map((code) => [code, { description: `error ${code}`, content: { "application/json": { schema: s.ErrorSchema } } }]));
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const security = [{ bearer: [] }];

const isEventRoute = (path: string) => path === "/api/events" || /^\/api\/deployments\/[^/]+\/events$/.test(path);

/**
 * The claims a request is allowed by: its bearer token, or for the event routes the dashboard session of its
 * cookie (EventSource cannot send a header). Reads need deployments:read, writes deployments:write; a webhook
 * token is refused by its audience. Throws 401 or 403.
 */
async function authorize(c: Context, tokens: TokenService, sessions?: ApiDeps["sessions"]): Promise<ApiClaims> {
  const fromCookie =
    sessions && c.req.method === "GET" && !c.req.header("authorization") && isEventRoute(c.req.path) ? await sessions.tokenOf(c) : undefined;
  const claims = await tokens.verifyApiToken(fromCookie ?? bearerToken(c)).catch(asUnauthorized);
  const scope = c.req.method === "GET" || c.req.method === "HEAD" ? "deployments:read" : "deployments:write";
  if (!claims.scopes.includes(scope)) throw new AppError("FORBIDDEN", `this token lacks the ${scope} scope`);
  return claims;
}

function requireApiToken(tokens: TokenService, sessions?: ApiDeps["sessions"]): MiddlewareHandler<Env> {
  return async (c, next) => {
    c.set("apiClaims", await authorize(c, tokens, sessions));
    await next();
  };
}

function toServiceJson(m: ManagedService) {
  return {
    ...m,
    hold: m.hold && {
      deploymentId: m.hold.deploymentId,
      reason: m.hold.reason,
      heldBy: m.hold.heldBy,
      since: new Date(m.hold.createdAt).toISOString(),
    },
    lastDeployment: m.lastDeployment && toDeploymentJson(m.lastDeployment),
    policy: m.policy && {
      follow: m.policy.follow ?? null,
      approve: m.policy.approve,
      windows: m.policy.windows.map((w) => w.text),
      minAgeSeconds: m.policy.minAgeMs / 1000,
      mode: m.policy.mode,
    },
  };
}

export function createApiRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const field = issue?.path.length ? issue.path.join(".") : result.target;
        throw new AppError("VALIDATION_FAILED", `${field}: ${issue?.message ?? "invalid"}`);
      }
    },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer", bearerFormat: "JWT" });

  app.get("/openapi.json", (c) => c.json(app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "swarm-deployer API", version: "1" } })));
  app.use("/deployments/*", requireApiToken(deps.tokens, deps.sessions));
  app.use("/deployments", requireApiToken(deps.tokens, deps.sessions));
  app.use("/services/*", requireApiToken(deps.tokens, deps.sessions));
  app.use("/services", requireApiToken(deps.tokens, deps.sessions));
  app.use("/events", requireApiToken(deps.tokens, deps.sessions));
  // `/sources/*` covers `/sources` itself too: hono's trailing wildcard may match nothing.
  app.use("/sources/*", requireSourcesAdmin(deps.tokens));
  for (const path of ["/services/*", "/sources/*"]) {
    app.use(
      path,
      bodyLimit({
        maxSize: bodyLimitBytes,
        onError: () => {
          throw new AppError("PAYLOAD_TOO_LARGE", `the request body is larger than ${bodyLimitBytes} bytes`);
        },
      }),
    );
    // Bounded nesting before any parser sees the body; the routes' validators then read it from hono's cache.
    app.use(path, async (c, next) => {
      if (c.req.method === "POST") assertJsonDepth(await c.req.text());
      await next();
    });
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/deployments",
      security,
      request: { query: s.ListDeploymentsQuery },
      responses: { 200: json(s.DeploymentPageSchema, "deployments, newest first"), ...errors(400, 401, 403) },
    }),
    (c) => {
      const q = c.req.valid("query");
      const page = deps.history.list({ ...q, beforeId: q.cursor ? decodeCursor(q.cursor) : undefined });
      const last = page.items.at(-1);
      return c.json({ items: page.items.map(toDeploymentJson), nextCursor: page.hasMore && last ? encodeCursor(last.id) : null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/deployments/{id}",
      security,
      request: { params: s.DeploymentIdParam },
      responses: { 200: json(s.DeploymentDetailSchema, "a deployment and its timeline"), ...errors(401, 403, 404) },
    }),
    (c) => {
      const { id } = c.req.valid("param");
      const found = deps.store.findDeployment(id);
      if (!found) throw new AppError("NOT_FOUND", `no deployment with id ${JSON.stringify(id)}`);
      return c.json(
        { ...toDeploymentJson(found), events: deps.store.listEvents(id).map(toEventJson), coalesced: coalescedJson(deps.store, id) },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/services",
      security,
      responses: { 200: json(s.ServiceListSchema, "managed swarm services"), ...errors(401, 403, 503) },
    }),
    async (c) => c.json({ items: (await listServices(deps)).map(toServiceJson) }, 200),
  );

  const write = <B extends z.ZodType>(path: string, body: B, description: string) =>
    createRoute({
      method: "post",
      path,
      security,
      request: { params: s.ServiceNameParam, body: { content: { "application/json": { schema: body } }, required: false } },
      responses: { 202: json(s.DeploymentAccepted, description), ...errors(400, 401, 403, 404, 413, 415, 422, 503) },
    });

  app.openapi(write("/services/{name}/rollback", s.RollbackBody, "the rollback deployment, queued; the service is now held"), async (c) => {
    const { name } = c.req.valid("param");
    const body = c.req.valid("json");
    const dep = await rollbackService(deps, { service: name, to: body.to, requestedBy: c.get("apiClaims").sub });
    return c.json({ deployment: toDeploymentJson(dep) }, 202);
  });

  app.openapi(write("/services/{name}/deploy", s.DeployBody, "the manual deployment, queued; any hold is lifted"), async (c) => {
    const { name } = c.req.valid("param");
    const body = c.req.valid("json");
    if (body.tag === undefined && body.digest === undefined) throw new AppError("VALIDATION_FAILED", "tag: give exactly one of tag or digest");
    const dep = await deployService(deps, { service: name, tag: body.tag, digest: body.digest, requestedBy: c.get("apiClaims").sub });
    return c.json({ deployment: toDeploymentJson(dep) }, 202);
  });

  app.openapi(
    createRoute({
      method: "post",
      path: "/services/{name}/resume",
      security,
      request: { params: s.ServiceNameParam },
      responses: { 200: json(s.ResumeResult, "the hold is lifted"), ...errors(401, 403, 404, 503) },
    }),
    async (c) => c.json(await resumeService(deps, { service: c.req.valid("param").name }), 200),
  );

  registerApprovalRoutes(app, deps);
  // A stream is checked again as it goes: a sign-out, an expired session or token ends it.
  const stillAuthorized = (c: Context) =>
    authorize(c, deps.tokens, deps.sessions).then(
      () => true,
      (err: unknown) => {
        if (err instanceof AppError) return false;
        throw err;
      },
    );
  registerEventRoutes(app, { ...deps.events, store: deps.store, stillAuthorized });
  registerSourceRoutes(app, deps.sourceAdmin);
  registerBackupRoutes(app, { tokens: deps.tokens, ...deps.backup });

  return app;
}
