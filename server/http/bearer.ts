import type { Context, MiddlewareHandler } from "hono";
import { AppError } from "../domain/app-error.js";
import { TokenError, type ApiClaims, type Scope, type TokenService } from "../auth/tokens.js";

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

/** API routes: a valid `deployer:api` token holding `scope`, else 401 or 403. */
export function requireScope(tokens: TokenService, scope: Scope): MiddlewareHandler<{ Variables: { requestId: string; apiClaims: ApiClaims } }> {
  return async (c, next) => {
    const claims = await tokens.verifyApiToken(bearerToken(c)).catch(asUnauthorized);
    if (!claims.scopes.includes(scope)) throw new AppError("FORBIDDEN", `this token lacks the ${scope} scope`);
    c.set("apiClaims", claims);
    await next();
  };
}
