import type { Context } from "hono";
import { AppError } from "../domain/app-error.js";
import { familiarName } from "../domain/image-ref.js";
import type { ParsedWebhook } from "../domain/push-event.js";
import { ingestPushes } from "../operations/ingest-push.js";
import type { SourceRecord } from "../store/source-store.js";
import { parseCiPush } from "../webhooks/ci.js";
import { deploymentUrl } from "./deployment-json.js";
import { proveCiToken, type Claims } from "./oidc-proof.js";
import { readJson } from "./read-json.js";
import type { SourceHooksDeps } from "./source-hooks.js";
import { reasonOf, recordRefusal, Rejected } from "./source-refusals.js";

type Env = { Variables: { requestId: string } };

const clip = (value: unknown, max: number) => (typeof value === "string" ? value.slice(0, max) : undefined);

/** Who asked, for the history: `oidc:<source>:<repository>@<ref>` for GitHub Actions, the subject for other issuers. */
export function oidcRequester(source: SourceRecord, claims: Claims): string {
  const who = clip(claims.repository, 200) ?? clip(claims.sub, 200) ?? "unknown";
  const ref = clip(claims.ref, 255);
  return `oidc:${source.id}:${who}${ref ? `@${ref}` : ""}`;
}

/**
 * `POST /hooks/ci` with an OIDC token (a GitHub Actions job's, or another
 * issuer's) instead of a webhook JWT: no shared secret at all. The token's
 * issuer finds the `oidc` sources that could accept it; the first (oldest)
 * that accepts it and whose repository patterns cover the image deploys it,
 * limited to its services like any source. Refusals are counted per source
 * and reason like the other push sources'.
 */
export async function acceptCiOidc(c: Context<Env>, deps: SourceHooksDeps & { dockerHubRegistry: string }, token: string, issuer: string) {
  let tried: SourceRecord[] = [];
  try {
    const accepted = await proveCiToken(deps.sources, deps.oidc, token, issuer);
    tried = accepted.map((a) => a.source);
    // Every source that accepted it saw the same token: its issuer and subject are the caller.
    const subject = clip(accepted[0]?.claims.sub, 255) ?? "";
    const parsed: ParsedWebhook = parseCiPush(await readJson(c), {
      dockerHubRegistry: deps.dockerHubRegistry,
      idempotencyKey: c.req.header("idempotency-key"),
      caller: `oidc ${issuer} ${subject}`,
    });
    const covers = (source: SourceRecord) => parsed.events.every((e) => deps.tokens.repoAllowed({ sub: source.id, repos: source.repos }, e.image));
    const chosen = accepted.find((a) => covers(a.source));
    if (!chosen) {
      const message = `no oidc source that accepts this token may deploy ${parsed.events.map((e) => familiarName(e.image)).join(", ")}`;
      throw new Rejected("forbidden", "FORBIDDEN", message);
    }
    const { source, claims } = chosen;
    const result = await ingestPushes(
      deps.ingest,
      { kind: "ci", requestedBy: oidcRequester(source, claims), allowedServices: source.services },
      parsed.events,
    );
    const duplicate = parsed.events.length > 0 && result.ignored.filter((i) => i.reason === "duplicate").length === parsed.events.length;
    deps.metrics.webhookRequests.inc({ endpoint: "ci", result: duplicate ? "duplicate" : "accepted" });
    return c.json(
      {
        deployments: result.deployments.map((d) => ({ id: d.id, service: d.service, status: d.status, url: deploymentUrl(d.id) })),
        ignored: [...parsed.ignored, ...result.ignored],
      },
      202,
    );
  } catch (err) {
    deps.metrics.webhookRequests.inc({ endpoint: "ci", result: err instanceof AppError ? err.code : "INTERNAL" });
    // A refusal after the proof (the body, the repositories) is charged to every source that accepted the token.
    recordRefusal(deps, chargeAll(err, tried), { kind: "oidc", requestId: c.get("requestId") });
    throw err;
  }
}

function chargeAll(err: unknown, sources: SourceRecord[]): unknown {
  const reason = reasonOf(err);
  if (!reason || sources.length === 0 || (err instanceof Rejected && err.charges)) return err;
  const message = (err as AppError).message;
  return new Rejected(
    reason,
    (err as AppError).code,
    message,
    sources.map((source) => ({ source, reason, message })),
  );
}
