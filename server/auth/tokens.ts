import { createSecretKey, randomUUID, type KeyObject } from "node:crypto";
import { errors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { z } from "zod";
import { parseImageRef, splitName } from "../domain/image-ref.js";
import { CLOCK_TOLERANCE_S, expiredAt, VerifiedTokens } from "./verified-tokens.js";

/**
 * Webhook and API tokens: HS256 JWTs keyed with the UTF-8 bytes of the
 * configured secret. This is the only module that imports jose, so the
 * algorithm allow-list and the audience rules live in one place.
 */

export type Scope = "deployments:read" | "deployments:write" | "sources:admin" | "database:backup";
export const SCOPES: readonly Scope[] = ["deployments:read", "deployments:write", "sources:admin", "database:backup"];

export interface WebhookClaims {
  sub: string;
  repos: string[];
  services?: string[];
  jti?: string;
  exp?: number;
}

export interface ApiClaims {
  sub: string;
  scopes: Scope[];
  jti?: string;
  exp?: number;
}

export type TokenErrorReason = "missing" | "malformed" | "bad_signature" | "expired" | "wrong_audience" | "wrong_algorithm" | "invalid_claims";

/** A token that cannot be accepted. The message is safe to return to the client and never holds the token. */
export class TokenError extends Error {
  override readonly name = "TokenError";
  constructor(
    readonly reason: TokenErrorReason,
    message: string,
  ) {
    super(message);
  }
}

/** A sign request the service refuses (bad pattern, scope or duration); raised before anything is signed. */
export class TokenInputError extends Error {
  override readonly name = "TokenInputError";
}

const WEBHOOK_AUDIENCE = "deployer:webhook";
const API_AUDIENCE = "deployer:api";

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `90d`, `12h`, `30m`, `45s`, `2w` → seconds. */
export function parseExpiresIn(text: string): number {
  const m = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * durationUnits[m[2]!]! : 0;
  if (seconds <= 0) throw new TokenInputError(`expires: expected a duration such as 30m, 12h or 90d, got "${text}"`);
  return seconds;
}

type CompiledPattern = { registry: string; repository: RegExp };

/**
 * Reads a `repos` entry like an image name (`acme/web` is a Docker Hub
 * repository, `127.0.0.1:5000/acme/*` names its registry). `*` stands for any
 * characters inside one path segment, so it can never widen a grant across `/`.
 */
export function compileRepoPattern(pattern: string, dockerHubRegistry: string): CompiledPattern {
  const fail = (why: string) => new TokenInputError(`repository pattern "${pattern}": ${why}`);
  if (pattern.includes("@") || pattern.lastIndexOf(":") > pattern.lastIndexOf("/")) {
    throw fail("name a repository without tag or digest");
  }
  const { registry, repository } = splitName(pattern, dockerHubRegistry);
  if (registry.includes("*")) throw fail("* is only allowed in the repository path, not in the registry");
  try {
    // Substituting a letter for * lets the reference grammar judge everything else.
    parseImageRef(`${registry}/${repository.replaceAll("*", "x")}`);
  } catch {
    throw fail("not a valid repository name (lowercase letters, digits and . _ - separators, optionally registry/ first)");
  }
  const source = repository
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]*");
  return { registry: registry.toLowerCase(), repository: new RegExp(`^${source}$`) };
}

const serviceName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "expected a service name");

const webhookClaimsSchema = z.object({
  sub: z.string().min(1, "expected a non-empty string"),
  repos: z.array(z.string()).min(1, "expected at least one repository pattern"),
  services: z.array(serviceName).optional(),
  jti: z.string().optional(),
  exp: z.number().optional(),
});

const apiClaimsSchema = z.object({
  sub: z.string().min(1, "expected a non-empty string"),
  scope: z.string(),
  jti: z.string().optional(),
  exp: z.number().optional(),
});

/** Unknown scope words are refused rather than dropped, so a typo in a hand-made token is reported, not silently powerless. */
export function parseScopes(scope: string): Scope[] {
  const words = scope.split(/\s+/).filter(Boolean);
  const unknown = words.filter((w) => !(SCOPES as readonly string[]).includes(w));
  if (unknown.length) throw new TokenInputError(`scope: unknown scope "${unknown[0]}" (use ${SCOPES.join(", ")})`);
  if (words.length === 0) throw new TokenInputError(`scope: expected at least one of ${SCOPES.join(", ")}`);
  return [...new Set(words)] as Scope[];
}

function claimsProblem(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = issue.path
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .replace(/^\./, "");
  return `${path || "claims"}: ${issue.code === "invalid_type" ? `expected ${issue.expected}` : issue.message}`;
}

function invalidClaims(problem: string): TokenError {
  return new TokenError("invalid_claims", `the token's claims are invalid: ${problem}`);
}

function toTokenError(err: unknown, audience: string): TokenError {
  if (err instanceof errors.JWTExpired) return new TokenError("expired", "the token has expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return new TokenError("wrong_audience", `the token is not meant for this endpoint (expected audience ${audience})`);
    if (err.claim === "nbf" && err.reason === "check_failed") return invalidClaims("nbf: the token is not valid yet");
    return invalidClaims(`${err.claim}: ${err.reason === "missing" ? "missing" : "invalid value"}`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenError("wrong_algorithm", "the token must be signed with HS256");
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenError("bad_signature", "the token's signature does not match the server's key");
  }
  if (err instanceof errors.JOSEError) return new TokenError("malformed", "the token is not a well-formed JWT");
  throw err;
}

export type TokenService = ReturnType<typeof createTokenService>;

export function createTokenService(opts: { secret: string; previousSecret?: string; dockerHubRegistry: string; now?: () => number }) {
  // Imported once: jose would otherwise import raw key bytes on every verification.
  const key: KeyObject = createSecretKey(Buffer.from(opts.secret, "utf8"));
  const previousKey = opts.previousSecret ? createSecretKey(Buffer.from(opts.previousSecret, "utf8")) : undefined;
  const now = opts.now ?? Date.now;
  const verified = new VerifiedTokens();
  const compiled = new Map<string, CompiledPattern>();

  function compile(pattern: string): CompiledPattern {
    let c = compiled.get(pattern);
    if (!c) {
      c = compileRepoPattern(pattern, opts.dockerHubRegistry);
      compiled.set(pattern, c);
    }
    return c;
  }

  async function sign(claims: JWTPayload, audience: string, expiresIn: string | undefined): Promise<string> {
    const iat = Math.floor(now() / 1000);
    const exp = expiresIn === undefined ? undefined : iat + parseExpiresIn(expiresIn);
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setAudience(audience).setIssuedAt(iat).setJti(randomUUID());
    if (exp !== undefined) jwt.setExpirationTime(exp);
    return jwt.sign(key);
  }

  async function verify(token: string, audience: string): Promise<JWTPayload> {
    if (typeof token !== "string" || token.trim() === "") throw new TokenError("missing", "no token was given");
    const cached = verified.get(token, audience, now());
    if (cached) return cached;
    const options = { algorithms: ["HS256"], audience, currentDate: new Date(now()), clockTolerance: CLOCK_TOLERANCE_S };
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, key, options)).payload;
    } catch (err) {
      // During a rotation, tokens signed with the previous key stay valid until it is unset.
      if (!(previousKey && err instanceof errors.JWSSignatureVerificationFailed)) throw toTokenError(err, audience);
      try {
        payload = (await jwtVerify(token, previousKey, options)).payload;
      } catch (again) {
        throw toTokenError(again, audience);
      }
    }
    if (expiredAt(payload.exp, now())) throw new TokenError("expired", "the token has expired");
    verified.add(token, audience, payload);
    return payload;
  }

  return {
    async signWebhookToken(input: { sub: string; repos: string[]; services?: string[]; expiresIn?: string }): Promise<string> {
      const parsed = webhookClaimsSchema.safeParse({ sub: input.sub, repos: input.repos, services: input.services });
      if (!parsed.success) throw new TokenInputError(claimsProblem(parsed.error));
      input.repos.forEach(compile);
      const claims: JWTPayload = { sub: input.sub, repos: input.repos, ...(input.services ? { services: input.services } : {}) };
      return sign(claims, WEBHOOK_AUDIENCE, input.expiresIn);
    },

    async signApiToken(input: { sub: string; scopes: Scope[]; expiresIn?: string }): Promise<string> {
      if (!input.sub) throw new TokenInputError("sub: expected a non-empty string");
      const scopes = parseScopes(input.scopes.join(" "));
      return sign({ sub: input.sub, scope: scopes.join(" ") }, API_AUDIENCE, input.expiresIn);
    },

    async verifyWebhookToken(token: string): Promise<WebhookClaims> {
      const parsed = webhookClaimsSchema.safeParse(await verify(token, WEBHOOK_AUDIENCE));
      if (!parsed.success) throw invalidClaims(claimsProblem(parsed.error));
      parsed.data.repos.forEach((pattern, i) => {
        try {
          compile(pattern);
        } catch (err) {
          throw invalidClaims(`repos[${i}]: ${(err as Error).message}`);
        }
      });
      return parsed.data;
    },

    async verifyApiToken(token: string): Promise<ApiClaims> {
      const parsed = apiClaimsSchema.safeParse(await verify(token, API_AUDIENCE));
      if (!parsed.success) throw invalidClaims(claimsProblem(parsed.error));
      const { scope, ...rest } = parsed.data;
      try {
        return { ...rest, scopes: parseScopes(scope) };
      } catch (err) {
        throw invalidClaims((err as Error).message);
      }
    },

    /** True when one of the token's patterns covers this image's registry and repository. */
    repoAllowed(claims: WebhookClaims, image: { registry: string; repository: string }): boolean {
      const registry = image.registry.toLowerCase();
      return claims.repos.some((pattern) => {
        try {
          const c = compile(pattern);
          return c.registry === registry && c.repository.test(image.repository);
        } catch {
          return false; // claims built by hand, not by verifyWebhookToken: a bad pattern grants nothing
        }
      });
    },

    /** A token without a `services` claim may deploy any service its repositories reach. */
    serviceAllowed(claims: WebhookClaims, name: string): boolean {
      return claims.services === undefined || claims.services.includes(name);
    },
  };
}
