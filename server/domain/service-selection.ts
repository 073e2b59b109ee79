/**
 * Which swarm services the server manages and which a push concerns: the
 * rules webhooks, the poller and the API share.
 */
import { describeFollow, followsTo } from "./follow.js";
import { followsTag, parseImageRef, repoKey, repoTagKey, tryParseImageRef } from "./image-ref.js";
import { readPolicy } from "./policy.js";
import { matchesServiceFilter, type FilterableService, type ServiceFilter } from "./service-filter.js";

/** `deployer.enable=false` on a service: the server never touches it. */
export const ENABLE_LABEL = "deployer.enable";

/** What the selection rules read of a service. */
export interface SelectableService extends FilterableService {
  image: string;
  /** A job service (replicated-job, global-job). */
  job?: boolean;
}

/** FILTER_SERVICES and IGNORELIST_SERVICES, resolved. */
export interface Selection {
  filter?: ServiceFilter;
  ignoreList: string[];
}

/** Why a service running the pushed image is left alone, or undefined when it should be deployed. */
export function exclusionReason(service: SelectableService, selection: Selection, allowedServices?: string[]): string | undefined {
  if (service.labels[ENABLE_LABEL] === "false") return "label_disabled";
  // Its tasks run to completion: an update starts it again, and there is no rollout whose end could be followed.
  if (service.job) return "job_service";
  if (selection.ignoreList.includes(service.name)) return "ignorelisted";
  if (!matchesServiceFilter(service, selection.filter)) return "filtered_out";
  if (allowedServices && !allowedServices.includes(service.name)) return "not_in_token";
  return undefined;
}

/**
 * exclusionReason, for what a push or the poller would deploy: a service whose
 * policy labels cannot be read is left alone too (`invalid_policy`), rather
 * than deployed by a guess at what they meant. A deploy by hand still may.
 */
export function automaticExclusion(service: SelectableService, selection: Selection, allowedServices?: string[]): string | undefined {
  return exclusionReason(service, selection, allowedServices) ?? (readPolicy(service.labels).ok ? undefined : "invalid_policy");
}

/**
 * Services whose spec image, digest dropped and normalized, is the pushed
 * `registry/repo:tag`. A service pinned by digest alone follows no tag.
 */
export function servicesRunning<S extends SelectableService>(services: S[], imageKey: string): S[] {
  return services.filter((s) => {
    if (!followsTag(s.image)) return false;
    const ref = tryParseImageRef(s.image);
    return ref !== undefined && repoTagKey(ref) === imageKey;
  });
}

/**
 * How a push of `imageKey` moves a service that follows versions
 * (`deployer.follow`) from the tag it runs, or undefined when it does not:
 * same registry and repository, a tag the policy admits and newer than the
 * running one. A push of the running tag itself is no move (servicesRunning).
 */
export function followMove(service: SelectableService, imageKey: string): { policy: string; from: string; to: string } | undefined {
  if (!followsTag(service.image)) return undefined;
  const running = tryParseImageRef(service.image);
  if (!running) return undefined;
  const pushed = parseImageRef(imageKey);
  if (repoKey(running) !== repoKey(pushed)) return undefined;
  const read = readPolicy(service.labels);
  if (!read.ok || !read.policy.follow || !followsTo(read.policy.follow, running.tag, pushed.tag)) return undefined;
  return { policy: describeFollow(read.policy.follow), from: running.tag, to: pushed.tag };
}

/** The services a push of `imageKey` concerns: those running that tag, and those following versions it moves. */
export function servicesForPush<S extends SelectableService>(services: S[], imageKey: string): S[] {
  const exact = new Set(servicesRunning(services, imageKey));
  return services.filter((s) => exact.has(s) || followMove(s, imageKey) !== undefined);
}
