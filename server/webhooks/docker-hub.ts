import { z } from "zod";
import { isTag, parseImageRef, repoTagKey, splitName } from "../domain/image-ref.js";
import type { ParsedWebhook, PushEvent } from "../domain/push-event.js";
import { invalidField, MANIFEST_MEDIA_TYPES, parseBody } from "./validation.js";

/**
 * Docker Hub's repository webhook (one push per POST, no event type, no
 * digest, no signature). Only the fields we act on are checked; Hub's payload
 * has changed over the years (`images`, `media_type`, `comment_count`,
 * `full_description: null`), so everything else is let through untouched.
 */

/**
 * Hub's `media_type` is undocumented. Besides manifest and index types, Kargo
 * (akuity/kargo pkg/webhook/external) also reads the image config types as
 * images, so they are accepted here too: the tag is resolved before deploying
 * anyway, while dropping a real image push would silently skip a rollout.
 */
const IMAGE_MEDIA_TYPES: ReadonlySet<string> = new Set([
  ...MANIFEST_MEDIA_TYPES,
  "application/vnd.docker.container.image.v1+json",
  "application/vnd.oci.image.config.v1+json",
]);

const optionalText = z
  .string()
  .nullish()
  .transform((v) => v || undefined);

const dockerHubPushSchema = z.object({
  callback_url: optionalText,
  push_data: z.object({
    tag: z.string().min(1, "expected a non-empty tag"),
    // Unix seconds; old deliveries send floats such as 1.417566161e+09.
    pushed_at: z.number().finite(),
    pusher: optionalText,
    media_type: optionalText,
  }),
  repository: z.object({
    repo_name: z.string().min(1, "expected a non-empty repository name"),
  }),
});

export function parseDockerHubPush(body: unknown, opts: { dockerHubRegistry: string }): ParsedWebhook {
  const payload = parseBody(dockerHubPushSchema, body);
  const { tag, pushed_at: pushedAt, pusher, media_type: mediaType } = payload.push_data;
  const repoName = payload.repository.repo_name;

  // Hub also sends Helm charts and other OCI artifacts; only images can run as a service.
  if (mediaType !== undefined && !IMAGE_MEDIA_TYPES.has(mediaType)) {
    return { events: [], ignored: [{ reason: "not_an_image", mediaType, repository: repoName, tag }] };
  }
  if (!isTag(tag)) throw invalidField(["push_data", "tag"], "not a valid tag");

  // `_/nginx` is how Hub once wrote official images; a mirror of Hub stores them under library/ too.
  const name = repoName.startsWith("_/") ? `library/${repoName.slice(2)}` : repoName;
  const registry = splitName("probe", opts.dockerHubRegistry).registry;
  let image: PushEvent["image"] | undefined;
  if (!/[:@]/.test(name)) {
    try {
      const ref = parseImageRef(`${name}:${tag}`, opts.dockerHubRegistry);
      image = { registry: ref.registry, repository: ref.repository, tag: ref.tag };
    } catch {
      image = undefined;
    }
  }
  // A name that parses with a registry of its own (`evil.example/x`) would let the payload pick the registry.
  if (!image || image.registry !== registry) {
    throw invalidField(["repository", "repo_name"], "not a valid Docker Hub repository name");
  }

  const event: PushEvent = {
    eventKey: `dockerhub:${repoTagKey(image)}@${pushedAt}`,
    image,
    ...(payload.callback_url ? { callbackUrl: payload.callback_url } : {}),
    ...(pusher ? { pusher } : {}),
  };
  return { events: [event], ignored: [] };
}
