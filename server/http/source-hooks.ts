import { createHash } from "node:crypto";
import { Hono, type Context } from "hono";
import type { Logger } from "pino";
import type { SourceSecrets } from "../auth/source-secrets.js";
import type { TokenService } from "../auth/tokens.js";
import type { OidcVerifier } from "../auth/oidc-verifier.js";
import { AppError } from "../domain/app-error.js";
import { familiarName } from "../domain/image-ref.js";
import type { ParsedWebhook } from "../domain/push-event.js";
import { proofOf, SOURCE_ID } from "../domain/source.js";
import type { Metrics } from "../metrics.js";
import { ingestPushes, type IngestDeps } from "../operations/ingest-push.js";
import type { SourceRecord, SourceStore } from "../store/source-store.js";
import { deploymentUrl } from "./deployment-json.js";
import { assertJsonContentType, decodeUtf8, parseJsonText, readBodyBytes } from "./read-json.js";
import { proveGarToken } from "./oidc-proof.js";
import type { RejectionLog } from "./rejection-log.js";
import { SOURCE_KINDS, type Delivery, type HookKind } from "./source-kinds.js";
import { recordRefusal, Rejected } from "./source-refusals.js";

export interface SourceHooksDeps {
  sources: SourceStore;
  secrets: SourceSecrets;
  rejections: RejectionLog;
  oidc: OidcVerifier;
  tokens: TokenService;
  ingest: IngestDeps;
  metrics: Metrics;
  log: Logger;
  now: () => number;
}

type Env = { Variables: { requestId: string } };

/**
 * The push sources' endpoints (CONTRACT §9). Order of checks: the source
 * (401), the proof (401; an HMAC needs the raw body first, 413 past 1 MiB;
 * an OIDC token needs its issuer's keys, 503 when they cannot be fetched),
 * content type (415), JSON and shape (400), repositories (403). Only then is
 * anything written, so a refused delivery leaves nothing but its count.
 */
export function createSourceHooks(deps: SourceHooksDeps) {
  const app = new Hono<Env>();

  function findSource(kind: HookKind, id: string): SourceRecord {
    const source = SOURCE_ID.test(id) ? deps.sources.find(id) : undefined;
    // One answer for "no such id" and "an id of another kind": the endpoint does not tell which ids exist.
    if (!source || source.kind !== kind) throw new Rejected("unknown_source", "UNAUTHORIZED", `no ${kind} source with this id`);
    if (source.revokedAt !== null || (proofOf(kind) !== "oidc" && !source.secret))
      throw new Rejected("revoked", "UNAUTHORIZED", "this source is revoked");
    return source;
  }

  /** The current secret, and the previous one while its grace lasts. */
  function validSecrets(source: SourceRecord): string[] {
    const previous = source.previousSecret && source.previousUntil !== null && deps.now() < source.previousUntil ? [source.previousSecret] : [];
    return [source.secret!, ...previous];
  }

  async function prove(c: Context<Env>, source: SourceRecord): Promise<Buffer | undefined> {
    const spec = SOURCE_KINDS[source.kind as HookKind];
    const presented = spec.proof(c, source);
    if (presented.length === 0) throw new Rejected("missing_proof", "UNAUTHORIZED", spec.missingProof);
    const use = proofOf(source.kind);
    if (use === "oidc") {
      await proveGarToken(deps.oidc, source, presented[0]!);
      return undefined;
    }
    const secrets = validSecrets(source);
    if (use === "hmac") {
      const bytes = await readBodyBytes(c);
      const ok = secrets.some((stored) => presented.some((sig) => deps.secrets.matchesHmac(stored, source.id, bytes, sig)));
      if (!ok) throw new Rejected("bad_proof", "UNAUTHORIZED", "the signature does not match this source's secret and the raw body");
      return bytes;
    }
    const ok = secrets.some((stored) => presented.some((value) => deps.secrets.matchesPresented(stored, value)));
    if (!ok) throw new Rejected("bad_proof", "UNAUTHORIZED", "the secret does not match this source's");
    return undefined;
  }

  function checkRepos(source: SourceRecord, parsed: ParsedWebhook) {
    const claims = { sub: source.id, repos: source.repos };
    for (const event of parsed.events) {
      if (!deps.tokens.repoAllowed(claims, event.image)) {
        throw new Rejected("forbidden", "FORBIDDEN", `this source may not deploy ${familiarName(event.image)}`);
      }
    }
  }

  async function accept(c: Context<Env>, kind: HookKind) {
    let source: SourceRecord | undefined;
    try {
      source = findSource(kind, c.req.param("sourceId") ?? "");
      const signed = await prove(c, source);
      assertJsonContentType(c);
      const bytes = signed ?? (await readBodyBytes(c));
      const body = parseJsonText(decodeUtf8(bytes));
      const delivery: Delivery = { c, sourceKey: `${kind}:${source.id}`, bodyDigest: createHash("sha256").update(bytes).digest("hex") };
      const parsed = SOURCE_KINDS[kind].parse(body, delivery);
      checkRepos(source, parsed);
      const result = await ingestPushes(deps.ingest, { kind, requestedBy: `source:${source.id}`, allowedServices: source.services }, parsed.events);
      const duplicate = parsed.events.length > 0 && result.ignored.filter((i) => i.reason === "duplicate").length === parsed.events.length;
      deps.metrics.webhookRequests.inc({ endpoint: kind, result: duplicate ? "duplicate" : "accepted" });
      return c.json(
        {
          deployments: result.deployments.map((d) => ({ id: d.id, service: d.service, status: d.status, url: deploymentUrl(d.id) })),
          ignored: [...parsed.ignored, ...result.ignored],
        },
        202,
      );
    } catch (err) {
      deps.metrics.webhookRequests.inc({ endpoint: kind, result: err instanceof AppError ? err.code : "INTERNAL" });
      recordRefusal(deps, err, { kind, source, requestId: c.get("requestId") });
      throw err;
    }
  }

  for (const kind of Object.keys(SOURCE_KINDS) as HookKind[]) {
    app.post(`/${kind}/:sourceId`, (c) => accept(c, kind));
  }
  // Quay sends no header: its secret is the last path segment.
  app.post("/quay/:sourceId/:secret", (c) => accept(c, "quay"));
  return app;
}
