/**
 * The claim rules of an OIDC source: which tokens of its issuer it accepts.
 * A rule names a claim and one or more patterns; a token passes when every
 * named claim is a string matching one of its patterns. In a pattern `*`
 * stands for any characters, `/` included (`refs/heads/*` covers
 * `refs/heads/release/1.2`); everything else is compared exactly, case and
 * all, as the issuer writes it.
 */

export type ClaimRules = Record<string, string[]>;

const CLAIM_NAME = /^[a-z][a-z0-9_]{0,63}$/;
/** Checked by the verifier itself, never by a rule. */
const RESERVED = new Set(["iss", "aud", "exp", "nbf", "iat", "jti"]);
const MAX_CLAIMS = 10;
const MAX_PATTERNS = 20;
const MAX_PATTERN_LENGTH = 255;

/** The claims that say which repository a GitHub Actions token comes from: a GitHub source must constrain one. */
export const GITHUB_IDENTITY_CLAIMS = ["repository", "repository_owner", "repository_id", "repository_owner_id", "sub", "job_workflow_ref"];
/** The claims of a gitlab.com CI job's ID token that say whose project it is: any project there can get a token for any audience. */
export const GITLAB_IDENTITY_CLAIMS = ["project_path", "project_id", "namespace_path", "namespace_id", "sub"];

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
