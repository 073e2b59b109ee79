import { z } from "@hono/zod-openapi";
import { rejectionReasons, SOURCE_ID, sourceKinds } from "../../domain/source.js";

/** The shapes of `/api/sources`, validating requests and generating the OpenAPI document. */

const timestamp = z.string().nullable().openapi({ format: "date-time" });

export const SourceSchema = z
  .object({
    id: z.string().openapi({ example: "src_01m8dwcwdanscgw0fc9x8yzpsm" }),
    kind: z.enum(sourceKinds),
    repos: z.array(z.string()),
    services: z.array(z.string()).nullable(),
    header: z.string().nullable().openapi({ description: "ecr: the header the API destination sends the secret in" }),
    path: z.string().openapi({
      description:
        "the endpoint to configure at the sender (Quay's carries the secret, shown only when it is issued; an oidc source's tokens go to /hooks/ci)",
    }),
    issuer: z.string().nullable().openapi({ description: "gar, oidc: the issuer whose tokens prove the sender" }),
    jwksUrl: z.string().nullable().openapi({ description: "gar, oidc: where the issuer's keys are fetched" }),
    audience: z.string().nullable().openapi({ description: "gar, oidc: the aud the tokens must carry" }),
    email: z.string().nullable().openapi({ description: "gar: the push subscription's service account (email_verified required)" }),
    claims: z
      .record(z.string(), z.array(z.string()))
      .nullable()
      .openapi({ description: "oidc: claim name → patterns (* for any characters); every claim must match one of its patterns" }),
    status: z.enum(["active", "revoked"]),
    createdAt: z.string().openapi({ format: "date-time" }),
    rotatedAt: timestamp,
    previousSecretValidUntil: timestamp,
    revokedAt: timestamp,
  })
  .openapi("Source");

export const SourceListSchema = z.object({ items: z.array(SourceSchema) }).openapi("SourceList");

export const RejectionSummarySchema = z
  .object({
    counts: z.record(z.string(), z.number().int()),
    recent: z.array(z.object({ at: z.string().openapi({ format: "date-time" }), reason: z.enum(rejectionReasons), message: z.string() })),
  })
  .openapi("RejectionSummary");

export const SourceDetailSchema = SourceSchema.extend({ rejections: RejectionSummarySchema }).openapi("SourceDetail");

export const SourceIssuedSchema = z
  .object({
    source: SourceSchema,
    secret: z
      .string()
      .nullable()
      .openapi({ description: "shown once: only a hash or a sealed form is stored; null for gar and oidc sources, which have none" }),
    url: z.string().openapi({ description: "the endpoint as this request reached the server; behind a proxy, use your public host" }),
  })
  .openapi("SourceIssued");

export const SourceRevokedSchema = z.object({ source: SourceSchema }).openapi("SourceRevoked");

export const NewSourceBody = z
  .object({
    kind: z.enum(sourceKinds),
    repos: z.array(z.string().min(1).max(255)).min(1).max(100),
    services: z.array(z.string().min(1).max(63)).min(1).max(100).optional(),
    header: z.string().min(1).max(64).optional().openapi({ description: "ecr only: default x-api-key" }),
    issuer: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .openapi({ description: "gar, oidc: default https://accounts.google.com (gar), https://token.actions.githubusercontent.com (oidc)" }),
    jwksUrl: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .openapi({ description: "gar, oidc: default Google's certs (gar), <issuer>/.well-known/jwks (oidc)" }),
    audience: z.string().min(1).max(512).optional().openapi({ description: "gar, oidc (required): the aud the tokens are issued for" }),
    email: z.string().min(1).max(320).optional().openapi({ description: "gar (required): the push subscription's service account" }),
    claims: z
      .record(z.string().max(64), z.union([z.string().min(1).max(255), z.array(z.string().min(1).max(255)).min(1).max(20)]))
      .optional()
      .openapi({ description: 'oidc (required): claim rules, e.g. {"repository": "acme/*", "ref": "refs/heads/main"}' }),
  })
  .strict()
  .openapi("NewSource");

export const RotateBody = z
  .object({ grace: z.string().min(1).max(16).optional().openapi({ description: "how long the old secret stays valid: 0, 30m, 24h (default), 7d" }) })
  .strict()
  .openapi("RotateSource");

export const SourceIdParam = z.object({
  id: z
    .string()
    .regex(SOURCE_ID, "not a source id")
    .openapi({ param: { name: "id", in: "path" }, pattern: SOURCE_ID.source }),
});
