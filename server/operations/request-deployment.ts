/**
 * The one way a deployment is asked for, by all its paths (a webhook, a
 * webhook's push matched later, the poller, a deploy by hand, a rollback).
 *
 * The protocol: the trigger and its queued deployments are recorded in one
 * transaction, and inside that same transaction the deployer admits each
 * (deployer.ts admit()): what a deployment supersedes or skips is written
 * with it, so no reader ever sees a newer deployment queued beside the one it
 * replaced. Only after the commit does `after()` start rollouts and
 * announcements, so nothing reaches the engine or a callback for a
 * deployment that was never committed.
 */
import type { Admitted, Deployer } from "../engine/deployer.js";
import type { DeploymentRecord, DeploymentStore, NewDeployment, NewTrigger, TriggerRecord } from "../store/deployment-store.js";

export interface RequestDeps {
  store: DeploymentStore;
  deployer: Deployer;
}

type Recorded = { duplicate: false; trigger: TriggerRecord; deployments: DeploymentRecord[] } | { duplicate: true; trigger: TriggerRecord };

/** Runs inside the transaction once the deployments exist (to hold the service, say). */
type Alongside = (deployments: DeploymentRecord[]) => void;

function admitting(deps: RequestDeps, admitted: Admitted[], alongside?: Alongside): Alongside {
  return (rows) => {
    alongside?.(rows);
    for (const row of rows) admitted.push(deps.deployer.admit(row.id));
  };
}

/** After the commit: the deployments as they are once started (or skipped). */
function started(recorded: Recorded, admitted: Admitted[]): Recorded {
  return recorded.duplicate ? recorded : { ...recorded, deployments: admitted.map((a) => a.after()) };
}

/** A transaction that did not commit (a full disk): the deployer's lanes are put back, newest first. */
function undone(admitted: Admitted[], err: unknown): never {
  for (const a of [...admitted].reverse()) a.undo();
  throw err;
}

/** Records and admits in a transaction of its own. */
export function requestDeployments(deps: RequestDeps, trigger: NewTrigger, deployments: NewDeployment[], alongside?: Alongside): Recorded {
  const admitted: Admitted[] = [];
  let recorded: Recorded;
  try {
    recorded = deps.store.recordTrigger(trigger, deployments, admitting(deps, admitted, alongside));
  } catch (err) {
    undone(admitted, err);
  }
  return started(recorded, admitted);
}

/** The same, committed with the other webhooks of this turn of the event loop (store/group-commit.ts). */
export async function requestDeploymentsGrouped(deps: RequestDeps, trigger: NewTrigger, deployments: NewDeployment[]): Promise<Recorded> {
  const admitted: Admitted[] = [];
  const recorded = await deps.store
    .recordTriggerGrouped(trigger, deployments, admitting(deps, admitted))
    .catch((err: unknown) => undone(admitted, err));
  return started(recorded, admitted);
}

/** The deployments of a push recorded earlier and matched now; undefined when another pass matched it first. */
export function requestMatchedDeployments(deps: RequestDeps, triggerId: string, deployments: NewDeployment[]): DeploymentRecord[] | undefined {
  const admitted: Admitted[] = [];
  let rows: DeploymentRecord[] | undefined;
  try {
    rows = deps.store.recordMatch(triggerId, deployments, admitting(deps, admitted));
  } catch (err) {
    undone(admitted, err);
  }
  return rows && admitted.map((a) => a.after());
}
