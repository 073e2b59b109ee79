import type { UpdatePolicy } from "./swarm-port.js";

/** `UpdateConfig` / `RollbackConfig` as the Engine API has them; durations are integer nanoseconds. */
export interface EngineUpdateConfig {
  Parallelism?: number;
  Delay?: number;
  FailureAction?: string;
  Monitor?: number;
  MaxFailureRatio?: number;
  Order?: string;
}

/**
 * swarmkit's defaults for a spec without UpdateConfig or RollbackConfig
 * (api/defaults/service.go). Laying one flag over a missing config must start
 * from these, as the docker CLI does, or Parallelism silently becomes 0 (all at once).
 */
const SWARM_DEFAULT_POLICY: EngineUpdateConfig = { Parallelism: 1, FailureAction: "pause", Monitor: 5e9, MaxFailureRatio: 0, Order: "stop-first" };

/** Lays the fields of `policy` over the spec's config, starting from swarm's defaults when it has none. */
export function overlayPolicy(current: EngineUpdateConfig | undefined, policy: UpdatePolicy): EngineUpdateConfig {
  const ns = (ms: number) => Math.round(ms * 1e6);
  const next: EngineUpdateConfig = { ...(current ?? SWARM_DEFAULT_POLICY) };
  if (policy.parallelism !== undefined) next.Parallelism = policy.parallelism;
  if (policy.delayMs !== undefined) next.Delay = ns(policy.delayMs);
  if (policy.failureAction !== undefined) next.FailureAction = policy.failureAction;
  if (policy.monitorMs !== undefined) next.Monitor = ns(policy.monitorMs);
  if (policy.maxFailureRatio !== undefined) next.MaxFailureRatio = policy.maxFailureRatio;
  if (policy.order !== undefined) next.Order = policy.order;
  return next;
}

/** The fields the spec sets, in the port's units. */
export function toPolicy(config: EngineUpdateConfig | undefined): UpdatePolicy {
  if (!config) return {};
  const policy: UpdatePolicy = {};
  if (config.Parallelism !== undefined) policy.parallelism = config.Parallelism;
  if (config.Delay !== undefined) policy.delayMs = config.Delay / 1e6;
  if (config.FailureAction === "pause" || config.FailureAction === "continue" || config.FailureAction === "rollback") {
    policy.failureAction = config.FailureAction;
  }
  if (config.Monitor !== undefined) policy.monitorMs = config.Monitor / 1e6;
  if (config.MaxFailureRatio !== undefined) policy.maxFailureRatio = config.MaxFailureRatio;
  if (config.Order === "stop-first" || config.Order === "start-first") policy.order = config.Order;
  return policy;
}
