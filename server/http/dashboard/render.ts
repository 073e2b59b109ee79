import type { Context } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { Logger } from "pino";
import { AppError } from "../../domain/app-error.js";
import { decodeUtf8, readBodyBytes } from "../read-json.js";
import type { OperationsDeps } from "../../operations/operations-deps.js";
import type { Sessions } from "./sessions.js";

export type DashboardEnv = { Variables: { requestId: string } };

export interface DashboardDeps extends OperationsDeps {
  sessions: Sessions;
  log: Logger;
}

/**
 * Pages load only the server's own script and stylesheet; nothing inline
 * runs, nothing frames them, and forms post only back here.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

export function securityHeaders(c: Context): void {
  c.header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "same-origin");
}

/** A whole page: the doctype, the headers above, and never a cached copy (pages hold a CSRF token). */
export async function html(c: Context, page: JSX.Element, status: 200 | 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 503 | number = 200) {
  securityHeaders(c);
  c.header("Cache-Control", "no-store");
  const body = `<!doctype html>${await page.toString()}`;
  return c.html(body, status as 200);
}

const FORM_LIMIT = 16 * 1024;

/** A urlencoded form of at most 16 KiB (a pasted token fits; nothing the dashboard sends is larger). */
export async function readForm(c: Context): Promise<Record<string, string>> {
  const type = c.req.header("content-type") ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded")) {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", "the dashboard's forms are sent as application/x-www-form-urlencoded");
  }
  // Counted as it arrives (or refused by its Content-Length): a larger body is never buffered.
  const bytes = c.req.raw.body ? await readBodyBytes(c, FORM_LIMIT) : Buffer.alloc(0);
  return Object.fromEntries(new URLSearchParams(decodeUtf8(bytes)));
}
