import { z } from "zod";
import type { IgnoredEvent, ParsedWebhook, PushEvent } from "../domain/push-event.js";
import { digestHintOf, pushImage } from "./push-image.js";
import { invalidField, parseBody } from "./validation.js";

/**
 * Harbor's `PUSH_ARTIFACT`, in the Default format and in CloudEvents
 * (`harbor.artifact.pushed`, Harbor 2.8+) (PROTOCOLS §3.2). `tag` is the
 * artifact's first tag, or its digest when it was pushed without one: such a
 * push is untagged and skipped. The registry host comes from `resource_url`.
 */

const eventDataSchema = z.object({
  resources: z.array(z.object({ digest: z.string().nullish(), tag: z.string().nullish(), resource_url: z.string().nullish() })),
  repository: z.object({ repo_full_name: z.string().min(1, "expected the repository's full name") }),
});

const defaultSchema = z.object({ type: z.string(), occur_at: z.number().nullish(), event_data: eventDataSchema.nullish() });
const cloudEventSchema = z.object({
  specversion: z.string(),
  id: z.string().min(1, "expected an event id"),
  type: z.string(),
  data: eventDataSchema.nullish(),
});

/** `sourceKey` prefixes the delivery keys; the Default format has no id, so a redelivered body is known by its digest. */
export function parseHarborEvent(body: unknown, ctx: { sourceKey: string; bodyDigest: string }): ParsedWebhook {
  const isCloudEvent = typeof body === "object" && body !== null && "specversion" in body;
  let type: string;
  let data: z.output<typeof eventDataSchema> | null | undefined;
  let dataField: string;
  let key = `${ctx.sourceKey}:body:${ctx.bodyDigest}`;
  if (isCloudEvent) {
    const event = parseBody(cloudEventSchema, body);
    if (event.type !== "harbor.artifact.pushed") return { events: [], ignored: [{ reason: "not_a_push", type: event.type }] };
    ({ type, data } = event);
    dataField = "data";
    key = `${ctx.sourceKey}:${event.id}`;
  } else {
    const event = parseBody(defaultSchema, body);
    if (event.type !== "PUSH_ARTIFACT") return { events: [], ignored: [{ reason: "not_a_push", type: event.type }] };
    ({ type } = event);
    data = event.event_data;
    dataField = "event_data";
  }
  if (!data) throw invalidField([dataField], `expected an object for ${type}`);
  const events: PushEvent[] = [];
  const ignored: IgnoredEvent[] = [];
  const repository = data.repository.repo_full_name.toLowerCase();
  data.resources.forEach((resource, i) => {
    const at = (field: string) => [dataField, "resources", i, field];
    const tag = resource.tag;
    if (!tag || tag.startsWith("sha256:")) {
      ignored.push({ reason: "untagged", repository });
      return;
    }
    // `host/project/repo:tag` or `host/project/repo@sha256:…`: the host is everything before the first slash.
    const url = resource.resource_url ?? "";
    const host = url.includes("/") ? url.slice(0, url.indexOf("/")) : "";
    const image = pushImage(host, repository, tag, {
      host: at("resource_url"),
      repository: [dataField, "repository", "repo_full_name"],
      tag: at("tag"),
    });
    events.push({ eventKey: `${key}:${i}`, image, ...digestHintOf(resource.digest) });
  });
  return { events, ignored };
}
