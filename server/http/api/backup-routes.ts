import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { ApiClaims, TokenService } from "../../auth/tokens.js";
import type { Clock } from "../../domain/clock.js";
import { AppError } from "../../domain/app-error.js";
import { asUnauthorized, bearerToken } from "../bearer.js";
import * as s from "./schemas.js";

/**
 * `GET /api/backup` (scope `database:backup`): a consistent snapshot of the
 * whole database, taken online while the server runs, as a SQLite file.
 * A scope of its own: the file holds every record, the sources' sealed
 * secrets included, so neither a read nor a write token may take it. One
 * snapshot at a time, until it is sent: each is a temporary copy of the
 * whole database, deleted once sent, or once its reader went away or took
 * nothing for a minute (a stalled download would otherwise keep it, and the
 * next one another).
 */
export interface BackupDeps {
  tokens: TokenService;
  snapshot(): Promise<{ path: string; size: number; remove(): void }>;
  clock: Clock;
  /** A download whose reader takes nothing for this long is ended, and its copy deleted. Default 60 s. */
  idleMs?: number;
}

const IDLE_MS = 60_000;

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
      if (running) throw new AppError("CONFLICT", "a backup is being made or sent already; try again once it is done");
      running = true;
      let snapshot;
      try {
        snapshot = await deps.snapshot();
      } catch (err) {
        running = false;
        throw err;
      }
      const file = createReadStream(snapshot.path);
      const closed = new AbortController();
      file.once("close", () => {
        closed.abort();
        snapshot.remove();
        running = false;
      });
      // Read as the reader takes it (the web stream pulls): a reader that takes nothing for idleMs is let go.
      let readAt = deps.clock.now();
      file.on("data", () => (readAt = deps.clock.now()));
      const idleMs = deps.idleMs ?? IDLE_MS;
      void (async () => {
        while (!closed.signal.aborted) {
          await deps.clock.sleep(Math.max(1, readAt + idleMs - deps.clock.now()), closed.signal);
          if (!closed.signal.aborted && deps.clock.now() - readAt >= idleMs) file.destroy(new Error(`the reader took nothing for ${idleMs} ms`));
        }
      })();
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
