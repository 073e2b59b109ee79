import { z } from "zod";
import type { ParsedWebhook } from "../domain/push-event.js";
import { pushImage } from "./push-image.js";
import { invalidField, parseBody } from "./validation.js";

/**
 * Gitea's and Forgejo's `package` event (PROTOCOLS §3.5). The container
 * registry fires one for every manifest PUT: a tagged version names the tag,
 * the platform manifests of a multi-platform push come as `sha256:…`
 * versions and are skipped. No digest is sent; the tag is resolved anyway.
 */

const payloadSchema = z.object({
  action: z.string(),
  package: z.object({
    type: z.string(),
    name: z.string().min(1, "expected a package name"),
    version: z.string().min(1, "expected a version"),
    owner: z.object({ login: z.string().min(1, "expected the owner's login") }),
    html_url: z.string().nullish(),
  }),
});

/** The registry is the Gitea host itself: the host of the package's page. */
function registryHost(htmlUrl: string | null | undefined): string {
  try {
    return htmlUrl ? new URL(htmlUrl).host : "";
  } catch {
    throw invalidField(["package", "html_url"], "not a valid URL");
  }
}

export function parseGiteaPackage(body: unknown, ctx: { event: string | undefined; deliveryKey: string }): ParsedWebhook {
  if (ctx.event !== undefined && ctx.event !== "package") return { events: [], ignored: [{ reason: "not_a_package_event", event: ctx.event }] };
  const payload = parseBody(payloadSchema, body);
  const pkg = payload.package;
  if (payload.action !== "created") return { events: [], ignored: [{ reason: "not_a_push", action: payload.action }] };
  if (pkg.type !== "container") return { events: [], ignored: [{ reason: "not_a_container", packageType: pkg.type }] };
  const repository = `${pkg.owner.login}/${pkg.name}`.toLowerCase();
  if (pkg.version.startsWith("sha256:")) return { events: [], ignored: [{ reason: "untagged", repository }] };
  const image = pushImage(registryHost(pkg.html_url), repository, pkg.version, {
    host: ["package", "html_url"],
    repository: ["package", "name"],
    tag: ["package", "version"],
  });
  return { events: [{ eventKey: ctx.deliveryKey, image }], ignored: [] };
}
