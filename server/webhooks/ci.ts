import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import { isDigest, parseImageRef, repoTagKey } from "../domain/image-ref.js";
import type { ParsedWebhook } from "../domain/push-event.js";
import { invalidField, parseBody } from "./validation.js";

/**
 * The generic CI endpoint's body, `{"image": "repo:tag", "digest"?: "sha256:…"}`:
 * a job that just pushed says so itself. The image reads like any image name
 * (`acme/web:1.2` is Docker Hub); the digest is a hint like every payload's.
 * A CI job has no delivery id of its own, so an `Idempotency-Key` header makes a
 * retried call a no-op; without one every call is a push. The key is the
 * caller's own: it counts for one caller (a token's subject, an OIDC token's
 * issuer and subject) and one image, so another job's `run-42`, or the same
 * key on another image, is a push of its own.
 */

const bodySchema = z.object({ image: z.string().min(1, "expected an image such as acme/web:1.2").max(512), digest: z.string().optional() }).strict();

const IDEMPOTENCY_KEY = /^[\w.:-]{1,128}$/;

/** What an Idempotency-Key counts for: one caller and one repo:tag, in 16 hex digits. */
const callerScope = (caller: string, image: Parameters<typeof repoTagKey>[0]) =>
  createHash("sha256")
    .update(`${caller}\n${repoTagKey(image)}`)
    .digest("hex")
    .slice(0, 16);

export function parseCiPush(body: unknown, opts: { dockerHubRegistry: string; idempotencyKey?: string; caller: string }): ParsedWebhook {
  const payload = parseBody(bodySchema, body);
  if (payload.digest !== undefined && !isDigest(payload.digest)) throw invalidField(["digest"], "not a valid digest (sha256:<64 hex>)");
  let image;
  try {
    const ref = parseImageRef(payload.image, opts.dockerHubRegistry);
    if (ref.digest) throw new Error("pinned");
    image = { registry: ref.registry, repository: ref.repository, tag: ref.tag };
  } catch {
    throw invalidField(["image"], "not an image name with an optional tag (give a digest in digest, not in image)");
  }
  const key =
    opts.idempotencyKey && IDEMPOTENCY_KEY.test(opts.idempotencyKey) ? `key:${callerScope(opts.caller, image)}:${opts.idempotencyKey}` : randomUUID();
  return { events: [{ eventKey: `ci:${key}`, image, ...(payload.digest ? { digestHint: payload.digest } : {}) }], ignored: [] };
}
