/**
 * The poller's half of deployer.follow: one tag list per repository (and
 * login) per cycle, and for each service following versions there the tag
 * it moves to, if any. Only that tag is then looked up (a HEAD, as for any
 * tag), never one the policy does not admit or that is not newer.
 *
 * For glob and regex policies "newer" is "pushed later": the tags that
 * appeared on the list since the previous cycle. The lists are kept in the
 * record (store/tag-lists.ts), so a tag pushed while the server was down is
 * new at the first cycle after the start; only the very first look at a
 * repository learns its list without deploying.
 */
import type { Logger } from "pino";
import { pickFromTagList, describeFollow, newOnList } from "../domain/follow.js";
import { tryParseImageRef, type ImageRef } from "../domain/image-ref.js";
import { readPolicy } from "../domain/policy.js";
import type { SwarmService } from "../engine/swarm-port.js";
import type { TagListMemory } from "../store/tag-lists.js";
import { RegistryError, type RegistryPort } from "../registry/registry-port.js";
import type { FollowGroup } from "./poll-plan.js";

export interface FollowCandidate {
  service: SwarmService;
  ref: Pick<ImageRef, "registry" | "repository" | "tag">;
  /** Why, for the first timeline entry: `follows semver:minor: 1.4.2 -> 1.4.3`. */
  reason: string;
}

/** Keeps, per repository, the tag list of the previous cycle (in `memory` when given); bounded by the listing's own bound. */
export function createFollowLookups(log: Logger, memory?: Pick<TagListMemory, "find" | "save">) {
  const previous = new Map<string, Set<string>>();
  const lastList = (key: string) => {
    if (!previous.has(key) && memory) {
      const kept = memory.find(key);
      if (kept) previous.set(key, kept);
    }
    return previous.get(key);
  };

  /** The services of `group` that have a tag to move to, with it; none when the list cannot be read (logged). */
  async function candidates(registry: Pick<RegistryPort, "listTags">, group: FollowGroup): Promise<FollowCandidate[]> {
    const listKey = `${group.key} ${group.authConfig ?? ""}`;
    let tags: string[];
    try {
      tags = await registry.listTags(group.ref);
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      log.warn({ repository: group.key, kind: err.kind, reason: err.message }, "could not list the tags of a repository services follow");
      return [];
    }
    const last = lastList(listKey);
    const pushed = newOnList(last, tags);
    if (!last || pushed.length > 0 || last.size !== tags.length) memory?.save(listKey, tags);
    previous.set(listKey, new Set(tags));
    const found: FollowCandidate[] = [];
    for (const service of group.services) {
      const read = readPolicy(service.labels);
      const current = tryParseImageRef(service.image);
      if (!read.ok || !read.policy.follow || !current) continue;
      const tag = pickFromTagList(read.policy.follow, current.tag, tags, pushed);
      if (!tag) continue;
      found.push({
        service,
        ref: { ...group.ref, tag },
        reason: `follows ${describeFollow(read.policy.follow)}: ${current.tag} -> ${tag}`,
      });
    }
    log.debug({ repository: group.key, tags: tags.length, moves: found.length }, "listed the tags of a followed repository");
    return found;
  }

  return { candidates };
}
