import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { CLOCK_TOLERANCE_S, expiredAt } from "./verified-tokens.js";

/**
 * OIDC ID tokens from an issuer a push source names (Google for Pub/Sub
 * pushes, GitHub Actions for CI jobs): the signature against the issuer's
 * published keys (JWKS), the issuer, the audience and the times. What the
 * claims must say beyond that is the source's rule, checked by the caller.
 *
 * Keys are fetched per JWKS URL, shared by every source of that issuer:
 * kept for `cacheMaxAgeMs`, fetched again at most once per `cooldownMs` when
 * a token names a key the set lacks (a rotation at the issuer), each fetch
 * bounded by `timeoutMs` and in size; tokens arriving during a fetch wait for
 * that one. A flood of tokens with made-up key ids costs one fetch per
 * cooldown, not one each, and so does a flood against an issuer whose keys
 * could not be fetched: each token within a cooldown of the failed fetch gets
 * its error. Durations are on the server's clock; jose matches
 * a token to a key of the fetched set.
 */

/** Asymmetric only: a token's signer is known by its public key; `none` and HS* never pass. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];
/** A token longer than this is no ID token (headers are bounded anyway). */
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_KEY_SETS = 100;
/** Google's and GitHub's key sets are a few KiB. */
const MAX_JWKS_BYTES = 256 * 1024;

export type OidcFailure =
  | "malformed"
  | "wrong_algorithm"
  | "bad_signature"
  | "wrong_issuer"
  | "wrong_audience"
  | "expired"
  | "invalid_claims"
  /** The issuer's keys could not be fetched: our dependency failed, not the sender's proof. */
  | "unavailable";

/** A token that cannot be accepted. The message is safe to return and never holds the token. */
export class OidcError extends Error {
  override readonly name = "OidcError";
  constructor(
    readonly failure: OidcFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface OidcExpectation {
  /** The `iss` values accepted (Google writes its issuer two ways). */
  issuers: string[];
  jwksUrl: string;
  /** Accepted when the token's `aud` holds one of these. */
  audience: string | string[];
}

export interface OidcVerifierOptions {
  timeoutMs: number;
  cooldownMs: number;
  cacheMaxAgeMs: number;
  /** The server's clock, for `exp`, `nbf` and `iat`, and for how long keys are kept. */
  now: () => number;
  fetch?: typeof fetch;
}

export type OidcVerifier = ReturnType<typeof createOidcVerifier>;

/** The key set failed to load (network, status, JSON): kept apart from "no key matches", which is the token's fault. */
class KeysUnavailable extends Error {}

function toOidcError(err: unknown): OidcError {
  if (err instanceof OidcError) return err;
  if (err instanceof KeysUnavailable) return new OidcError("unavailable", "the issuer's keys (JWKS) could not be fetched; try again later");
  if (err instanceof errors.JWTExpired) return new OidcError("expired", "the token has expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "iss") return new OidcError("wrong_issuer", "the token's issuer is not this source's");
    if (err.claim === "aud") return new OidcError("wrong_audience", "the token's audience is not this source's");
    if (err.claim === "nbf") return new OidcError("invalid_claims", "the token is not valid yet (nbf)");
    return new OidcError("invalid_claims", `the token's ${err.claim} claim is ${err.reason === "missing" ? "missing" : "invalid"}`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return new OidcError("wrong_algorithm", `the token must be signed with one of ${ALGORITHMS.join(", ")}`);
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return new OidcError("bad_signature", "the token's signature does not match the issuer's key");
  if (err instanceof errors.JWKSNoMatchingKey) return new OidcError("bad_signature", "no key the issuer publishes matches the token's key id");
  if (err instanceof errors.JWKSMultipleMatchingKeys)
    return new OidcError("bad_signature", "the token names no key id and the issuer publishes several keys");
  if (err instanceof errors.JOSEError) return new OidcError("malformed", "the token is not a well-formed JWT");
  throw err;
}

async function fetchKeySet(url: string, opts: OidcVerifierOptions): Promise<JWTVerifyGetKey> {
  const doFetch = opts.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, { headers: { accept: "application/json" }, redirect: "error", signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (err) {
    throw new KeysUnavailable(`fetching ${url}`, { cause: err });
  }
  const text = res.ok ? await res.text().catch(() => undefined) : undefined;
  if (!res.ok) await res.body?.cancel().catch(() => undefined);
  if (text === undefined || text.length > MAX_JWKS_BYTES) throw new KeysUnavailable(`${url} answered ${res.status}, or too much`);
  try {
    return createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
  } catch (err) {
    throw new KeysUnavailable(`${url} sent no key set`, { cause: err });
  }
}

export function createOidcVerifier(opts: OidcVerifierOptions) {
  const keySets = new Map<string, JWTVerifyGetKey>();

  /** Whether less than `ms` has passed since `at`; a clock that stepped back before `at` counts as past it. */
  const within = (at: number, ms: number) => {
    const elapsed = opts.now() - at;
    return elapsed >= 0 && elapsed < ms;
  };

  function keySet(url: string): JWTVerifyGetKey {
    let keys = keySets.get(url);
    if (!keys) {
      let loaded: { keys: JWTVerifyGetKey; at: number } | undefined;
      let loading: Promise<JWTVerifyGetKey> | undefined;
      /** The last fetch that failed: tokens within a cooldown of it get its error, not a fetch each. */
      let failed: { err: unknown; at: number } | undefined;
      const load = (): Promise<JWTVerifyGetKey> => {
        if (failed && within(failed.at, opts.cooldownMs)) return Promise.reject(failed.err);
        return (loading ??= fetchKeySet(url, opts)
          .then(
            (fresh) => {
              loaded = { keys: fresh, at: opts.now() };
              failed = undefined;
              return fresh;
            },
            (err: unknown) => {
              failed = { err, at: opts.now() };
              throw err;
            },
          )
          .finally(() => (loading = undefined)));
      };
      keys = async (header, token) => {
        // Past their age the keys are fetched again; should that fail, the ones held still verify what they can.
        const held = loaded;
        const current =
          held && within(held.at, opts.cacheMaxAgeMs) ? held.keys : await load().catch((err: unknown) => (held ? held.keys : Promise.reject(err)));
        try {
          return await current(header, token);
        } catch (err) {
          const unknownKey = err instanceof errors.JWKSNoMatchingKey;
          if (!unknownKey || !loaded || within(loaded.at, opts.cooldownMs)) throw err;
          // A key the set lacks, and the cooldown is over: perhaps the issuer rotated its keys.
          return (await load())(header, token);
        }
      };
      // Bounded: the URLs are the sources', but revoked sources' sets need not live forever.
      if (keySets.size >= MAX_KEY_SETS) keySets.delete(keySets.keys().next().value!);
      keySets.set(url, keys);
    }
    return keys;
  }

  return {
    /**
     * The token's unverified `iss`, to find which sources could accept it;
     * undefined when the token is no JWT or names no issuer. Never trusted
     * beyond that: `verify` checks the issuer again, signed.
     */
    peekIssuer(token: string): string | undefined {
      if (token.length > MAX_TOKEN_LENGTH) return undefined;
      try {
        // A token signed with the server's own secret (HS256) is one of its webhook tokens, whatever `iss` it carries.
        if (decodeProtectedHeader(token).alg === "HS256") return undefined;
        const iss = decodeJwt(token).iss;
        return typeof iss === "string" && iss.length <= 512 ? iss : undefined;
      } catch {
        return undefined;
      }
    },

    async verify(token: string, expect: OidcExpectation): Promise<JWTPayload> {
      if (token.length > MAX_TOKEN_LENGTH) throw new OidcError("malformed", "the token is too long for an ID token");
      let alg: unknown;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        throw new OidcError("malformed", "the token is not a well-formed JWT");
      }
      // Refused before any key is fetched: an `alg: none` or HS256 token must not cost a JWKS request.
      if (typeof alg !== "string" || !ALGORITHMS.includes(alg)) {
        throw new OidcError("wrong_algorithm", `the token must be signed with one of ${ALGORITHMS.join(", ")}`);
      }
      try {
        const { payload } = await jwtVerify(token, keySet(expect.jwksUrl), {
          algorithms: ALGORITHMS,
          issuer: expect.issuers,
          audience: expect.audience,
          currentDate: new Date(opts.now()),
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ["exp", "iat"],
        });
        if (expiredAt(payload.exp, opts.now())) throw new OidcError("expired", "the token has expired");
        return payload;
      } catch (err) {
        throw toOidcError(err);
      }
    },
  };
}
