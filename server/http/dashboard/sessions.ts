import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import type { ApiClaims, TokenService } from "../../auth/tokens.js";
import { TokenError } from "../../auth/tokens.js";

/**
 * The dashboard's sign-in: an API token pasted once becomes a session whose
 * random id rides in an HttpOnly, SameSite=Strict cookie. The token stays in
 * the server's memory and is verified again on every request (from the token
 * cache), so its expiry, a key that is no longer accepted, or its scopes
 * apply to the session as they do to the bearer header. Signing out forgets
 * the session: a copy of the cookie is then worth nothing. Sessions live in
 * memory only: a restart signs everyone out.
 */
export const SESSION_COOKIE = "deployer_session";
/** A session ends after this long even when its token lasts longer. */
export const SESSION_MAX_MS = 12 * 3600_000;
const MAX_SESSIONS = 10_000;

export interface Session {
  claims: ApiClaims;
  /** Sent back by every form of the session's pages; compared in constant time. */
  csrf: string;
  canWrite: boolean;
}

interface Stored {
  token: string;
  csrf: string;
  expiresAt: number;
}

export type Sessions = ReturnType<typeof createSessions>;

export function createSessions(opts: { tokens: TokenService; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const sessions = new Map<string, Stored>();

  /** The session of this id, its token verified again; undefined when there is none or it no longer holds. */
  async function resolve(id: string | undefined): Promise<Session | undefined> {
    if (!id) return undefined;
    const stored = sessions.get(id);
    if (!stored) return undefined;
    if (stored.expiresAt <= now()) {
      sessions.delete(id);
      return undefined;
    }
    try {
      const claims = await opts.tokens.verifyApiToken(stored.token);
      if (!claims.scopes.includes("deployments:read")) throw new TokenError("invalid_claims", "no read scope");
      return { claims, csrf: stored.csrf, canWrite: claims.scopes.includes("deployments:write") };
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      sessions.delete(id);
      return undefined;
    }
  }

  return {
    /** Verifies the token (TokenError when it cannot be accepted) and opens a session for it. */
    async open(token: string): Promise<{ id: string; claims: ApiClaims; maxAgeS: number }> {
      const claims = await opts.tokens.verifyApiToken(token);
      const expiresAt = Math.min(now() + SESSION_MAX_MS, claims.exp === undefined ? Infinity : claims.exp * 1000);
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
      const id = randomBytes(32).toString("base64url");
      sessions.set(id, { token, csrf: randomBytes(32).toString("base64url"), expiresAt });
      return { id, claims, maxAgeS: Math.max(1, Math.floor((expiresAt - now()) / 1000)) };
    },
    resolve,
    /** The session of a request's cookie. */
    fromRequest(c: Context): Promise<Session | undefined> {
      return resolve(getCookie(c, SESSION_COOKIE));
    },
    /** The token behind a request's cookie, for the API's event routes (EventSource cannot send a header). */
    async tokenOf(c: Context): Promise<string | undefined> {
      const id = getCookie(c, SESSION_COOKIE);
      return id && (await resolve(id)) ? sessions.get(id)?.token : undefined;
    },
    close(c: Context): void {
      const id = getCookie(c, SESSION_COOKIE);
      if (id) sessions.delete(id);
    },
    get size() {
      return sessions.size;
    },
  };
}

function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
}

export function setSessionCookie(c: Context, id: string, maxAgeS: number): void {
  setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: "Strict", path: "/", maxAge: maxAgeS, secure: isHttps(c) });
}

export function clearSessionCookie(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { httpOnly: true, sameSite: "Strict", path: "/", secure: isHttps(c) });
}

/**
 * A state-changing request must come from a page of this server: its Origin
 * (or, without one, its Referer) names the host the request was sent to. A
 * browser sets both itself; a page elsewhere cannot forge them.
 */
export function sameOrigin(c: Context): boolean {
  const from = c.req.header("origin") ?? c.req.header("referer");
  if (!from || from === "null") return false;
  let host: string;
  try {
    host = new URL(from).host;
  } catch {
    return false;
  }
  const hosts = [c.req.header("host"), c.req.header("x-forwarded-host")?.split(",")[0]?.trim(), new URL(c.req.url).host];
  return hosts.some((h) => h !== undefined && h !== "" && h.toLowerCase() === host.toLowerCase());
}

export function csrfMatches(session: Session, sent: unknown): boolean {
  if (typeof sent !== "string") return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}
