import { createHash } from "node:crypto";
import { Hono, type Context } from "hono";
import type { Logger } from "pino";
import type { SourceSecrets } from "../auth/source-secrets.js";
import type { TokenService } from "../auth/tokens.js";
import { AppError, type ErrorCode } from "../domain/app-error.js";
import { familiarName } from "../domain/image-ref.js";
import type { ParsedWebhook } from "../domain/push-event.js";
import { SOURCE_ID, secretUseOf, type RejectionReason, type SourceKind } from "../domain/source.js";
import type { Metrics } from "../metrics.js";
import { ingestPushes, type IngestDeps } from "../operations/ingest-push.js";
import type { SourceRecord, SourceStore } from "../store/source-store.js";
import { deploymentUrl } from "./deployment-json.js";
import { assertJsonContentType, decodeUtf8, parseJsonText, readBodyBytes } from "./read-json.js";
import type { RejectionLog } from "./rejection-log.js";
import { SOURCE_KINDS, type Delivery } from "./source-kinds.js";

export interface SourceHooksDeps {
  sources: SourceStore;
  secrets: SourceSecrets;
  rejections: RejectionLog;
  tokens: TokenService;
  ingest: IngestDeps;
  metrics: Metrics;
  log: Logger;
  now: () => number;
}

type Env = { Variables: { requestId: string } };

/** A refused delivery, with the reason it is counted under. */
class Rejected extends AppError {
  constructor(
    readonly reason: RejectionReason,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

function reasonOf(err: unknown): RejectionReason | undefined {
  if (err instanceof Rejected) return err.reason;
  if (!(err instanceof AppError)) return undefined;
  if (err.code === "PAYLOAD_TOO_LARGE") return "payload_too_large";
  if (err.code === "UNSUPPORTED_MEDIA_TYPE") return "unsupported_media_type";
  if (err.code === "BAD_REQUEST" || err.code === "VALIDATION_FAILED") return "invalid_payload";
  return undefined;
}

/**
 * The push sources' endpoints (CONTRACT §9). Order of checks: the source
 * (401), the proof (401; an HMAC needs the raw body first, 413 past 1 MiB),
 * content type (415), JSON and shape (400), repositories (403). Only then is
 * anything written, so a refused delivery leaves nothing but its count.
 */
export function createSourceHooks(deps: SourceHooksDeps) {
  const app = new Hono<Env>();

  function findSource(kind: SourceKind, id: string): SourceRecord {
    const source = SOURCE_ID.test(id) ? deps.sources.find(id) : undefined;
    // One answer for "no such id" and "an id of another kind": the endpoint does not tell which ids exist.
    if (!source || source.kind !== kind) throw new Rejected("unknown_source", "UNAUTHORIZED", `no ${kind} source with this id`);
    if (source.revokedAt !== null || !source.secret) throw new Rejected("revoked", "UNAUTHORIZED", "this source is revoked");
    return source;
  }

  /** The current secret, and the previous one while its grace lasts. */
  function validSecrets(source: SourceRecord): string[] {
    const previous = source.previousSecret && source.previousUntil !== null && deps.now() < source.previousUntil ? [source.previousSecret] : [];
    return [source.secret!, ...previous];
  }

  async function prove(c: Context<Env>, source: SourceRecord): Promise<Buffer | undefined> {
    const spec = SOURCE_KINDS[source.kind];
    const presented = spec.proof(c, source);
    if (presented.length === 0) throw new Rejected("missing_proof", "UNAUTHORIZED", spec.missingProof);
    const secrets = validSecrets(source);
    if (secretUseOf(source.kind) === "hmac") {
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

  async function accept(c: Context<Env>, kind: SourceKind) {
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
      const reason = reasonOf(err);
      if (reason) {
        // An unknown id is not a source: counting it under the id would let anyone grow the label set.
        const known = source && reason !== "unknown_source" ? source.id : "unknown";
        deps.metrics.sourceRejections.inc({ source: known, kind, reason });
        if (source) deps.rejections.record(source.id, reason, (err as Error).message);
        deps.log.info({ source: known, kind, reason, requestId: c.get("requestId") }, "push source delivery refused");
      }
      throw err;
    }
  }

  for (const kind of Object.keys(SOURCE_KINDS) as SourceKind[]) {
    app.post(`/${kind}/:sourceId`, (c) => accept(c, kind));
  }
  // Quay sends no header: its secret is the last path segment.
  app.post("/quay/:sourceId/:secret", (c) => accept(c, "quay"));
  return app;
}
