import { randomUUID } from "node:crypto";
import type { Context } from "hono";
import type { ParsedWebhook } from "../domain/push-event.js";
import { DEFAULT_ECR_HEADER, type SourceKind } from "../domain/source.js";
import type { SourceRecord } from "../store/source-store.js";
import { parseAcrEvent } from "../webhooks/acr.js";
import { parseEcrEvent } from "../webhooks/ecr.js";
import { parseGarPush } from "../webhooks/gar.js";
import { parseGiteaPackage } from "../webhooks/gitea.js";
import { parseGitHubPackage } from "../webhooks/github.js";
import { parseHarborEvent } from "../webhooks/harbor.js";
import { parseQuayPush } from "../webhooks/quay.js";

/** What an adapter may know of the delivery beyond its body. */
export interface Delivery {
  c: Context;
  /** `kind:sourceId`, the prefix of every event key of this source. */
  sourceKey: string;
  /** SHA-256 of the raw body: the delivery key of senders that send no id. */
  bodyDigest: string;
}

interface KindSpec {
  /** The proofs the request presents (signatures in hex, secrets, or a token); empty when it presents none. */
  proof(c: Context, source: SourceRecord): string[];
  missingProof: string;
  parse(body: unknown, delivery: Delivery): ParsedWebhook;
}

const DELIVERY_ID = /^[\w.-]{1,128}$/;

/** The sender's delivery id when it is a sane one, else the body's digest: a redelivery repeats both. */
function deliveryKey(d: Delivery, ...headers: string[]): string {
  const id = headers.map((h) => d.c.req.header(h)).find((v) => v !== undefined && DELIVERY_ID.test(v));
  return `${d.sourceKey}:${id ?? `body:${d.bodyDigest}`}`;
}

const present = (...values: Array<string | undefined>) => values.filter((v): v is string => !!v);

/** `sha256=<hex>` → `<hex>`; anything else is no signature. */
const hubSignature = (value: string | undefined) => (value && /^sha256=/i.test(value) ? value.slice(7) : undefined);

/** Harbor's auth header and ACR's custom header are sent verbatim; a `Bearer ` someone typed in front is allowed too. */
function authorization(c: Context): string[] {
  const value = c.req.header("authorization");
  if (!value) return [];
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(value)?.[1];
  return present(value, bearer);
}

/** The bearer token of `Authorization: Bearer <token>`, the form Pub/Sub sends its OIDC token in. */
function bearer(c: Context): string[] {
  return present(/^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1]);
}

/** The kinds with an endpoint of their own; an `oidc` source's tokens go to /hooks/ci. */
export type HookKind = Exclude<SourceKind, "oidc">;

export const SOURCE_KINDS: Record<HookKind, KindSpec> = {
  github: {
    proof: (c) => present(hubSignature(c.req.header("x-hub-signature-256"))),
    missingProof: "missing X-Hub-Signature-256; set the webhook's secret to this source's secret",
    parse: (body, d) => parseGitHubPackage(body, { event: d.c.req.header("x-github-event") ?? "", deliveryKey: deliveryKey(d, "x-github-delivery") }),
  },
  gitea: {
    proof: (c) => present(c.req.header("x-gitea-signature"), c.req.header("x-forgejo-signature"), hubSignature(c.req.header("x-hub-signature-256"))),
    missingProof: "missing X-Gitea-Signature, X-Forgejo-Signature or X-Hub-Signature-256; set the webhook's secret",
    parse: (body, d) =>
      parseGiteaPackage(body, {
        event: d.c.req.header("x-gitea-event") ?? d.c.req.header("x-forgejo-event"),
        deliveryKey: deliveryKey(d, "x-gitea-delivery", "x-forgejo-delivery", "x-github-delivery"),
      }),
  },
  harbor: {
    proof: authorization,
    missingProof: "missing Authorization; set the policy's Auth Header to this source's secret",
    parse: (body, d) => parseHarborEvent(body, d),
  },
  acr: {
    proof: authorization,
    missingProof: "missing Authorization; add the header Authorization: <secret> to the webhook",
    parse: (body, d) => parseAcrEvent(body, d),
  },
  ecr: {
    proof: (c, source) => present(c.req.header(source.headerName ?? DEFAULT_ECR_HEADER)),
    missingProof: "missing the API key header the connection sends; see the source's header",
    parse: (body, d) => parseEcrEvent(body, d),
  },
  gar: {
    proof: bearer,
    missingProof: "missing Authorization: Bearer <token>; enable authentication on the push subscription",
    parse: (body, d) => parseGarPush(body, d),
  },
  quay: {
    proof: (c) => present(c.req.param("secret")),
    missingProof: "missing the secret in the path: /hooks/quay/<source id>/<secret>",
    // No id and no timestamp in Quay's body, so no key can tell a redelivery from a second push of the same tag.
    parse: (body, d) => parseQuayPush(body, { deliveryKey: `${d.sourceKey}:${randomUUID()}` }),
  },
};
