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
import type {
  Coalesced,
  DeploymentRecord,
  DeploymentStore,
  NewDeployment,
  NewTrigger,
  RecordHooks,
  TriggerRecord,
} from "../store/deployment-store.js";

export interface RequestDeps {
  store: DeploymentStore;
  deployer: Deployer;
}

type Recorded =
  { duplicate: false; trigger: TriggerRecord; deployments: DeploymentRecord[]; coalesced: Coalesced[] } | { duplicate: true; trigger: TriggerRecord };

/** Runs inside the transaction once the deployments exist (to hold the service, say). */
type Alongside = (deployments: DeploymentRecord[]) => void;

/**
 * Pushes only: a later event of a burst (one per manifest, a retry, the same
 * push announced twice) whose deployment on a service is already covered by
 * one there is recorded on its trigger as coalesced into it, not as a
 * deployment of its own (deployer.ts coalesceTarget()).
 */
export interface PushOptions {
  coalesce: boolean;
}

function admitting(deps: RequestDeps, admitted: Admitted[], alongside?: Alongside, push?: PushOptions): RecordHooks {
  return {
    ...(push?.coalesce ? { coalesce: (d: NewDeployment) => deps.deployer.coalesceTarget(d) } : {}),
    alongside: (rows) => {
      alongside?.(rows);
      // Undone at once when a row's admission throws: its savepoint is rolled back before the batch's next write runs.
      const mine: Admitted[] = [];
      try {
        // Fresh: recorded in this transaction, from the service as it was just read.
        for (const row of rows) mine.push(deps.deployer.admit(row.id, { fresh: true }));
      } catch (err) {
        for (const a of mine.reverse()) a.undo();
        throw err;
      }
      admitted.push(...mine);
    },
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
export async function requestDeploymentsGrouped(
  deps: RequestDeps,
  trigger: NewTrigger,
  deployments: NewDeployment[],
  push?: PushOptions,
): Promise<Recorded> {
  const admitted: Admitted[] = [];
  const recorded = await deps.store
    .recordTriggerGrouped(trigger, deployments, admitting(deps, admitted, undefined, push))
    .catch((err: unknown) => undone(admitted, err));
  return started(recorded, admitted);
}

/** The deployments of a push recorded earlier and matched now; undefined when another pass matched it first. */
export function requestMatchedDeployments(
  deps: RequestDeps,
  triggerId: string,
  deployments: NewDeployment[],
  push?: PushOptions,
): { deployments: DeploymentRecord[]; coalesced: Coalesced[] } | undefined {
  const admitted: Admitted[] = [];
  let matched: { coalesced: Coalesced[] } | undefined;
  try {
    matched = deps.store.recordMatch(triggerId, deployments, admitting(deps, admitted, undefined, push));
  } catch (err) {
    undone(admitted, err);
  }
  return matched && { deployments: admitted.map((a) => a.after()), coalesced: matched.coalesced };
}
