import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import type { RegistryPort } from "../registry/registry-port.js";
import type { DeploymentStore } from "../store/deployment-store.js";
import type { ServiceHolds } from "../store/service-holds.js";
import type { Clock } from "../domain/clock.js";
import type { OwnChanges } from "./own-changes.js";
import type { TagLookups } from "./tag-lookups.js";
import type { ServiceUpdate, SwarmPort } from "./swarm-port.js";

/** What the deployer (its queue, deployer.ts, and the run of one deployment, run-deployment.ts) is built from. */
export interface DeployerOptions {
  swarm: SwarmPort;
  registry: RegistryPort;
  /**
   * The registry client of a REGISTRIES_FILE id, for services labelled shepherd.auth.config=<id>: their tags are
   * looked up with that login alone. Unset when REGISTRIES_FILE names none, so no service needs a look first.
   */
  registryFor?: (authConfig: string) => RegistryPort;
  store: DeploymentStore;
  holds: ServiceHolds;
  log: Logger;
  metrics: Metrics;
  /** TIMEOUT: how long a rollout may take before it counts as failed. */
  timeoutMs: number;
  /** ROLLBACK_ON_FAILURE: roll back ourselves when swarm paused or the rollout timed out. */
  rollbackOnFailure: boolean;
  /** X-Registry-Auth for a registry host, when WITH_REGISTRY_AUTH passes credentials to the nodes. */
  registryAuthFor(registry: string, authConfig?: string): string | undefined;
  /** UPDATE_OPTIONS / ROLLBACK_OPTIONS: laid over the spec by the poller's deploys, as Shepherd did with its own. */
  pollUpdate?: Pick<ServiceUpdate, "updateConfig" | "rollbackConfig">;
  /** DEPLOYER_REGISTRY_RETRY: how long a tag that cannot be resolved because the registry does not answer is tried again (0: not). */
  registryRetryMs?: number;
  /** DEPLOYER_APPROVAL_TTL: how long a deployment waits for approval before it is rejected. */
  approvalTtlMs?: number;
  /** DEPLOYER_MAX_ROLLOUTS: rollouts under way at once; the others wait, queued, in order. */
  maxRollouts?: number;
  /** Tag lookups shared with the poller (engine/tag-lookups.ts); the deployer makes its own when none is given. */
  tagLookups?: TagLookups;
  /** How often the rollouts under way are polled (one shared watcher: engine/rollout-watcher.ts). */
  pollMs?: number;
  /** The one source of time: timestamps, the rollout's polling and its TIMEOUT. */
  clock: Clock;
  /** Where the updates we send are marked as ours before they reach the engine (the drift watcher reads it). */
  ownChanges?: OwnChanges;
}
