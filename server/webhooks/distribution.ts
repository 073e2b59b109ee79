import { z } from "zod";
import { isDigest, isTag, parseImageRef, splitName } from "../domain/image-ref.js";
import type { IgnoredEvent, ParsedWebhook, PushEvent } from "../domain/push-event.js";
import { invalidField, MANIFEST_MEDIA_TYPES, parseBody } from "./validation.js";

/**
 * CNCF distribution (registry 2.x and 3.x) notification envelopes. A registry
 * posts every blob, manifest, pull, mount and delete; only a manifest or index
 * pushed by tag is a deployable image (PROTOCOLS §2.3). The rest is
 * acknowledged and listed as ignored: answering non-2xx would make the
 * registry retry it forever.
 */

const optionalText = z.string().nullish();

const eventSchema = z.object({
  id: z.string().min(1, "expected a non-empty event id"),
  action: z.string(),
  // Delete events carry only part of `target`, so every field is optional here and checked where it is used.
  target: z
    .object({
      mediaType: optionalText,
      digest: optionalText,
      // `length` is the deprecated twin of `size`; registry 2.x sends both, the docs say to accept either.
      size: z.number().nullish(),
      length: z.number().nullish(),
      repository: optionalText,
      url: optionalText,
      tag: optionalText,
    })
    .nullish(),
  request: z.object({ host: optionalText }).nullish(),
});

const envelopeSchema = z.object({ events: z.array(eventSchema) });

type DistributionEvent = z.output<typeof eventSchema>;

/** The host clients pushed to (`request.host`), else the host of the by-digest `target.url`. */
function registryHost(event: DistributionEvent, index: number): string {
  if (event.request?.host) return event.request.host;
  const url = event.target?.url;
  if (url) {
    try {
      const host = new URL(url).host;
      if (host) return host;
    } catch {
      throw invalidField(["events", index, "target", "url"], "not a valid URL");
    }
  }
  throw invalidField(["events", index, "request", "host"], "missing, and target.url names no host");
}

function toPushEvent(event: DistributionEvent, index: number, tag: string): PushEvent {
  const target = event.target!;
  const at = (field: string) => ["events", index, "target", field];
  if (!target.repository) throw invalidField(at("repository"), "expected a repository name");
  if (!isTag(tag)) throw invalidField(at("tag"), "not a valid tag");
  if (target.digest && !isDigest(target.digest)) throw invalidField(at("digest"), "not a valid digest");

  const host = registryHost(event, index);
  // A host that is not recognisably a registry (no dot, port or `localhost`) would be read as a Docker Hub namespace.
  if (splitName(`${host}/a/b`).repository !== "a/b") {
    throw invalidField(["events", index, "request", "host"], "not a registry host");
  }
  let image: PushEvent["image"];
  try {
    if (/[:@]/.test(target.repository)) throw new Error("tag or digest in repository");
    const ref = parseImageRef(`${host}/${target.repository}:${tag}`);
    image = { registry: ref.registry, repository: ref.repository, tag: ref.tag };
  } catch {
    throw invalidField(at("repository"), "not a valid repository name");
  }
  return {
    eventKey: `registry:${event.id}`,
    image,
    ...(target.digest ? { digestHint: target.digest } : {}),
  };
}

export function parseDistributionEnvelope(body: unknown): ParsedWebhook {
  const envelope = parseBody(envelopeSchema, body);
  const events: PushEvent[] = [];
  const ignored: IgnoredEvent[] = [];
  envelope.events.forEach((event, index) => {
    const eventId = event.id;
    const mediaType = event.target?.mediaType ?? undefined;
    if (event.action !== "push") {
      ignored.push({ reason: "not_a_push", eventId, action: event.action });
    } else if (!mediaType || !MANIFEST_MEDIA_TYPES.has(mediaType)) {
      ignored.push({ reason: "not_a_manifest", eventId, ...(mediaType ? { mediaType } : {}) });
    } else if (!event.target?.tag) {
      // Multi-platform pushes put each platform manifest by digest before the index by tag; only the tagged one deploys.
      ignored.push({ reason: "untagged", eventId, ...(event.target?.repository ? { repository: event.target.repository } : {}) });
    } else {
      events.push(toPushEvent(event, index, event.target.tag));
    }
  });
  return { events, ignored };
}
