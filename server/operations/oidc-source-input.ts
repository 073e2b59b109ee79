import { AppError } from "../domain/app-error.js";
import { claimRulesProblem, identityClaimsOf, identityProblem, type ClaimRules } from "../domain/claim-rules.js";
import { defaultJwksUrl, GITHUB_ACTIONS_ISSUER, GOOGLE_ISSUER, type SourceKind } from "../domain/source.js";
import { UNPRINTABLE } from "../domain/unprintable.js";
import type { OidcRules } from "../store/source-store.js";

/**
 * What an OIDC source (gar, oidc) names instead of a secret, checked before
 * it is stored: the issuer and its keys' URL, the audience, and the
 * service-account email (gar) or the claim rules (oidc).
 */

export interface OidcInput {
  issuer?: string;
  jwksUrl?: string;
  audience?: string;
  email?: string;
  claims?: Record<string, string | string[]>;
}

const invalid = (message: string) => new AppError("VALIDATION_FAILED", message);

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
// A service account as Google writes it: name@project.iam.gserviceaccount.com, or any address for user-managed ones.
const EMAIL = /^[^\s@]{1,64}@[A-Za-z0-9.-]{1,255}$/;

/** https only (plain http for a loopback issuer, as in tests); no credentials, no fragment. */
function checkUrl(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`${field}: expected an https URL`);
  }
  const plainLocal = url.protocol === "http:" && LOOPBACK.has(url.hostname);
  if (value.length > 512 || (url.protocol !== "https:" && !plainLocal) || url.username || url.password || url.hash) {
    throw invalid(`${field}: expected an https URL without credentials or fragment (http only on the loopback)`);
  }
  return value;
}

function normalizeClaims(claims: Record<string, string | string[]>): ClaimRules {
  return Object.fromEntries(
    Object.entries(claims).map(([name, patterns]) => [name, [...new Set(typeof patterns === "string" ? [patterns] : patterns)]]),
  );
}

/** No issuer, audience, email or claim holds a character a terminal acts on: each is shown to people. */
function refuseUnprintable(input: OidcInput): void {
  const texts: Array<[string, string | undefined]> = [
    ["issuer", input.issuer],
    ["jwksUrl", input.jwksUrl],
    ["audience", input.audience],
    ["email", input.email],
    ...Object.entries(input.claims ?? {}).flatMap(([name, patterns]): Array<[string, string]> => [
      [`claims`, name],
      ...(typeof patterns === "string" ? [patterns] : patterns).map((p): [string, string] => [`claims.${name}`, p]),
    ]),
  ];
  for (const [field, text] of texts) {
    if (typeof text === "string" && UNPRINTABLE.test(text)) throw invalid(`${field}: control characters and direction overrides are not allowed`);
  }
}

/** The rules to store for an OIDC kind; nothing for the other kinds, which may name none of these fields. */
export function checkOidcInput(kind: SourceKind, input: OidcInput): { oidc?: OidcRules } {
  refuseUnprintable(input);
  const named = (["issuer", "jwksUrl", "audience", "email", "claims"] as const).filter((f) => input[f] !== undefined);
  if (kind !== "gar" && kind !== "oidc") {
    if (named.length) throw invalid(`${named[0]}: only gar and oidc sources name an issuer, audience, email or claims`);
    return {};
  }
  const issuer = checkUrl("issuer", input.issuer ?? (kind === "gar" ? GOOGLE_ISSUER : GITHUB_ACTIONS_ISSUER));
  const jwksUrl = checkUrl("jwksUrl", input.jwksUrl ?? defaultJwksUrl(kind, issuer));
  const audience = input.audience;
  if (!audience) throw invalid(`audience: a ${kind} source names the audience its tokens are issued for`);
  if (audience.length > 512 || /[\s\u0000-\u001f]/.test(audience)) throw invalid("audience: at most 512 characters, no spaces");
  if (kind === "gar") {
    if (input.claims !== undefined) throw invalid("claims: a gar source is checked by its service account's email, not by claim rules");
    if (!input.email || !EMAIL.test(input.email))
      throw invalid("email: expected the push subscription's service account (name@project.iam.gserviceaccount.com)");
    return { oidc: { issuer, jwksUrl, audience, email: input.email } };
  }
  if (input.email !== undefined) throw invalid("email: an oidc source checks claims; write it as a claim rule (claims.email)");
  const claims = normalizeClaims(input.claims ?? {});
  if (Object.keys(claims).length === 0)
    throw invalid("claims: an oidc source needs at least one claim rule, or every token of its issuer would deploy");
  const problem = claimRulesProblem(claims);
  if (problem) throw invalid(problem);
  const identity = identityClaimsOf(issuer);
  const unpinned = identity && identityProblem(claims, identity);
  if (unpinned) throw invalid(unpinned);
  return { oidc: { issuer, jwksUrl, audience, claims } };
}
