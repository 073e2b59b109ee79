/**
 * Push sources: senders that cannot carry a webhook JWT and prove themselves
 * with a secret of their own instead (CONTRACT §9). Which kinds there are and
 * how each one uses its secret is a rule, kept here beside the other rules.
 */
export const sourceKinds = ["github", "gitea", "harbor", "quay", "ecr", "acr"] as const;
export type SourceKind = (typeof sourceKinds)[number];

/**
 * How a kind's secret is checked. An HMAC sender signs the body with the
 * secret, so the server must hold the secret itself to recompute the
 * signature; a sender that presents the secret (a header or the path) is
 * checked against its hash, so the stored form never proves anything.
 */
export type SecretUse = "hmac" | "presented";

export function secretUseOf(kind: SourceKind): SecretUse {
  return kind === "github" || kind === "gitea" ? "hmac" : "presented";
}

/** EventBridge API destinations send the key under any header name; this is the console's suggestion. */
export const DEFAULT_ECR_HEADER = "x-api-key";

export const SOURCE_ID = /^src_[0-9a-z]{26}$/;

export function isSourceKind(value: string): value is SourceKind {
  return (sourceKinds as readonly string[]).includes(value);
}

/** The path a sender is configured with; Quay's carries the secret, as Quay sends no header. */
export function sourceHookPath(kind: SourceKind, id: string, secret?: string): string {
  if (kind === "quay") return `/hooks/quay/${id}/${secret ?? "<secret>"}`;
  return `/hooks/${kind}/${id}`;
}

/** Why a delivery to a source was refused: a closed set, so metrics labels stay bounded. */
export const rejectionReasons = [
  "unknown_source",
  "revoked",
  "missing_proof",
  "bad_proof",
  "forbidden",
  "unsupported_media_type",
  "payload_too_large",
  "invalid_payload",
] as const;
export type RejectionReason = (typeof rejectionReasons)[number];
