import { z } from "zod";
import type { ParsedWebhook, PushEvent } from "../domain/push-event.js";
import { pushImage } from "./push-image.js";
import { invalidField, parseBody } from "./validation.js";

/**
 * Quay's "Push to Repository" notification (PROTOCOLS §3.4): the repository,
 * its `docker_url`, and the tags the push updated, as a list (current Quay)
 * or as an object keyed by tag (older Quay). No digest, no event id, no
 * timestamp: two pushes of one tag send the same body, so each delivery is
 * its own event (a repeated digest ends `skipped` at the service anyway).
 */

const payloadSchema = z.object({
  repository: z.string().min(1, "expected the repository name"),
  docker_url: z.string().min(1, "expected the docker_url"),
  updated_tags: z.union([z.array(z.string()), z.record(z.string(), z.unknown())]),
});

export function parseQuayPush(body: unknown, ctx: { deliveryKey: string }): ParsedWebhook {
  const payload = parseBody(payloadSchema, body);
  const tags = Array.isArray(payload.updated_tags) ? payload.updated_tags : Object.keys(payload.updated_tags);
  if (tags.length === 0) return { events: [], ignored: [{ reason: "untagged", repository: payload.repository }] };
  if (tags.length > 100) throw invalidField(["updated_tags"], "more than 100 tags in one push");
  // `quay.io/ns/repo`: the registry is the first segment.
  const slash = payload.docker_url.indexOf("/");
  const host = slash === -1 ? "" : payload.docker_url.slice(0, slash);
  const events: PushEvent[] = tags.map((tag, i) => ({
    eventKey: `${ctx.deliveryKey}:${i}`,
    image: pushImage(host, payload.repository.toLowerCase(), tag, { host: ["docker_url"], repository: ["repository"], tag: ["updated_tags", i] }),
  }));
  return { events, ignored: [] };
}
