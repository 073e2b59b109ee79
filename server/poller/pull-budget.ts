import type { RateLimit } from "../registry/registry-headers.js";

/**
 * Docker Hub counts pulls, not our HEADs, but every deploy we start makes each
 * node that runs a task pull once. So the poller spends the `ratelimit-remaining`
 * its HEADs report on deploys, keeps a reserve for everyone else on this
 * account or address, and leaves a registry alone for a while when it is low.
 */
export interface PullBudget {
  /** Pulls that may still be spent this cycle; undefined when the registry reports no limit. */
  spendable?: number;
  /** How long to leave the registry alone once the budget is spent. */
  backoffMs: number;
}

/** One pull in ten stays for others (at least one), as a margin for pulls we do not see. */
export function reserveOf(limit: number | undefined): number {
  return Math.max(1, Math.ceil((limit ?? 0) * 0.1));
}

export function pullBudget(rate: RateLimit | undefined, sleepTimeMs: number): PullBudget {
  const fallbackMs = Math.max(sleepTimeMs, 15 * 60_000);
  if (rate?.remaining === undefined) return { backoffMs: fallbackMs };
  const reserve = reserveOf(rate.limit);
  // A rolling window gives one pull back every window/limit seconds; wait until the reserve is refilled.
  const refillMs = rate.limit && rate.windowSeconds ? ((rate.windowSeconds * 1000) / rate.limit) * reserve : fallbackMs;
  return { spendable: Math.max(0, rate.remaining - reserve), backoffMs: Math.max(sleepTimeMs, Math.round(refillMs)) };
}

/**
 * Pulls a deploy of the service costs: one per replica, or one per node for a global service, counted by the
 * tasks it runs (the engine's `RunningTasks` in the service list); at least one.
 */
export function pullsFor(service: { mode: "replicated" | "global"; replicas?: number; runningTasks?: number }): number {
  return Math.max(1, (service.mode === "global" ? service.runningTasks : service.replicas) ?? 1);
}
