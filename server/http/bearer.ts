import type { Context } from "hono";
import { AppError } from "../domain/app-error.js";
import { TokenError } from "../auth/tokens.js";

/** The token of an `Authorization: Bearer …` header; 401 when there is none. */
export function bearerToken(c: Context): string {
  const header = c.req.header("authorization");
  if (!header) throw new AppError("UNAUTHORIZED", "missing Authorization header; send Authorization: Bearer <token>");
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new AppError("UNAUTHORIZED", "malformed Authorization header; expected Bearer <token>");
  return m[1]!;
}

/** Maps a token failure to 401; the message names the reason, never the token. */
export function asUnauthorized(err: unknown): never {
  if (err instanceof TokenError) throw new AppError("UNAUTHORIZED", err.message);
  throw err;
}
