import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import type { Sealer } from "../../auth/sealing.js";
import type { ApiClaims, TokenService } from "../../auth/tokens.js";
import { TokenError } from "../../auth/tokens.js";
import type { SessionStore } from "../../store/session-store.js";

/**
 * The dashboard's sign-in: an API token pasted once becomes a session whose
 * random id rides in an HttpOnly, SameSite=Strict cookie. The token is
 * verified again on every request (from the token cache), so its expiry, a
 * key that is no longer accepted, or its scopes apply to the session as they
 * do to the bearer header. Signing out forgets the session: a copy of the
 * cookie is then worth nothing. Sessions are kept in the database, so a
 * restart (the server updating itself, say) signs no one out; the row holds
 * the id's SHA-256 and the token sealed under the server's key, so a copy of
 * the database (a backup) opens no session.
 */
export const SESSION_COOKIE = "deployer_session";
/** A session ends after this long even when its token lasts longer. */
export const SESSION_MAX_MS = 12 * 3600_000;
/** Sessions one token may hold (browsers, machines); its next sign-in ends its oldest. */
export const SESSIONS_PER_TOKEN = 10;
/** Sessions of all tokens together; a sign-in beyond them is refused, not made at another token's expense. */
export const MAX_SESSIONS = 10_000;

/** A token that verifies but may not read: the dashboard refuses it with 403, not 401. */
export class LacksReadScopeError extends TokenError {
  constructor() {
    super("invalid_claims", "this token lacks the deployments:read scope the dashboard needs");
  }
}

/** Every session there may be is open: sign-ins wait until some end. */
export class SessionsFullError extends Error {
  constructor() {
    super(`${MAX_SESSIONS} dashboard sessions are open; sign in again once some have ended (signed out or expired)`);
  }
}

export interface Session {
  claims: ApiClaims;
  /** Sent back by every form of the session's pages; compared in constant time. */
  csrf: string;
  canWrite: boolean;
}

interface Sealed {
  token: string;
  csrf: string;
}

export type Sessions = ReturnType<typeof createSessions>;

const idHash = (id: string) => createHash("sha256").update(id).digest("hex");

export function createSessions(opts: {
  tokens: TokenService;
  store: SessionStore;
  sealer: Sealer;
  now?: () => number;
  /** The server's public URL (DEPLOYER_PUBLIC_URL): an https one makes every cookie Secure, whatever a proxy forwards. */
  publicUrl?: string;
}) {
  const now = opts.now ?? Date.now;
  const alwaysSecure = opts.publicUrl?.startsWith("https://") ?? false;
  const secure = (c: Context) => alwaysSecure || isHttps(c);

  /** The session's token and CSRF token, when it exists, has not expired and this server's key opens it. */
  function read(id: string): Sealed | undefined {
    const hash = idHash(id);
    const row = opts.store.get(hash);
    if (!row) return undefined;
    const opened = row.expiresAt > now() ? opts.sealer.unseal(row.sealed, hash) : undefined;
    if (opened === undefined) {
      // Expired, or sealed under a key this server no longer has: it cannot be used again.
      opts.store.delete(hash);
      return undefined;
    }
    return JSON.parse(opened) as Sealed;
  }

  /** The session of this id with its token, the token verified again; undefined when there is none or it no longer holds. */
  async function lookup(id: string | undefined): Promise<{ session: Session; token: string } | undefined> {
    if (!id) return undefined;
    const stored = read(id);
    if (!stored) return undefined;
    try {
      const claims = await opts.tokens.verifyApiToken(stored.token);
      if (!claims.scopes.includes("deployments:read")) throw new TokenError("invalid_claims", "no read scope");
      return { session: { claims, csrf: stored.csrf, canWrite: claims.scopes.includes("deployments:write") }, token: stored.token };
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      opts.store.delete(idHash(id));
      return undefined;
    }
  }

  /** The session of this id; undefined when there is none or it no longer holds. */
  const resolve = async (id: string | undefined): Promise<Session | undefined> => (await lookup(id))?.session;

  return {
    /**
     * Verifies the token (TokenError when it cannot be accepted, LacksReadScopeError when it may not read) and opens
     * a session for it (SessionsFullError when no more may be open), in place of `replacing`, the session id this
     * browser had.
     */
    async open(token: string, replacing?: string): Promise<{ id: string; claims: ApiClaims; maxAgeS: number }> {
      const claims = await opts.tokens.verifyApiToken(token);
      // Refused before a row is written: a token that cannot sign in takes no place among the sessions.
      if (!claims.scopes.includes("deployments:read")) throw new LacksReadScopeError();
      const at = now();
      const expiresAt = Math.min(at + SESSION_MAX_MS, claims.exp === undefined ? Infinity : claims.exp * 1000);
      const id = randomBytes(32).toString("base64url");
      const hash = idHash(id);
      const sealed = opts.sealer.seal(JSON.stringify({ token, csrf: randomBytes(32).toString("base64url") } satisfies Sealed), hash);
      // The token by its id: its text has several spellings that verify alike (the signature's last base64url character).
      const owner = createHash("sha256")
        .update(claims.jti ? `jti:${claims.jti}` : `sub:${claims.sub}:${claims.exp ?? ""}`)
        .digest("hex");
      const limits = { perOwner: SESSIONS_PER_TOKEN, total: MAX_SESSIONS };
      if (!opts.store.add({ idHash: hash, sealed, createdAt: at, expiresAt, owner }, limits, replacing && idHash(replacing))) {
        throw new SessionsFullError();
      }
      return { id, claims, maxAgeS: Math.max(1, Math.floor((expiresAt - at) / 1000)) };
    },
    resolve,
    /** The session of a request's cookie. */
    fromRequest(c: Context): Promise<Session | undefined> {
      return resolve(getCookie(c, SESSION_COOKIE));
    },
    /** The token behind a request's cookie, for the API's event routes (EventSource cannot send a header). */
    async tokenOf(c: Context): Promise<string | undefined> {
      return (await lookup(getCookie(c, SESSION_COOKIE)))?.token;
    },
    /** The session id a request's cookie carries, if any. */
    idOf(c: Context): string | undefined {
      return getCookie(c, SESSION_COOKIE);
    },
    close(c: Context): void {
      const id = getCookie(c, SESSION_COOKIE);
      if (id) opts.store.delete(idHash(id));
    },
    setCookie(c: Context, id: string, maxAgeS: number): void {
      setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: "Strict", path: "/", maxAge: maxAgeS, secure: secure(c) });
    },
    clearCookie(c: Context): void {
      deleteCookie(c, SESSION_COOKIE, { httpOnly: true, sameSite: "Strict", path: "/", secure: secure(c) });
    },
  };
}

function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
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
