/**
 * Push sources: senders that cannot carry a webhook JWT and prove themselves
 * with a secret of their own, or with an OIDC token from an issuer the source
 * names (CONTRACT §9). Which kinds there are and how each one proves itself
 * is a rule, kept here beside the other rules.
 */
export const sourceKinds = ["github", "gitea", "harbor", "quay", "ecr", "acr", "gar", "oidc"] as const;
export type SourceKind = (typeof sourceKinds)[number];

/**
 * How a kind proves itself. An HMAC sender signs the body with the secret,
 * so the server must hold the secret itself to recompute the signature; a
 * sender that presents the secret (a header or the path) is checked against
 * its hash, so the stored form never proves anything. An OIDC sender holds
 * no secret of ours at all: it presents a token its issuer signed.
 */
export type SecretUse = "hmac" | "presented";
export type ProofUse = SecretUse | "oidc";

export function proofOf(kind: SourceKind): ProofUse {
  if (kind === "gar" || kind === "oidc") return "oidc";
  return kind === "github" || kind === "gitea" ? "hmac" : "presented";
}

export function isOidcKind(kind: SourceKind): kind is "gar" | "oidc" {
  return proofOf(kind) === "oidc";
}

/** The secret use of a kind that has a secret; OIDC kinds have none. */
export function secretUseOf(kind: SourceKind): SecretUse {
  const use = proofOf(kind);
  if (use === "oidc") throw new Error(`a ${kind} source has no secret`);
  return use;
}

/** EventBridge API destinations send the key under any header name; this is the console's suggestion. */
export const DEFAULT_ECR_HEADER = "x-api-key";

/** Google signs Pub/Sub push tokens; its ID tokens name the issuer with and without the scheme. */
export const GOOGLE_ISSUER = "https://accounts.google.com";
export const GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs";
export const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";

/** The `iss` values a token of this issuer may carry. */
export function issuerAliases(issuer: string): string[] {
  return issuer === GOOGLE_ISSUER ? [GOOGLE_ISSUER, "accounts.google.com"] : [issuer];
}

/** Where an issuer's keys are, unless the source names the URL: GitHub's layout (`<issuer>/.well-known/jwks`). */
export function defaultJwksUrl(kind: SourceKind, issuer: string): string {
  if (kind === "gar" && issuer === GOOGLE_ISSUER) return GOOGLE_JWKS_URL;
  return `${issuer.replace(/\/+$/, "")}/.well-known/jwks`;
}

export const SOURCE_ID = /^src_[0-9a-z]{26}$/;

export function isSourceKind(value: string): value is SourceKind {
  return (sourceKinds as readonly string[]).includes(value);
}

/**
 * The path a sender is configured with; Quay's carries the secret, as Quay
 * sends no header. An `oidc` source has no endpoint of its own: its tokens go
 * to the generic CI endpoint, where their issuer finds the source.
 */
export function sourceHookPath(kind: SourceKind, id: string, secret?: string): string {
  if (kind === "quay") return `/hooks/quay/${id}/${secret ?? "<secret>"}`;
  if (kind === "oidc") return "/hooks/ci";
  return `/hooks/${kind}/${id}`;
}

/** Why a delivery to a source was refused: a closed set, so metrics labels stay bounded. */
export const rejectionReasons = [
  "unknown_source",
  "revoked",
  "missing_proof",
  "bad_proof",
  "claims_mismatch",
  "issuer_unavailable",
  "forbidden",
  "unsupported_media_type",
  "payload_too_large",
  "invalid_payload",
] as const;
export type RejectionReason = (typeof rejectionReasons)[number];
