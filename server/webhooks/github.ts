import { z } from "zod";
import type { ParsedWebhook } from "../domain/push-event.js";
import { digestHintOf, pushImage } from "./push-image.js";
import { invalidField, parseBody } from "./validation.js";

/**
 * GitHub's `package` event (and the older `registry_package`) for a container
 * pushed to ghcr.io (PROTOCOLS §3.1). A multi-platform push also announces
 * each platform manifest as an untagged version; only a tagged version
 * deploys. GitHub shows owners and names with capitals, which no OCI
 * repository may have, so both are lower-cased.
 */

const optionalText = z.string().nullish();

const packageSchema = z.object({
  name: z.string().min(1, "expected a package name"),
  package_type: optionalText,
  ecosystem: optionalText,
  owner: z.object({ login: z.string().min(1, "expected the owner's login") }),
  package_version: z
    .object({
      package_url: optionalText,
      container_metadata: z
        .object({
          tag: z.object({ name: optionalText, digest: optionalText }).nullish(),
          manifest: z.object({ digest: optionalText }).passthrough().nullish(),
        })
        .nullish(),
    })
    .nullish(),
});

const payloadSchema = z.object({
  action: z.string(),
  package: packageSchema.optional(),
  registry_package: packageSchema.optional(),
});

const CONTAINER_TYPES = new Set(["container", "docker"]);
const DEPLOYING_ACTIONS = new Set(["published", "updated"]);

/** `ghcr.io/Owner/name:tag` → host and path, the tag dropped; undefined when it is no such URL. */
function splitPackageUrl(url: string | null | undefined): { host: string; repository: string } | undefined {
  if (!url) return undefined;
  const slash = url.indexOf("/");
  if (slash <= 0) return undefined;
  const path = url.slice(slash + 1);
  const colon = path.lastIndexOf(":");
  return { host: url.slice(0, slash), repository: (colon === -1 ? path : path.slice(0, colon)).toLowerCase() };
}

export function parseGitHubPackage(body: unknown, ctx: { event: string; deliveryKey: string }): ParsedWebhook {
  // GitHub pings a new hook (signed like any delivery): a 2xx tells the person setting it up that the secret works.
  if (ctx.event === "ping") return { events: [], ignored: [{ reason: "ping" }] };
  if (ctx.event !== "package" && ctx.event !== "registry_package") {
    return { events: [], ignored: [{ reason: "not_a_package_event", event: ctx.event }] };
  }
  const payload = parseBody(payloadSchema, body);
  const field = payload.package ? "package" : "registry_package";
  const pkg = payload.package ?? payload.registry_package;
  if (!pkg) throw invalidField(["package"], "expected an object");
  if (!DEPLOYING_ACTIONS.has(payload.action)) return { events: [], ignored: [{ reason: "not_a_push", action: payload.action }] };
  // GitHub's own examples say `npm` in package_type and `docker` in ecosystem; either naming a container will do.
  const types = [pkg.package_type, pkg.ecosystem].map((t) => t?.toLowerCase());
  if (!types.some((t) => t && CONTAINER_TYPES.has(t))) {
    return { events: [], ignored: [{ reason: "not_a_container", packageType: pkg.package_type ?? null }] };
  }
  const version = pkg.package_version;
  const tag = version?.container_metadata?.tag?.name;
  const url = splitPackageUrl(version?.package_url);
  const repository = url?.repository ?? `${pkg.owner.login}/${pkg.name}`.toLowerCase();
  if (!tag) return { events: [], ignored: [{ reason: "untagged", repository }] };
  const at = (...rest: PropertyKey[]) => [field, "package_version", ...rest];
  const image = pushImage(url?.host ?? "ghcr.io", repository, tag, {
    host: at("package_url"),
    repository: at("package_url"),
    tag: at("container_metadata", "tag", "name"),
  });
  const digest = version?.container_metadata?.tag?.digest ?? version?.container_metadata?.manifest?.digest;
  return { events: [{ eventKey: ctx.deliveryKey, image, ...digestHintOf(digest) }], ignored: [] };
}
