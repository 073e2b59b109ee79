/**
 * Following versions (`deployer.follow`, CONTRACT §11): which tags a policy
 * admits, and whether one is newer than the tag a service runs.
 *
 * - semver levels and ranges compare versions (`1.4.3`, `v1.4.3`; a tag that
 *   is not a full version is never admitted). `patch` moves within the
 *   running major.minor, `minor` within the major, `major` anywhere newer; a
 *   range admits what satisfies it. Pre-releases only with `,prerelease`.
 * - glob and regex admit the tags they match; "newer" is the push itself: a
 *   pushed tag the pattern admits and that is not the one running. The poller,
 *   which sees only the tag list, counts as pushed the tags that appeared in
 *   it since its previous look (newOnList).
 */
import semver from "semver";
import type { FollowPolicy } from "./policy.js";

/** The version a tag names, or undefined; a leading `v` is allowed. */
export function tagVersion(tag: string): semver.SemVer | undefined {
  if (tag.length > 128) return undefined;
  return semver.parse(tag) ?? undefined;
}

function globRegex(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`);
}

/** Whether the policy would ever deploy `tag`, whatever the service runs. */
export function admitsTag(policy: FollowPolicy, tag: string): boolean {
  switch (policy.kind) {
    case "glob":
      return globRegex(policy.pattern).test(tag);
    case "regex":
      return new RegExp(policy.pattern).test(tag);
    case "semver": {
      const v = tagVersion(tag);
      return v !== undefined && (policy.prerelease || v.prerelease.length === 0);
    }
    case "range": {
      const v = tagVersion(tag);
      if (!v || (!policy.prerelease && v.prerelease.length > 0)) return false;
      return semver.satisfies(v, policy.range, { includePrerelease: policy.prerelease });
    }
  }
}

/** Whether a version policy moves a service from `current` to `candidate`: admitted, newer, and within the level. */
function versionNewer(policy: Extract<FollowPolicy, { kind: "semver" | "range" }>, current: string, candidate: string): boolean {
  const from = tagVersion(current);
  const to = tagVersion(candidate);
  if (!from || !to || !admitsTag(policy, candidate) || semver.compare(to, from) <= 0) return false;
  if (policy.kind === "range") return true;
  if (policy.level === "major") return true;
  if (to.major !== from.major) return false;
  return policy.level === "minor" || to.minor === from.minor;
}

/**
 * Whether a push of `candidate` deploys to a service that runs `current`
 * under `policy`. A push of `current` itself is not a move (its new digest
 * deploys as for any service).
 */
export function followsTo(policy: FollowPolicy, current: string, candidate: string): boolean {
  if (candidate === current) return false;
  if (policy.kind === "semver" || policy.kind === "range") return versionNewer(policy, current, candidate);
  return admitsTag(policy, candidate);
}

/**
 * The tag the poller moves a service to, from the registry's tag list: for
 * versions, the newest one the policy moves to; for patterns, the last (in
 * numeric-aware order) of the admitted tags in `pushed`, those that appeared
 * since the previous look. Undefined when there is none.
 */
export function pickFromTagList(policy: FollowPolicy, current: string, tags: readonly string[], pushed: readonly string[]): string | undefined {
  if (policy.kind === "semver" || policy.kind === "range") {
    let best: string | undefined;
    for (const tag of tags) {
      if (!versionNewer(policy, current, tag)) continue;
      if (best === undefined || semver.compare(tagVersion(tag)!, tagVersion(best)!) > 0) best = tag;
    }
    return best;
  }
  const candidates = pushed.filter((t) => followsTo(policy, current, t));
  return candidates.sort((a, b) => a.localeCompare(b, "en", { numeric: true })).at(-1);
}

/** Tags of `now` that were not on the list the previous time; none the first time, when nothing is known to be new. */
export function newOnList(previous: ReadonlySet<string> | undefined, now: readonly string[]): string[] {
  if (!previous) return [];
  return now.filter((t) => !previous.has(t));
}

/** A short human form of the policy, for messages: `semver:minor`, `~1.4`, `glob:release-*`. */
export function describeFollow(policy: FollowPolicy): string {
  const pre = "prerelease" in policy && policy.prerelease ? ",prerelease" : "";
  switch (policy.kind) {
    case "semver":
      return `semver:${policy.level}${pre}`;
    case "range":
      return `semver:${policy.range}${pre}`;
    case "glob":
      return `glob:${policy.pattern}`;
    case "regex":
      return `regex:${policy.pattern}`;
  }
}
