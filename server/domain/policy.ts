/**
 * Deploy policies: labels on a service (CONTRACT §11) that decide whether,
 * what and when a push deploys there. Parsed here, once, from the labels;
 * a label whose value cannot be read leaves the service alone (reported, not
 * guessed at).
 */
import semver from "semver";
import { parseWindows, type DeployWindow } from "./deploy-window.js";

export const POLICY_LABELS = {
  follow: "deployer.follow",
  approve: "deployer.approve",
  window: "deployer.window",
  minAge: "deployer.min-age",
  mode: "deployer.mode",
} as const;

/** Every `deployer.*` label the server reads: the policy's, `deployer.enable` and `deployer.self` (self-update). */
const KNOWN_LABELS = new Set<string>([...Object.values(POLICY_LABELS), "deployer.enable", "deployer.self"]);

/** Which newer tags a service follows; without one, a service follows its own tag's new digests. */
export type FollowPolicy =
  | { kind: "semver"; level: "patch" | "minor" | "major"; prerelease: boolean }
  | { kind: "range"; range: string; prerelease: boolean }
  | { kind: "glob"; pattern: string }
  | { kind: "regex"; pattern: string };

export interface ServicePolicy {
  follow?: FollowPolicy;
  /** Each deployment waits for someone with deployments:write to approve it. */
  approve: boolean;
  /** Deploy only inside one of these; none means any time. */
  windows: DeployWindow[];
  /** Deploy only an image pushed at least this long ago. */
  minAgeMs: number;
  /** `notify`: record and announce, never update. */
  mode: "deploy" | "notify";
}

export type PolicyReading = { ok: true; policy: ServicePolicy } | { ok: false; errors: string[] };

export const DEFAULT_POLICY: ServicePolicy = { approve: false, windows: [], minAgeMs: 0, mode: "deploy" };

/** Whether a policy holds anything back: a deployment then goes through the gates. */
export function isGated(p: ServicePolicy): boolean {
  return p.approve || p.windows.length > 0 || p.minAgeMs > 0 || p.mode === "notify";
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** A cool-down past this is a typo, not a policy. */
const MAX_MIN_AGE_MS = 30 * 86_400_000;

/** `30m`, `2h`, `1d`, or a sum such as `1h30m`. */
export function parseDuration(text: string): number | undefined {
  const parts = text.trim().match(/\d+(?:ms|s|m|h|d)/g);
  if (!parts || parts.join("") !== text.trim()) return undefined;
  return parts.reduce((sum, part) => {
    const [, n, unit] = DURATION.exec(part)!;
    return sum + Number(n) * UNIT_MS[unit!]!;
  }, 0);
}

function parseFollow(value: string): FollowPolicy | string {
  const [spec, ...flags] = value.split(",").map((s) => s.trim());
  const prerelease = flags.includes("prerelease");
  if (flags.some((f) => f !== "prerelease")) return `unknown option in ${JSON.stringify(value)} (only ",prerelease")`;
  const colon = spec!.indexOf(":");
  const kind = colon === -1 ? "" : spec!.slice(0, colon);
  const rest = colon === -1 ? spec! : spec!.slice(colon + 1);
  if (kind === "semver") {
    if (rest === "patch" || rest === "minor" || rest === "major") return { kind: "semver", level: rest, prerelease };
    if (semver.validRange(rest) === null) return `not a semver level (patch, minor, major) or range: ${JSON.stringify(rest)}`;
    return { kind: "range", range: rest, prerelease };
  }
  if (kind === "glob") {
    if (!/^[\w.*-]{1,128}$/.test(rest) || !rest.includes("*")) return `a glob of tag characters with at least one *: ${JSON.stringify(rest)}`;
    return { kind: "glob", pattern: rest };
  }
  if (kind === "regex") {
    if (rest.length === 0 || rest.length > 256) return "a regex of 1 to 256 characters";
    try {
      new RegExp(rest);
    } catch (err) {
      return `not a valid regex: ${(err as Error).message}`;
    }
    return { kind: "regex", pattern: rest };
  }
  // A bare range (`~1.4`, `^2`, `>=1.2 <2`) reads as semver.
  if (colon === -1 && semver.validRange(spec!) !== null) return { kind: "range", range: spec!, prerelease };
  return `expected semver:patch|minor|major, semver:<range>, glob:<pattern> or regex:<pattern>, got ${JSON.stringify(value)}`;
}

/** The service's policy from its labels, or every reason a label could not be read. */
export function readPolicy(labels: Record<string, string>): PolicyReading {
  const errors: string[] = [];
  const policy: ServicePolicy = { ...DEFAULT_POLICY, windows: [] };
  const label = (name: string) => {
    const v = labels[name];
    return v === undefined ? undefined : v.trim();
  };
  const follow = label(POLICY_LABELS.follow);
  if (follow !== undefined && follow !== "") {
    const parsed = parseFollow(follow);
    if (typeof parsed === "string") errors.push(`${POLICY_LABELS.follow}: ${parsed}`);
    else policy.follow = parsed;
  }
  const approve = label(POLICY_LABELS.approve);
  if (approve !== undefined && approve !== "") {
    if (approve === "required") policy.approve = true;
    else if (approve !== "none") errors.push(`${POLICY_LABELS.approve}: expected "required" (or "none"), got ${JSON.stringify(approve)}`);
  }
  const window = label(POLICY_LABELS.window);
  if (window !== undefined && window !== "") {
    const parsed = parseWindows(window);
    if (typeof parsed === "string") errors.push(`${POLICY_LABELS.window}: ${parsed}`);
    else policy.windows = parsed;
  }
  const minAge = label(POLICY_LABELS.minAge);
  if (minAge !== undefined && minAge !== "") {
    const ms = parseDuration(minAge);
    if (ms === undefined || ms > MAX_MIN_AGE_MS)
      errors.push(`${POLICY_LABELS.minAge}: expected a duration such as 30m, 2h or 1d (at most 30d), got ${JSON.stringify(minAge)}`);
    else policy.minAgeMs = ms;
  }
  const mode = label(POLICY_LABELS.mode);
  if (mode !== undefined && mode !== "") {
    if (mode === "notify" || mode === "deploy") policy.mode = mode;
    else errors.push(`${POLICY_LABELS.mode}: expected "notify" (or "deploy"), got ${JSON.stringify(mode)}`);
  }
  // A label of ours misspelt (`deployer.windows`) would leave the service without the gate it was meant to have.
  for (const name of Object.keys(labels)) {
    if (name.startsWith("deployer.") && !KNOWN_LABELS.has(name)) {
      errors.push(`${name}: not a label of the deployer (${[...KNOWN_LABELS].join(", ")})`);
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, policy };
}
