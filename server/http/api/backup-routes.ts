import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { ApiClaims, TokenService } from "../../auth/tokens.js";
import { AppError } from "../../domain/app-error.js";
import { asUnauthorized, bearerToken } from "../bearer.js";
import * as s from "./schemas.js";

/**
 * `GET /api/backup` (scope `database:backup`): a consistent snapshot of the
 * whole database, taken online while the server runs, as a SQLite file.
 * A scope of its own: the file holds every record, the sources' sealed
 * secrets included, so neither a read nor a write token may take it. One
 * snapshot at a time; each is a temporary file, deleted once sent.
 */
export interface BackupDeps {
  tokens: TokenService;
  snapshot(): Promise<{ path: string; size: number; remove(): void }>;
}

function requireBackupScope(tokens: TokenService): MiddlewareHandler {
  return async (c, next) => {
    const claims = await tokens.verifyApiToken(bearerToken(c)).catch(asUnauthorized);
    if (!claims.scopes.includes("database:backup")) throw new AppError("FORBIDDEN", "this token lacks the database:backup scope");
    await next();
  };
}

export function registerBackupRoutes(app: OpenAPIHono<{ Variables: { requestId: string; apiClaims: ApiClaims } }>, deps: BackupDeps) {
  let running = false;
  app.use("/backup", requireBackupScope(deps.tokens));
  app.openapi(
    createRoute({
      method: "get",
      path: "/backup",
      security: [{ bearer: [] }],
      description: "A consistent snapshot of the database (SQLite backup API), taken online. Needs the database:backup scope.",
      responses: {
        200: { description: "the SQLite file", content: { "application/vnd.sqlite3": { schema: z.string().openapi({ format: "binary" }) } } },
        ...Object.fromEntries(
          ([401, 403, 409, 503] as const).map((code) => [
            code,
            { description: `error ${code}`, content: { "application/json": { schema: s.ErrorSchema } } },
          ]),
        ),
      },
    }),
    async (c) => {
      // HEAD says what GET would send, without the copy of the database (which nothing would read).
      if (c.req.method === "HEAD")
        return new Response(null, { status: 200, headers: { "content-type": "application/vnd.sqlite3", "cache-control": "no-store" } });
      if (running) throw new AppError("CONFLICT", "a backup is being made already; try again once it is done");
      running = true;
      let snapshot;
      try {
        snapshot = await deps.snapshot();
      } finally {
        running = false;
      }
      const file = createReadStream(snapshot.path);
      file.once("close", snapshot.remove);
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      return new Response(Readable.toWeb(file) as ReadableStream, {
        status: 200,
        headers: {
          "content-type": "application/vnd.sqlite3",
          "content-length": String(snapshot.size),
          "content-disposition": `attachment; filename="deployer-${stamp}.db"`,
          "cache-control": "no-store",
        },
      });
    },
  );
}
