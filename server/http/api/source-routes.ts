import { createRoute, type OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import type { ApiClaims, TokenService } from "../../auth/tokens.js";
import { AppError } from "../../domain/app-error.js";
import { sourceHookPath } from "../../domain/source.js";
import { DEFAULT_GRACE, parseGrace, type SourceOperations } from "../../operations/manage-sources.js";
import type { SourceRecord } from "../../store/source-store.js";
import { asUnauthorized, bearerToken } from "../bearer.js";
import type { RejectionLog } from "../rejection-log.js";
import { ErrorSchema } from "./schemas.js";
import * as s from "./source-schemas.js";

export interface SourceAdminDeps {
  operations: SourceOperations;
  rejections: RejectionLog;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toSourceJson(source: SourceRecord, secret?: string) {
  return {
    id: source.id,
    kind: source.kind,
    repos: source.repos,
    services: source.services ?? null,
    header: source.headerName ?? null,
    path: sourceHookPath(source.kind, source.id, secret),
    issuer: source.oidc?.issuer ?? null,
    jwksUrl: source.oidc?.jwksUrl ?? null,
    audience: source.oidc?.audience ?? null,
    email: source.oidc?.email ?? null,
    claims: source.oidc?.claims ?? null,
    status: source.revokedAt === null ? ("active" as const) : ("revoked" as const),
    createdAt: new Date(source.createdAt).toISOString(),
    rotatedAt: iso(source.rotatedAt),
    previousSecretValidUntil: iso(source.previousUntil),
    revokedAt: iso(source.revokedAt),
  };
}

const errors = (...codes: Array<400 | 401 | 403 | 404 | 409 | 413 | 415>) =>
  Object.fromEntries(codes.map((code) => [code, { description: `error ${code}`, content: { "application/json": { schema: ErrorSchema } } }]));
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const security = [{ bearer: [] }];

/** Every verb on sources needs sources:admin: reading one shows who may deploy what. */
export function requireSourcesAdmin(tokens: TokenService): MiddlewareHandler {
  return async (_c, next) => {
    const claims = await tokens.verifyApiToken(bearerToken(_c)).catch(asUnauthorized);
    if (!claims.scopes.includes("sources:admin")) throw new AppError("FORBIDDEN", "this token lacks the sources:admin scope");
    await next();
  };
}

function issued(c: Context, result: { source: SourceRecord; secret?: string }) {
  const source = toSourceJson(result.source, result.secret);
  return { source, secret: result.secret ?? null, url: `${new URL(c.req.url).origin}${source.path}` };
}

type Env = { Variables: { requestId: string; apiClaims: ApiClaims } };

/** Registered on the API's own app, so the OpenAPI document lists them with the rest. */
export function registerSourceRoutes(app: OpenAPIHono<Env>, deps: SourceAdminDeps) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/sources",
      security,
      responses: { 200: json(s.SourceListSchema, "every source, revoked ones too"), ...errors(401, 403) },
    }),
    (c) => c.json({ items: deps.operations.list().map((src) => toSourceJson(src)) }, 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/sources",
      security,
      request: { body: { content: { "application/json": { schema: s.NewSourceBody } }, required: true } },
      responses: {
        201: json(s.SourceIssuedSchema, "the source, with its secret shown this once (none for gar and oidc sources)"),
        ...errors(400, 401, 403, 413, 415),
      },
    }),
    (c) => c.json(issued(c, deps.operations.add(c.req.valid("json"))), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/sources/{id}",
      security,
      request: { params: s.SourceIdParam },
      responses: { 200: json(s.SourceDetailSchema, "a source and the summary of its refused deliveries"), ...errors(400, 401, 403, 404) },
    }),
    (c) => {
      const source = deps.operations.get(c.req.valid("param").id);
      const summary = deps.rejections.summaryOf(source.id);
      const rejections = { counts: summary.counts, recent: summary.recent.map((r) => ({ ...r, at: new Date(r.at).toISOString() })) };
      return c.json({ ...toSourceJson(source), rejections }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/sources/{id}/rotate",
      security,
      request: { params: s.SourceIdParam, body: { content: { "application/json": { schema: s.RotateBody } }, required: false } },
      responses: {
        200: json(
          s.SourceIssuedSchema,
          "the new secret; the old one stays valid for the grace (409 for a revoked source, and for gar and oidc sources, which have no secret)",
        ),
        ...errors(400, 401, 403, 404, 409, 413, 415),
      },
    }),
    (c) => {
      const grace = parseGrace(c.req.valid("json")?.grace ?? DEFAULT_GRACE);
      return c.json(issued(c, deps.operations.rotate(c.req.valid("param").id, grace)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/sources/{id}",
      security,
      request: { params: s.SourceIdParam },
      responses: { 200: json(s.SourceRevokedSchema, "the source, revoked: its secrets are erased"), ...errors(400, 401, 403, 404) },
    }),
    (c) => c.json({ source: toSourceJson(deps.operations.remove(c.req.valid("param").id)) }, 200),
  );
}
