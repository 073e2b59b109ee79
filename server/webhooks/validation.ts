import type { z } from "zod";
import { AppError } from "../domain/app-error.js";

/**
 * Shared by the registry adapters: a payload that fails its schema becomes a
 * 400 whose message names the failing field (`push_data.tag: expected a
 * string, got a number`), so whoever set up the webhook can see what is wrong.
 */

type Path = readonly PropertyKey[];

/**
 * The manifest and index media types a runnable image is pushed as (Docker v2
 * manifest and manifest list, OCI manifest and index). Blobs, Helm charts'
 * configs and other artifacts never start a deployment.
 */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
]);

/** `events[0].target.tag`; an empty path is the body itself. */
export function formatPath(path: Path): string {
  const text = path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  return text.replace(/^\./, "") || "body";
}

export function invalidField(path: Path, problem: string): AppError {
  return new AppError("VALIDATION_FAILED", `${formatPath(path)}: ${problem}`);
}

const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return article(typeof value);
}

function valueAt(body: unknown, path: Path): unknown {
  let value = body;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** Parses `body` with `schema`, or throws VALIDATION_FAILED naming the first failing field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  // zod's own wording for a type mismatch is "Invalid input: expected string, received undefined"; say it plainly.
  const problem = issue.code === "invalid_type" ? `expected ${article(issue.expected)}, got ${describe(valueAt(body, issue.path))}` : issue.message;
  throw invalidField(issue.path, problem);
}
