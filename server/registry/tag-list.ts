/**
 * A repository's tags from the distribution API: `GET /v2/<name>/tags/list`,
 * following the `Link: <…>; rel="next"` pagination of the distribution spec,
 * within bounds (pages, tags, bytes), so a repository with a million tags
 * costs a known number of requests. Only a next page on the same registry is
 * followed: the request carries that registry's credentials.
 */
import { isTag, repoKey, type ImageRef } from "../domain/image-ref.js";
import { readRegistryJson } from "./read-json.js";
import { RegistryError } from "./registry-port.js";

type RepoRef = Pick<ImageRef, "registry" | "repository">;

export interface TagListDeps {
  request(method: "GET", ref: RepoRef, path: string, accept: string): Promise<Response>;
  ensureOk(res: Response, method: string, ref: RepoRef, what?: string): Promise<void>;
  /** `n` per page; registries may send fewer. */
  pageSize?: number;
}

const DEFAULT_PAGE_SIZE = 1000;
/** Quay sends at most 100 a page, whatever `n` asks: 100 pages reach MAX_TAGS there too. */
const MAX_PAGES = 100;
const MAX_TAGS = 10_000;

/**
 * The path and query of a `rel="next"` link on the same registry, or undefined. A relative link (`</v2/…>`, or
 * `<?last=b&n=2>`) is resolved against the page it came with; `rel` may name several relations (`"prev next"`).
 */
export function nextPage(link: string | null, origin: string, current = "/"): string | undefined {
  for (const part of (link ?? "").split(",")) {
    const match = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    const rel = match && /\brel\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(match[2]!);
    if (!match || !rel || !(rel[1] ?? rel[2] ?? "").toLowerCase().split(/\s+/).includes("next")) continue;
    let url: URL;
    try {
      url = new URL(match[1]!, new URL(current, origin));
    } catch {
      return undefined;
    }
    if (url.origin !== new URL(origin).origin || !url.pathname.startsWith("/v2/")) return undefined;
    return `${url.pathname}${url.search}`;
  }
  return undefined;
}

export async function listTags(ref: RepoRef, deps: TagListDeps & { origin(): string }): Promise<string[]> {
  const name = `${repoKey(ref)} tags`;
  const tags: string[] = [];
  let path: string | undefined = `/v2/${ref.repository}/tags/list?n=${deps.pageSize ?? DEFAULT_PAGE_SIZE}`;
  for (let page = 0; path && page < MAX_PAGES && tags.length < MAX_TAGS; page++) {
    const res = await deps.request("GET", ref, path, "application/json");
    await deps.ensureOk(res, "GET", ref, name);
    const body = (await readRegistryJson(res, ref.registry, `a page of ${name}`)) as { tags?: unknown } | null;
    if (body === null || typeof body !== "object" || (body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags))) {
      throw new RegistryError("protocol", `registry ${ref.registry} answered ${name} without a tags array`);
    }
    for (const tag of (body.tags as unknown[] | null | undefined) ?? []) {
      if (typeof tag === "string" && isTag(tag) && tags.length < MAX_TAGS) tags.push(tag);
    }
    path = nextPage(res.headers.get("link"), deps.origin(), path);
  }
  return tags;
}
