/**
 * The gates a deployment passes, in order, once its digest is known and
 * before its update is sent: watch only, the image's cool-down, the deploy
 * window, the approval. Pure: what to do now follows from the policy, the
 * time and what the record knows.
 */
import { isOpen, nextOpening } from "./deploy-window.js";
import type { ServicePolicy } from "./policy.js";

export type GateDecision =
  | { kind: "go" }
  /** deployer.mode=notify: recorded and announced, never updated. */
  | { kind: "watch"; message: string }
  | { kind: "wait"; status: "cooling_down" | "scheduled"; until: number; message: string }
  | { kind: "approval"; until: number; message: string };

export interface GateState {
  now: number;
  /** When this digest of the image was first recorded (the push time). */
  firstSeenAt: number;
  /** When the image was built, where the registry says (its config's `created`); the cool-down counts from it when earlier. */
  createdAt?: number;
  /** Whether someone with deployments:write approved this deployment. */
  approved: boolean;
  /** How long an approval request stays open. */
  approvalTtlMs: number;
  digest: string;
}

const iso = (t: number) => new Date(t).toISOString().replace(/\.000Z$/, "Z");

function minutes(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

export function decideGates(policy: ServicePolicy, s: GateState): GateDecision {
  if (policy.mode === "notify") {
    return { kind: "watch", message: `deployer.mode=notify: ${s.digest} would be deployed; recorded and announced, the service is not updated` };
  }
  const built = s.createdAt !== undefined && s.createdAt < s.firstSeenAt;
  const since = built ? s.createdAt! : s.firstSeenAt;
  const ripeAt = since + policy.minAgeMs;
  if (policy.minAgeMs > 0 && s.now < ripeAt) {
    const age = built ? `was built at ${iso(since)}` : `was first recorded at ${iso(since)}`;
    return {
      kind: "wait",
      status: "cooling_down",
      until: ripeAt,
      message: `cooling down until ${iso(ripeAt)}: deployer.min-age=${minutes(policy.minAgeMs)} and ${s.digest} ${age}`,
    };
  }
  if (!isOpen(policy.windows, s.now)) {
    const opens = nextOpening(policy.windows, s.now);
    return {
      kind: "wait",
      status: "scheduled",
      until: opens,
      message: `scheduled for ${iso(opens)}, when the deploy window opens (deployer.window=${policy.windows.map((w) => w.text).join("; ")})`,
    };
  }
  if (policy.approve && !s.approved) {
    const until = s.now + s.approvalTtlMs;
    return {
      kind: "approval",
      until,
      message: `waiting for approval (deployer.approve=required) until ${iso(until)}; approve or reject it with deployments:write`,
    };
  }
  return { kind: "go" };
}
