import { OidcError, type OidcVerifier } from "../auth/oidc-verifier.js";
import { claimMismatch, identityClaimsOf, identityProblem } from "../domain/claim-rules.js";
import { issuerAliases } from "../domain/source.js";
import type { SourceRecord, SourceStore } from "../store/source-store.js";
import { Rejected, type Charge } from "./source-refusals.js";

/**
 * The proof of an OIDC source: a token its issuer signed, for its audience,
 * whose claims keep the source's rules. A GAR source is named by the path
 * and wants its service account's `email`, verified; the generic CI endpoint
 * has no source in its path, so the token's issuer finds the `oidc` sources
 * that could accept it and each one's claim rules decide.
 */

export type Claims = Record<string, unknown>;

function rejectedFrom(err: unknown): Rejected {
  if (!(err instanceof OidcError)) throw err;
  // The issuer's keys out of reach is our dependency failing, not the sender's proof: 503, so the sender retries.
  if (err.failure === "unavailable") return new Rejected("issuer_unavailable", "UNAVAILABLE", err.message);
  return new Rejected("bad_proof", "UNAUTHORIZED", err.message);
}

function rulesOf(source: SourceRecord) {
  if (!source.oidc) throw new Rejected("revoked", "UNAUTHORIZED", "this source has no issuer to check tokens against");
  return source.oidc;
}

/** A Pub/Sub push's token: Google's signature, the subscription's audience, the source's service account. */
export async function proveGarToken(verifier: OidcVerifier, source: SourceRecord, token: string): Promise<Claims> {
  const rules = rulesOf(source);
  const claims = await verifier
    .verify(token, { issuers: issuerAliases(rules.issuer), jwksUrl: rules.jwksUrl, audience: rules.audience })
    .catch((err: unknown) => {
      throw rejectedFrom(err);
    });
  if (rules.email === undefined || claims.email !== rules.email) {
    throw new Rejected("claims_mismatch", "UNAUTHORIZED", "the token's email is not the service account this source names");
  }
  if (claims.email_verified !== true) throw new Rejected("claims_mismatch", "UNAUTHORIZED", "the token's email is not verified (email_verified)");
  return claims;
}

/**
 * Why a source stored before its issuer's identity rule was checked would take the tokens of every account
 * there (`sub=repo:*`); such a source accepts no token until it is replaced.
 */
export function unpinnedRules(source: SourceRecord): string | undefined {
  const identity = source.oidc?.claims && identityClaimsOf(source.oidc.issuer);
  const problem = identity && identityProblem(source.oidc!.claims!, identity);
  return (
    problem &&
    `the source's rules would accept any ${identity.issuer} account's token (${problem}); add a source whose rules name the owner, and revoke this one`
  );
}

const audiences = (claims: Claims) => (Array.isArray(claims.aud) ? claims.aud : [claims.aud]);

/**
 * The `oidc` sources of the token's issuer that accept it, oldest first;
 * refused (401, or 503 when an issuer's keys could not be fetched, as that
 * source might have accepted it) when none does, each source charged with
 * its own reason. The token is verified once per JWKS URL, whatever the
 * number of sources sharing it.
 */
export async function proveCiToken(
  sources: SourceStore,
  verifier: OidcVerifier,
  token: string,
  issuer: string,
): Promise<Array<{ source: SourceRecord; claims: Claims }>> {
  const all = sources.byIssuer("oidc", issuer);
  const active = all.filter((s) => s.revokedAt === null && s.oidc);
  if (active.length === 0) {
    if (all.length === 0) throw new Rejected("unknown_source", "UNAUTHORIZED", "no oidc source trusts this token's issuer");
    const message = "the oidc source for this token's issuer is revoked";
    throw new Rejected(
      "revoked",
      "UNAUTHORIZED",
      message,
      all.map((source) => ({ source, reason: "revoked", message })),
    );
  }
  const verified = new Map<string, Promise<Claims | Rejected>>();
  const accepted: Array<{ source: SourceRecord; claims: Claims }> = [];
  const charges: Charge[] = [];
  for (const source of active) {
    const rules = source.oidc!;
    const key = rules.jwksUrl;
    if (!verified.has(key)) {
      // Every audience of the sources sharing these keys: each source checks its own below.
      const wanted = active.filter((s) => s.oidc!.jwksUrl === key).map((s) => s.oidc!.audience);
      verified.set(
        key,
        verifier.verify(token, { issuers: [issuer], jwksUrl: key, audience: wanted }).catch((err: unknown) => rejectedFrom(err)),
      );
    }
    const outcome = await verified.get(key)!;
    if (outcome instanceof Rejected) {
      charges.push({ source, reason: outcome.reason, message: outcome.message });
      continue;
    }
    if (!audiences(outcome).includes(rules.audience)) {
      charges.push({ source, reason: "bad_proof", message: "the token's audience is not this source's" });
      continue;
    }
    const unpinned = unpinnedRules(source);
    if (unpinned) {
      charges.push({ source, reason: "claims_mismatch", message: unpinned });
      continue;
    }
    const mismatch = rules.claims ? claimMismatch(rules.claims, outcome) : undefined;
    if (mismatch) charges.push({ source, reason: "claims_mismatch", message: mismatch });
    else accepted.push({ source, claims: outcome });
  }
  if (accepted.length) return accepted;
  const unavailable = charges.find((c) => c.reason === "issuer_unavailable");
  if (unavailable) throw new Rejected("issuer_unavailable", "UNAVAILABLE", unavailable.message, charges);
  const first = charges[0]!;
  throw new Rejected(first.reason, "UNAUTHORIZED", `no oidc source of this issuer accepts the token: ${first.message}`, charges);
}
