import { followsTag, repoKey, repoTagKey, tryParseImageRef, type ImageRef } from "../domain/image-ref.js";
import { readPolicy } from "../domain/policy.js";
import type { ServiceFilter } from "../domain/service-filter.js";
import { automaticExclusion } from "../domain/service-selection.js";
import type { SwarmService } from "../engine/swarm-port.js";
import { SHEPHERD_AUTH_LABEL } from "../registry/credentials.js";

/** Services that run one `registry/repo:tag`: the poller looks the tag up once for all of them. */
export interface ImageGroup {
  /** `registry/repo:tag`. */
  key: string;
  ref: ImageRef;
  /** The `shepherd.auth.config` label the services share: their lookup uses that login. */
  authConfig?: string;
  services: SwarmService[];
}

/** Services of one repository that follow versions (`deployer.follow`): the poller lists its tags once for all of them. */
export interface FollowGroup {
  /** `registry/repo`. */
  key: string;
  ref: Pick<ImageRef, "registry" | "repository">;
  authConfig?: string;
  services: SwarmService[];
}

export interface PlanDeps {
  filter?: ServiceFilter;
  ignoreList: string[];
  /** A hold from a manual rollback. */
  heldReason(service: string): string | undefined;
  /** A deployment already queued or running for the service. */
  busyWith(service: string): string | undefined;
}

export interface Plan {
  groups: ImageGroup[];
  /** The same services again, those that follow versions, by repository. */
  follow: FollowGroup[];
  /** Why each service not in a group was left out, for the debug log. */
  left: Array<{ service: string; reason: string }>;
}

/**
 * Which services this cycle looks at, grouped by image. Left out: the label
 * `deployer.enable=false`, IGNORELIST_SERVICES, FILTER_SERVICES, a digest-only
 * pin (it follows no tag), a held service, and one whose deployment is still
 * under way (the next cycle looks again, so the poller never races the queue).
 */
export function planCycle(services: SwarmService[], deps: PlanDeps): Plan {
  const groups = new Map<string, ImageGroup>();
  const follow = new Map<string, FollowGroup>();
  const left: Plan["left"] = [];
  for (const service of services) {
    const excluded = automaticExclusion(service, deps);
    if (excluded) {
      left.push({ service: service.name, reason: excluded });
      continue;
    }
    const ref = tryParseImageRef(service.image);
    if (!ref) {
      left.push({ service: service.name, reason: `its image "${service.image}" is not a valid reference` });
      continue;
    }
    if (!followsTag(service.image)) {
      left.push({ service: service.name, reason: "pinned by digest alone, so it follows no tag" });
      continue;
    }
    const held = deps.heldReason(service.name);
    if (held) {
      left.push({ service: service.name, reason: `held: ${held}` });
      continue;
    }
    const busy = deps.busyWith(service.name);
    if (busy) {
      left.push({ service: service.name, reason: `deployment ${busy} is still under way` });
      continue;
    }
    const key = repoTagKey(ref);
    const authConfig = service.labels[SHEPHERD_AUTH_LABEL] || undefined;
    const groupKey = `${key} ${authConfig ?? ""}`;
    const group = groups.get(groupKey) ?? {
      key,
      ref: { registry: ref.registry, repository: ref.repository, tag: ref.tag },
      authConfig,
      services: [],
    };
    group.services.push(service);
    groups.set(groupKey, group);
    const policy = readPolicy(service.labels);
    if (policy.ok && policy.policy.follow) {
      const byRepo = `${repoKey(ref)} ${authConfig ?? ""}`;
      const f = follow.get(byRepo) ?? { key: repoKey(ref), ref: { registry: ref.registry, repository: ref.repository }, authConfig, services: [] };
      f.services.push(service);
      follow.set(byRepo, f);
    }
  }
  return { groups: [...groups.values()], follow: [...follow.values()], left };
}
