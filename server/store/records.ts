import type { DeploymentStatus, TriggerKind } from "../domain/deployment.js";
import type { deployments, triggers } from "./schema.js";

/** The shapes the store reads and writes, and its one error of its own. */

/** A status change the transition table does not allow: a bug in the caller, refused with nothing written. */
export class TransitionRefusedError extends Error {
  override readonly name = "TransitionRefusedError";
  constructor(
    readonly deploymentId: string,
    readonly from: DeploymentStatus,
    readonly to: DeploymentStatus,
  ) {
    super(`deployment ${deploymentId}: ${from} -> ${to} is not an allowed transition`);
  }
}

export type DeploymentRecord = Omit<typeof deployments.$inferSelect, "status" | "trigger" | "failureKind"> & {
  status: DeploymentStatus;
  trigger: TriggerKind;
  failureKind: FailureKind | null;
};
export type TriggerRecord = Omit<typeof triggers.$inferSelect, "kind"> & { kind: TriggerKind };
export type DeploymentEventRecord = { at: number; status: DeploymentStatus; message: string };

/** Why a deployment failed: the rollout itself, or the machinery around it (engine, registry). */
export type FailureKind = "rollout" | "error";

export interface NewTrigger {
  kind: TriggerKind;
  eventKey: string;
  imageKey: string;
  digestHint?: string;
  requestedBy: string;
  callbackUrl?: string;
  /** The push could not be matched to services yet (the engine did not answer): it waits, from now. */
  unmatched?: boolean;
  /** JSON array: the token's `services` claim, for matching later. */
  allowedServices?: string;
}

export interface NewDeployment {
  service: string;
  serviceId: string;
  image: string;
  imageKey: string;
  digestHint?: string;
  digest?: string;
  previousImage?: string;
  trigger: TriggerKind;
  requestedBy: string;
  /** First timeline entry, e.g. "received registry push of …". */
  message: string;
}

/** What a caller runs inside the transaction that records a push. */
export interface RecordHooks {
  /**
   * Asked for each deployment before it is written: the id of a deployment
   * that already covers it, to record the push as coalesced into, or
   * undefined to write it.
   */
  coalesce?: (deployment: NewDeployment) => string | undefined;
  /** Runs once the deployments exist (to admit them, to hold the service). */
  alongside?: (deployments: DeploymentRecord[]) => void;
}

/** A push recorded as coalesced into a deployment of one service. */
export interface Coalesced {
  service: string;
  deploymentId: string;
}
