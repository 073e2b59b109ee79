import { Hono, type Context } from "hono";
import type { Logger } from "pino";
import type { TokenService, WebhookClaims } from "../auth/tokens.js";
import { AppError } from "../domain/app-error.js";
import { familiarName } from "../domain/image-ref.js";
import type { ParsedWebhook } from "../domain/push-event.js";
import { ingestPushes, type IngestDeps } from "../operations/ingest-push.js";
import type { Metrics } from "../metrics.js";
import { parseDistributionEnvelope } from "../webhooks/distribution.js";
import { parseDockerHubPush } from "../webhooks/docker-hub.js";
import { parseCiPush } from "../webhooks/ci.js";
import { asUnauthorized, bearerToken } from "./bearer.js";
import { acceptCiOidc } from "./ci-oidc.js";
import { deploymentUrl } from "./deployment-json.js";
import { readJson } from "./read-json.js";
import { createSourceHooks, type SourceHooksDeps } from "./source-hooks.js";

export interface HooksDeps {
  tokens: TokenService;
  ingest: IngestDeps;
  metrics: Metrics;
  log: Logger;
  dockerHubRegistry: string;
  sourceHooks: SourceHooksDeps;
}

type Env = { Variables: { requestId: string } };

/**
 * Registry webhooks. Order of checks: token (401), content type (415), size
 * (413), JSON and shape (400), repository scope (403); only then is anything
 * written, so a rejected request leaves no trace but the metric.
 */
export function createHooksRoutes(deps: HooksDeps) {
  const app = new Hono<Env>();

  async function accept(
    c: Context<Env>,
    endpoint: "registry" | "dockerhub" | "ci",
    token: () => string,
    parse: (body: unknown, claims: WebhookClaims) => ParsedWebhook,
  ) {
    try {
      const claims = await deps.tokens.verifyWebhookToken(token()).catch(asUnauthorized);
      const parsed = parse(await readJson(c), claims);
      checkRepoScope(claims, parsed);
      // A redelivery comes with the token the first delivery came with: its event keys are that token's. A CI
      // job's idempotency key is its caller's already (webhooks/ci.ts), kept across tokens of the same subject.
      const keyScope = endpoint === "ci" ? undefined : claims.jti ? `jti:${claims.jti}` : `sub:${claims.sub}`;
      const result = await ingestPushes(
        deps.ingest,
        { kind: endpoint, requestedBy: claims.sub, allowedServices: claims.services, keyScope },
        parsed.events,
      );
      const duplicate = parsed.events.length > 0 && result.ignored.filter((i) => i.reason === "duplicate").length === parsed.events.length;
      deps.metrics.webhookRequests.inc({ endpoint, result: duplicate ? "duplicate" : "accepted" });
      return c.json(
        {
          deployments: result.deployments.map((d) => ({ id: d.id, service: d.service, status: d.status, url: deploymentUrl(d.id) })),
          ignored: [...parsed.ignored, ...result.ignored],
        },
        202,
      );
    } catch (err) {
      deps.metrics.webhookRequests.inc({ endpoint, result: err instanceof AppError ? err.code : "INTERNAL" });
      throw err;
    }
  }

  function checkRepoScope(claims: WebhookClaims, parsed: ParsedWebhook) {
    for (const event of parsed.events) {
      if (!deps.tokens.repoAllowed(claims, event.image)) {
        throw new AppError("FORBIDDEN", `this token may not deploy ${familiarName(event.image)}`);
      }
    }
  }

  app.post("/registry", (c) => accept(c, "registry", () => bearerToken(c), parseDistributionEnvelope));

  app.post("/dockerhub/:token", (c) =>
    accept(
      c,
      "dockerhub",
      () => c.req.param("token"),
      (body) => parseDockerHubPush(body, { dockerHubRegistry: deps.dockerHubRegistry }),
    ),
  );

  // A CI job after its push: a webhook token (ours, no issuer), or an OIDC token of an issuer an oidc source trusts.
  app.post("/ci", (c) => {
    const token = bearerToken(c);
    const issuer = deps.sourceHooks.oidc.peekIssuer(token);
    if (issuer !== undefined) return acceptCiOidc(c, { ...deps.sourceHooks, dockerHubRegistry: deps.dockerHubRegistry }, token, issuer);
    return accept(
      c,
      "ci",
      () => token,
      (body, claims) =>
        parseCiPush(body, {
          dockerHubRegistry: deps.dockerHubRegistry,
          idempotencyKey: c.req.header("idempotency-key"),
          caller: `token ${claims.sub}`,
        }),
    );
  });

  app.route("/", createSourceHooks(deps.sourceHooks));

  return app;
}
