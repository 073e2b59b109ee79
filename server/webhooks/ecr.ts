import { z } from "zod";
import type { ParsedWebhook } from "../domain/push-event.js";
import { digestHintOf, pushImage } from "./push-image.js";
import { parseBody } from "./validation.js";

/**
 * An ECR "ECR Image Action" event, as an EventBridge rule posts it unchanged
 * to an API destination (PROTOCOLS §3.6). Only a successful push deploys.
 * EventBridge retries for up to 24 hours, so the event `id` is the delivery
 * key. The registry is `<account>.dkr.ecr.<region>.amazonaws.com`.
 */

const eventSchema = z.object({
  id: z.string().min(1, "expected the event id"),
  "detail-type": z.string(),
  account: z.string().regex(/^\d{12}$/, "expected a 12-digit AWS account id"),
  region: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d$/, "expected an AWS region such as us-west-2"),
  detail: z.object({
    result: z.string().nullish(),
    "action-type": z.string().nullish(),
    "repository-name": z.string().min(1, "expected the repository name"),
    "image-tag": z.string().nullish(),
    "image-digest": z.string().nullish(),
  }),
});

export function parseEcrEvent(body: unknown, ctx: { sourceKey: string }): ParsedWebhook {
  const event = parseBody(eventSchema, body);
  const detail = event.detail;
  if (event["detail-type"] !== "ECR Image Action") return { events: [], ignored: [{ reason: "not_a_push", detailType: event["detail-type"] }] };
  if (detail["action-type"] !== "PUSH" || detail.result !== "SUCCESS") {
    return { events: [], ignored: [{ reason: "not_a_push", action: detail["action-type"] ?? null, result: detail.result ?? null }] };
  }
  const repository = detail["repository-name"];
  if (!detail["image-tag"]) return { events: [], ignored: [{ reason: "untagged", repository }] };
  const image = pushImage(`${event.account}.dkr.ecr.${event.region}.amazonaws.com`, repository, detail["image-tag"], {
    host: ["account"],
    repository: ["detail", "repository-name"],
    tag: ["detail", "image-tag"],
  });
  return { events: [{ eventKey: `${ctx.sourceKey}:${event.id}`, image, ...digestHintOf(detail["image-digest"]) }], ignored: [] };
}
