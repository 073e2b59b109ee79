/**
 * The claim rules of an OIDC source: which tokens of its issuer it accepts.
 * A rule names a claim and one or more patterns; a token passes when every
 * named claim is a string matching one of its patterns. In a pattern `*`
 * stands for any characters, `/` included (`refs/heads/*` covers
 * `refs/heads/release/1.2`); everything else is compared exactly, case and
 * all, as the issuer writes it.
 */

import { GITHUB_ACTIONS_ISSUER } from "./source.js";

export type ClaimRules = Record<string, string[]>;

const CLAIM_NAME = /^[a-z][a-z0-9_]{0,63}$/;
/** Checked by the verifier itself, never by a rule. */
const RESERVED = new Set(["iss", "aud", "exp", "nbf", "iat", "jti"]);
const MAX_CLAIMS = 10;
const MAX_PATTERNS = 20;
const MAX_PATTERN_LENGTH = 255;

/**
 * The claims that say whose a token is, per issuer where anyone may get a token for any audience, each with what
 * a pattern on it must write out before its first `*` to name the owner (the account or organisation, the
 * top-level group); `null`: no `*` at all (ids, owner names). `repository=*\/web` or `sub=repo:*` would take the
 * tokens of every account there.
 */
export interface IdentityClaims {
  /** Who issues them, as an error message names it. */
  issuer: string;
  claims: Record<string, RegExp | null>;
  /** Said when a source names none of them. */
  hint?: string;
}

export const GITHUB_IDENTITY: IdentityClaims = {
  issuer: "GitHub Actions",
  claims: {
    repository: /^[^/]+\//,
    repository_owner: null,
    repository_id: null,
    repository_owner_id: null,
    // repo:OWNER/NAME:… by default; an owner's customized subject starts with the claims it includes.
    sub: /^(repo:[^/:]+\/|repository_owner:[^:]+:|repository_owner_id:[^:]+:|repository_id:[^:]+:)/,
  },
  hint: "job_workflow_ref names a reusable workflow, which any repository may call",
};

export const GITLAB_IDENTITY: IdentityClaims = {
  issuer: "gitlab.com",
  claims: {
    project_path: /^[^/]+\//,
    namespace_path: /^[^/]+\//,
    project_id: null,
    namespace_id: null,
    // project_path:GROUP/PROJECT:ref_type:…:ref:…
    sub: /^project_path:[^/:]+\//,
  },
};

/**
 * The claims a source of this issuer must pin, where any repository or project can get a token for any
 * audience (GitHub Actions, gitlab.com): undefined for an issuer whose tokens only its own users get.
 */
export function identityClaimsOf(issuer: string): IdentityClaims | undefined {
  if (issuer.startsWith(GITHUB_ACTIONS_ISSUER)) return GITHUB_IDENTITY;
  if (/^https:\/\/gitlab\.com\/?$/.test(issuer)) return GITLAB_IDENTITY;
  return undefined;
}

/** Whether a pattern on an identity claim names the owner: no `*`, or the owner written out before the first one. */
function namesOwner(prefix: RegExp | null, pattern: string): boolean {
  const star = pattern.indexOf("*");
  return star < 0 || (prefix !== null && prefix.test(pattern.slice(0, star)));
}

/**
 * Why these rules would take the tokens of every account of the issuer, or undefined when one identity claim's
 * patterns all name its owner (the token must match every rule, so one such rule is enough).
 */
export function identityProblem(rules: ClaimRules, identity: IdentityClaims): string | undefined {
  const named = Object.entries(identity.claims).filter(([name]) => name in rules);
  if (named.some(([name, prefix]) => rules[name]!.every((p) => namesOwner(prefix, p)))) return undefined;
  for (const [name, prefix] of named) {
    const i = rules[name]!.findIndex((p) => !namesOwner(prefix, p));
    const how = prefix === null ? "without *" : "with the owner written out before any *";
    return `claims.${name}[${i}]: ${JSON.stringify(rules[name]![i])} takes the tokens of every ${identity.issuer} account; write the ${name} ${how}`;
  }
  const names = Object.keys(identity.claims).join(", ");
  return `claims: a ${identity.issuer} source needs a rule that names the owner on one of ${names}${identity.hint ? ` (${identity.hint})` : ""}`;
}

/** Why these rules cannot be stored, naming the field (`claims.ref[0]: …`), or undefined when they can. */
export function claimRulesProblem(rules: ClaimRules): string | undefined {
  const names = Object.keys(rules);
  if (names.length > MAX_CLAIMS) return `claims: at most ${MAX_CLAIMS} claims`;
  for (const name of names) {
    if (!CLAIM_NAME.test(name)) return `claims.${name}: a claim name is lower-case letters, digits and _`;
    if (RESERVED.has(name)) return `claims.${name}: checked by the verifier itself (issuer, audience, times); not a rule`;
    const patterns = rules[name]!;
    if (patterns.length === 0 || patterns.length > MAX_PATTERNS) return `claims.${name}: between 1 and ${MAX_PATTERNS} patterns`;
    for (const [i, pattern] of patterns.entries()) {
      if (pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) return `claims.${name}[${i}]: between 1 and ${MAX_PATTERN_LENGTH} characters`;
      if (/^\**$/.test(pattern)) return `claims.${name}[${i}]: a pattern of only * accepts every token; leave the claim out instead`;
      if (/[\s\u0000-\u001f]/.test(pattern)) return `claims.${name}[${i}]: no spaces or control characters`;
    }
  }
  return undefined;
}

/**
 * Whether `value` matches `pattern` (`*`: any characters). The classic
 * two-pointer walk, going back only to the last `*`: at most
 * pattern × value steps whatever the input, where a regular expression of
 * several `.*` can backtrack far longer on a value a token's sender chose
 * (a branch name).
 */
export function globMatches(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      resume = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/** The first rule the token's claims break, said plainly, or undefined when they keep them all. */
export function claimMismatch(rules: ClaimRules, claims: Record<string, unknown>): string | undefined {
  for (const [name, patterns] of Object.entries(rules)) {
    const value = claims[name];
    if (typeof value !== "string") return `the token has no ${name} claim (string)`;
    if (!patterns.some((p) => globMatches(p, value))) return `${name} ${JSON.stringify(value.slice(0, 200))} matches none of the source's patterns`;
  }
  return undefined;
}
