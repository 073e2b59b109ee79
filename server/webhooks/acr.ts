import { z } from "zod";
import type { ParsedWebhook } from "../domain/push-event.js";
import { digestHintOf, pushImage } from "./push-image.js";
import { MANIFEST_MEDIA_TYPES, parseBody } from "./validation.js";

/**
 * An Azure Container Registry webhook (PROTOCOLS §3.8): one distribution-like
 * event per POST, `{id, action, target: {repository, tag, digest, mediaType},
 * request: {host}}`. Only a tagged image push deploys (`chart_push` and
 * deletes do not); the event id is the delivery key.
 */

const eventSchema = z.object({
  id: z.string().min(1, "expected the event id"),
  action: z.string(),
  target: z
    .object({ repository: z.string().nullish(), tag: z.string().nullish(), digest: z.string().nullish(), mediaType: z.string().nullish() })
    .nullish(),
  request: z.object({ host: z.string().nullish() }).nullish(),
});

export function parseAcrEvent(body: unknown, ctx: { sourceKey: string }): ParsedWebhook {
  const event = parseBody(eventSchema, body);
  if (event.action !== "push") return { events: [], ignored: [{ reason: "not_a_push", eventId: event.id, action: event.action }] };
  const target = event.target ?? {};
  if (target.mediaType && !MANIFEST_MEDIA_TYPES.has(target.mediaType)) {
    return { events: [], ignored: [{ reason: "not_a_manifest", eventId: event.id, mediaType: target.mediaType }] };
  }
  if (!target.tag) return { events: [], ignored: [{ reason: "untagged", eventId: event.id }] };
  const image = pushImage(event.request?.host ?? "", target.repository ?? "", target.tag, {
    host: ["request", "host"],
    repository: ["target", "repository"],
    tag: ["target", "tag"],
  });
  return { events: [{ eventKey: `${ctx.sourceKey}:${event.id}`, image, ...digestHintOf(target.digest) }], ignored: [] };
}
