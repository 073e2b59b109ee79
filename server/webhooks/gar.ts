import { z } from "zod";
import type { ParsedWebhook } from "../domain/push-event.js";
import { digestHintOf, pushImage } from "./push-image.js";
import { invalidField, parseBody } from "./validation.js";

/**
 * A Google Artifact Registry notification as a Pub/Sub push subscription
 * posts it (PROTOCOLS §3.7): `{message: {data, messageId, attributes?},
 * subscription}`, where `data` is base64 of `{action, digest?, tag?}`. Only
 * an `INSERT` with a tag deploys; a `DELETE` or an untagged upload is
 * acknowledged (2xx, so Pub/Sub does not retry it) and ignored. Pub/Sub
 * redelivers until acknowledged, with the same `messageId`: the delivery key.
 */

const envelopeSchema = z.object({
  message: z.object({
    data: z
      .string()
      .min(1, "expected the base64 notification")
      .max(64 * 1024),
    messageId: z.string().regex(/^[\w.-]{1,128}$/, "expected Pub/Sub's message id"),
    attributes: z.record(z.string(), z.string()).optional(),
  }),
  subscription: z.string().max(512).optional(),
});

const dataSchema = z.object({
  action: z.string().max(32),
  digest: z.string().max(1024).optional(),
  tag: z.string().max(1024).optional(),
});

const DATA = ["message", "data"] as const;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeData(data: string): unknown {
  const fail = () => invalidField(DATA, "expected base64 of the notification's JSON");
  if (!BASE64.test(data)) throw fail();
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(data, "base64"));
  } catch {
    throw fail();
  }
  try {
    return JSON.parse(text);
  } catch {
    throw fail();
  }
}

/** `host/project/repo/image:tag` → its parts; the tag is after the last `:` past the last `/`. */
function splitTag(ref: string) {
  const slash = ref.indexOf("/");
  const colon = ref.lastIndexOf(":");
  if (slash <= 0 || colon < ref.lastIndexOf("/")) return undefined;
  return { host: ref.slice(0, slash), repository: ref.slice(slash + 1, colon), tag: ref.slice(colon + 1) };
}

export function parseGarPush(body: unknown, ctx: { sourceKey: string }): ParsedWebhook {
  const envelope = parseBody(envelopeSchema, body);
  const decoded = decodeData(envelope.message.data);
  const result = dataSchema.safeParse(decoded);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw invalidField([...DATA, ...issue.path], issue.code === "invalid_type" ? `expected ${issue.expected}` : issue.message);
  }
  const data = result.data;
  if (data.action !== "INSERT") return { events: [], ignored: [{ reason: "not_a_push", action: data.action }] };
  const at = { host: [...DATA, "tag"], repository: [...DATA, "tag"], tag: [...DATA, "tag"] };
  if (data.tag === undefined || data.tag === "") {
    const repository = data.digest?.split("@")[0]?.split("/").slice(1).join("/") ?? null;
    return { events: [], ignored: [{ reason: "untagged", repository }] };
  }
  const parts = splitTag(data.tag);
  if (!parts) throw invalidField(at.tag, "expected host/project/repository/image:tag");
  const image = pushImage(parts.host, parts.repository, parts.tag, at);
  // The digest is a hint only when it names the same image as the tag.
  const [digestName, digest] = (data.digest ?? "").split("@");
  const hint = digestName === `${parts.host}/${parts.repository}` ? digestHintOf(digest) : {};
  return { events: [{ eventKey: `${ctx.sourceKey}:${envelope.message.messageId}`, image, ...hint }], ignored: [] };
}
