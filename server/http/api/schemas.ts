import { z } from "@hono/zod-openapi";
import { deploymentStatuses, triggerKinds } from "../../domain/deployment.js";
import { isDigest, isTag } from "../../domain/image-ref.js";
import { isServiceRef, SERVICE_REF, SERVICE_REF_MAX_LENGTH, SERVICE_REF_RULE } from "../../domain/service-ref.js";

/**
 * The REST API's shapes, once: the same zod schemas validate requests and
 * generate the OpenAPI document, so the two cannot disagree.
 */

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "VALIDATION_FAILED" }),
      message: z.string(),
      requestId: z.string(),
    }),
  })
  .openapi("Error");

const timestamp = z.string().nullable().openapi({ format: "date-time" });

export const DeploymentSchema = z
  .object({
    id: z.string().openapi({ example: "dep_01m8dwcwdanscgw0fc9x8yzpsm" }),
    service: z.string(),
    serviceId: z.string(),
    image: z.string().openapi({ example: "acme/web:latest" }),
    digest: z.string().nullable(),
    previousImage: z.string().nullable(),
    trigger: z.enum(triggerKinds),
    status: z.enum(deploymentStatuses),
    message: z.string().nullable(),
    requestedBy: z.string(),
    createdAt: z.string().openapi({ format: "date-time" }),
    startedAt: timestamp,
    finishedAt: timestamp,
    waitUntil: timestamp.openapi({ description: "cooling_down, scheduled: when the wait ends; awaiting_approval: when the request expires" }),
    approvedBy: z.string().nullable(),
    approvedAt: timestamp,
  })
  .openapi("Deployment");

export const DeploymentEventSchema = z
  .object({ at: z.string().openapi({ format: "date-time" }), status: z.enum(deploymentStatuses), message: z.string() })
  .openapi("DeploymentEvent");

export const CoalescedSchema = z
  .object({
    count: z.number().int().openapi({ description: "push events recorded as coalesced into this deployment instead of deployments of their own" }),
    latest: z
      .array(z.object({ triggerId: z.string(), trigger: z.enum(triggerKinds), at: z.string() }))
      .openapi({ description: "the latest 20 of them" }),
  })
  .openapi("Coalesced");

export const DeploymentDetailSchema = DeploymentSchema.extend({ events: z.array(DeploymentEventSchema), coalesced: CoalescedSchema }).openapi(
  "DeploymentDetail",
);

export const DeploymentPageSchema = z.object({ items: z.array(DeploymentSchema), nextCursor: z.string().nullable() }).openapi("DeploymentPage");

export const ListDeploymentsQuery = z.object({
  service: z.string().min(1).max(255).optional(),
  status: z.enum(deploymentStatuses).optional(),
  trigger: z.enum(triggerKinds).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ type: "integer", minimum: 1, maximum: 200, default: 50 }),
  cursor: z.string().min(1).max(200).optional().openapi({ description: "nextCursor of the previous page" }),
});

export const DeploymentIdParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});
export const ServiceNameParam = z.object({
  name: z
    .string()
    .refine(isServiceRef, SERVICE_REF_RULE)
    .openapi({ param: { name: "name", in: "path" }, pattern: SERVICE_REF.source, maxLength: SERVICE_REF_MAX_LENGTH }),
});

export const HoldSchema = z
  .object({ deploymentId: z.string(), reason: z.string(), heldBy: z.string(), since: z.string().openapi({ format: "date-time" }) })
  .openapi("Hold");

export const PolicySchema = z
  .object({
    follow: z
      .union([
        z.object({ kind: z.literal("semver"), level: z.enum(["patch", "minor", "major"]), prerelease: z.boolean() }),
        z.object({ kind: z.literal("range"), range: z.string(), prerelease: z.boolean() }),
        z.object({ kind: z.enum(["glob", "regex"]), pattern: z.string() }),
      ])
      .nullable(),
    approve: z.boolean(),
    windows: z.array(z.string()),
    minAgeSeconds: z.number(),
    mode: z.enum(["deploy", "notify"]),
  })
  .openapi("Policy");

export const ServiceSchema = z
  .object({
    name: z.string(),
    id: z.string(),
    image: z.string(),
    digest: z.string().nullable(),
    mode: z.enum(["replicated", "global"]),
    replicas: z.number().int().nullable(),
    runningTasks: z.number().int().nullable().openapi({ description: "tasks running now, as the engine counted them" }),
    held: z.boolean(),
    hold: HoldSchema.nullable(),
    lastDeployment: DeploymentSchema.nullable(),
    policy: PolicySchema.nullable().openapi({ description: "what the service's deployer.* labels set; null when they cannot be read" }),
    policyErrors: z.array(z.string()).openapi({ description: "why the labels cannot be read; pushes leave the service alone until they can" }),
  })
  .openapi("Service");

export const ServiceListSchema = z.object({ items: z.array(ServiceSchema) }).openapi("ServiceList");

export const RollbackBody = z
  .object({ to: z.string().min(1).max(64).optional().openapi({ description: "id of the deployment whose digest to redeploy" }) })
  .strict()
  .openapi("RollbackRequest");

export const DeployBody = z
  .object({
    tag: z.string().refine(isTag, "not a valid tag").optional(),
    digest: z.string().refine(isDigest, "not a valid digest (sha256:<64 hex>)").optional(),
  })
  .strict()
  .refine((b) => (b.tag === undefined) !== (b.digest === undefined), { message: "give exactly one of tag or digest", path: ["tag"] })
  .openapi("DeployRequest");

export const DeploymentAccepted = z.object({ deployment: DeploymentSchema }).openapi("DeploymentAccepted");
export const DeploymentResult = z.object({ deployment: DeploymentSchema }).openapi("DeploymentResult");
export const ResumeResult = z.object({ service: z.string(), wasHeld: z.boolean() }).openapi("ResumeResult");

const eventId = z
  .string()
  .regex(/^\d{1,15}$/, "not an event id sent by this server")
  .optional()
  .openapi({ description: "resume after this event id (the `id:` of the last event received)" });
export const EventStreamQuery = z.object({ lastEventId: eventId });
export const EventStreamHeaders = z.object({ "last-event-id": eventId });

export const StreamEventSchema = z
  .object({
    deploymentId: z.string(),
    service: z.string(),
    status: z.enum(deploymentStatuses),
    entry: DeploymentEventSchema,
    deployment: z
      .object({
        id: z.string(),
        service: z.string(),
        image: z.string(),
        trigger: z.enum(triggerKinds),
        requestedBy: z.string(),
        createdAt: z.string(),
      })
      .optional()
      .openapi({ description: "on `deployment` events: the new deployment" }),
    progress: z
      .object({ running: z.number().int(), desired: z.number().int() })
      .optional()
      .openapi({ description: "on a rollout's task count: tasks running the new image, of those desired" }),
  })
  .openapi("StreamEvent", {
    description:
      "The JSON `data:` of each event. `event:` is `deployment`, `timeline` or `final`; `id:` a cursor to send back as Last-Event-ID. Comment lines (`:`) are heartbeats.",
  });
